"""A NAB corpus folder: ``data/<category>/<name>.csv``, ``labels/combined_windows.json``, ``labels/index.json``.

The windows come as timestamps in ``combined_windows.json``; ``index.json``, where the
corpus has one, gives per file its rows, first scored row, step and windows as row
indexes (the event rules' input). Without it, `derive_index` makes the same from the files.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vigil.errors import DataError

__all__ = [
    "DataFile", "FileIndex", "derive_index", "load_corpus", "load_index", "load_windows", "median_step",
    "read_scores", "window_indices",
]


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


@dataclass(frozen=True)
class FileIndex:
    """What the event rules need of a file: `n` rows, the first scored row, the step, the windows.

    Windows are ``(first, last)`` row indexes, both inclusive, in row order.
    """

    n: int
    scored_from: int
    interval_s: float
    windows: list[tuple[int, int]]


def median_step(timestamps: npt.NDArray[np.datetime64]) -> float:
    """The median time between two rows, in seconds (0 for a file of one row).

    >>> median_step(np.array(["2024-01-01T00:00", "2024-01-01T00:05", "2024-01-01T00:15"], dtype="datetime64[us]"))
    450.0
    """
    if timestamps.shape[0] < 2:
        return 0.0
    return float(np.median(np.diff(timestamps.astype("datetime64[us]").astype(np.int64)))) / 1e6


def derive_index(f: DataFile) -> FileIndex:
    """The index NAB's layout implies: NAB's probation, ``min(floor(0.15 n), 750)`` rows, is not scored.

    >>> t = np.datetime64("2024-01-01") + np.arange(2000) * np.timedelta64(300, "s")
    >>> derive_index(DataFile("c/a.csv", t, np.zeros(2000), [(900, 950)]))
    FileIndex(n=2000, scored_from=300, interval_s=300.0, windows=[(900, 950)])
    """
    return FileIndex(len(f), min(math.floor(0.15 * len(f)), 750), median_step(f.timestamps), list(f.windows))


def _checked(entry: object, f: DataFile, where: str) -> FileIndex:
    try:
        if not isinstance(entry, dict):
            raise TypeError("not an object")
        n, first, step = int(entry["n"]), int(entry["scored_from"]), float(entry["interval_s"])
        windows = [(int(a), int(b)) for a, b in entry["windows"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: the entry of {f.name} needs n, scored_from, interval_s and windows ({exc})") from None
    if n != len(f):
        raise DataError(f"{where}: {f.name} has n {n}, but its data file has {len(f)} rows")
    if not 0 <= first < n or not step > 0:
        raise DataError(f"{where}: {f.name} has scored_from {first} and interval_s {step}; "
                        f"write a row from 0 to {n - 1} and a step above 0")
    for a, b in windows:
        if not 0 <= a <= b < n:
            raise DataError(f"{where}: {f.name} has window [{a}, {b}]; windows are rows from 0 to {n - 1}, first <= last")
    return FileIndex(n, first, step, windows)


def load_index(corpus: Path, files: Sequence[DataFile]) -> list[FileIndex] | None:
    """Each file's entry of ``labels/index.json``, in the order of `files`; None when there is no such file."""
    path = corpus / "labels" / "index.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object of files, found {type(raw).__name__}")
    missing = [f.name for f in files if f.name not in raw]
    if missing:
        raise DataError(f"{path} has no entry for {missing[0]}" + (f" and {len(missing) - 1} more" if missing[1:] else ""))
    return [_checked(raw[f.name], f, str(path)) for f in files]
