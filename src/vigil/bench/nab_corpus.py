"""A NAB corpus folder: ``data/<category>/<name>.csv`` and ``labels/combined_windows.json``."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vigil.errors import DataError

__all__ = ["DataFile", "load_corpus", "load_windows", "read_scores", "window_indices"]


@dataclass(frozen=True)
class DataFile:
    """One labelled series: `name` is ``<category>/<file>.csv`` as in the label file.

    `texts` holds the file's timestamp and value cells as written, so that a results file
    can repeat them exactly (empty when the file was not read from disk).
    """

    name: str
    timestamps: npt.NDArray[np.datetime64]
    values: npt.NDArray[np.float64]
    windows: list[tuple[int, int]]  # first and last index of each anomaly window
    texts: tuple[Sequence[str], Sequence[str]] = field(default=((), ()), repr=False, compare=False)

    @property
    def category(self) -> str:
        return self.name.split("/")[0]

    @property
    def stem(self) -> str:
        return self.name.split("/")[-1]

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _times(texts: list[str], where: str) -> npt.NDArray[np.datetime64]:
    try:
        return np.array([t.strip().replace(" ", "T") for t in texts], dtype="datetime64[us]")
    except ValueError as exc:
        raise DataError(f"{where}: a timestamp is not 'YYYY-MM-DD HH:MM:SS' ({exc})") from exc


def load_windows(corpus: Path) -> dict[str, list[tuple[str, str]]]:
    path = corpus / "labels" / "combined_windows.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} is missing; point --corpus at a NAB checkout (with data/ and labels/)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from exc
    return {name: [(str(a), str(b)) for a, b in spans] for name, spans in raw.items()}


def window_indices(timestamps: npt.NDArray[np.datetime64], spans: list[tuple[str, str]],
                   where: str) -> list[tuple[int, int]]:
    """Index spans of the windows: the first point at or after the start, the last at or before the end."""
    out = []
    for start, end in spans:
        a, b = _times([start, end], where)
        i = int(np.searchsorted(timestamps, a, side="left"))
        j = int(np.searchsorted(timestamps, b, side="right")) - 1
        if j < i:
            raise DataError(f"{where}: window {start} .. {end} holds no point of the file")
        out.append((i, j))
    return out


def _read_table(path: Path, column: str) -> tuple[list[str], list[str]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "timestamp" not in reader.fieldnames or column not in reader.fieldnames:
            raise DataError(f"{path}: needs the columns timestamp and {column}, has {reader.fieldnames}")
        times, values = [], []
        for row in reader:
            times.append(row["timestamp"])
            values.append(row[column])
    return times, values


def load_corpus(corpus: Path) -> list[DataFile]:
    """Every labelled file of the corpus, in the label file's order."""
    windows = load_windows(corpus)
    files = []
    for name, spans in windows.items():
        path = corpus / "data" / name
        if not path.exists():
            raise DataError(f"{path} is listed in the labels but missing; is {corpus} a whole NAB corpus?")
        times, values = _read_table(path, "value")
        ts = _times(times, str(path))
        try:
            x = np.array(values, dtype=np.float64)
        except ValueError as exc:
            raise DataError(f"{path}: a value is not a number ({exc})") from exc
        files.append(DataFile(name, ts, x, window_indices(ts, spans, str(path)), (times, values)))
    if not files:
        raise DataError(f"{corpus / 'labels' / 'combined_windows.json'} lists no files")
    return files


def read_scores(path: Path, n: int) -> npt.NDArray[np.float64]:
    """The anomaly_score column of a results file for a data file of `n` points."""
    _, scores = _read_table(path, "anomaly_score")
    if len(scores) != n:
        raise DataError(f"{path}: {len(scores)} rows, but its data file has {n}")
    return np.array(scores, dtype=np.float64)
