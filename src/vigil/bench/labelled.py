"""Read a labelled corpus for the event rules, in NAB's layout or as CSV files with a label column.

Two layouts, told apart by what the folder holds:

- NAB's: ``data/<category>/<name>.csv`` and ``labels/combined_windows.json``
  (`vigil.bench.nab_corpus`), with ``labels/index.json`` when the corpus has one;
  without it each file's index is derived (NAB's probation is not scored, the step is
  the median step, the windows are the rows inside each labelled span).
- CSV files (in the folder and its subfolders) with a ``label`` column beside the time and
  the value, ``timestamp,value,label``, the label 1/0 or true/false: how a user brings
  their own incidents. The value column is ``value``, or the one column that is neither
  time nor label. Time and value are read as `vigil backtest` reads them
  (`vigil.sources.csv.read_csv`: ISO-8601 or epoch times, empty or ``NaN`` values as gaps,
  rows sorted by time, the last of a repeated timestamp kept). Each maximal run of
  labelled rows is one window; the first 15 % of the file is not scored, or less where an
  event starts sooner; the step is the median step.

Files come sorted by name (their path in the corpus), and `half` splits them by that
order alone, never by their labels: ``odd`` the 1st, 3rd, 5th ..., ``even`` the 2nd, 4th ...
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vigil.bench.nab_corpus import DataFile, FileIndex, derive_index, load_corpus, load_index, median_step
from vigil.errors import DataError
from vigil.sources.csv import read_csv
from vigil.sources.csv_time import SAMPLE, TIME_COLUMNS, choose_time
from vigil.state import FloatArray

__all__ = ["HALVES", "LabelledCorpus", "half", "load_labelled", "read_labelled_csv"]

HALVES = ("odd", "even")
_LABELS = {"1": True, "true": True, "1.0": True, "0": False, "false": False, "0.0": False}
_NEITHER = (
    "is neither a corpus in NAB's layout (data/ and labels/combined_windows.json) "
    "nor a folder of CSV files with a label column (timestamp,value,label)"
)


@dataclass(frozen=True)
class LabelledCorpus:
    """The files of a labelled corpus, sorted by name, and each file's `FileIndex` (same order)."""

    root: Path
    layout: str  # how it was read, for the report
    files: list[DataFile]
    index: list[FileIndex]

    @property
    def events(self) -> int:
        return sum(len(ix.windows) for ix in self.index)


def half(names: Sequence[str], which: str) -> list[int]:
    """Positions of the files of one half: by name, ``odd`` the 1st, 3rd, ..., ``even`` the 2nd, 4th, ...

    >>> half(["b.csv", "a.csv", "c.csv"], "odd"), half(["b.csv", "a.csv", "c.csv"], "even")
    ([1, 2], [0])
    """
    if which not in HALVES:
        raise ValueError(f"half is {which!r}; write odd or even")
    order = sorted(range(len(names)), key=lambda i: names[i])
    return sorted(order[HALVES.index(which) :: 2])


def load_labelled(corpus: Path) -> LabelledCorpus:
    """Read `corpus` in whichever layout it has; a folder that is neither raises `DataError`."""
    if not corpus.is_dir():
        raise DataError(f"{corpus}: no such folder")
    if (corpus / "data").is_dir() and (corpus / "labels" / "combined_windows.json").is_file():
        files = sorted(load_corpus(corpus), key=lambda f: f.name)
        index = load_index(corpus, files)
        layout = "NAB's layout with labels/index.json"
        if index is None:
            index = [derive_index(f) for f in files]
            layout = "NAB's layout, index derived (NAB's probation)"
        files = [dataclasses.replace(f, windows=list(ix.windows)) for f, ix in zip(files, index, strict=True)]
        return LabelledCorpus(corpus, layout, files, index)
    paths = sorted(
        (p for p in corpus.rglob("*.csv") if not any(part.startswith(".") for part in p.relative_to(corpus).parts)),
        key=lambda p: p.relative_to(corpus).as_posix(),
    )
    if not paths:
        raise DataError(f"{corpus} {_NEITHER}")
    read = [read_labelled_csv(p, p.relative_to(corpus).as_posix()) for p in paths]
    return LabelledCorpus(corpus, "CSV files with a label column", [f for f, _ in read], [ix for _, ix in read])


def read_labelled_csv(path: Path, name: str) -> tuple[DataFile, FileIndex]:
    """One ``timestamp,value,label`` file as a `DataFile` named `name`, and its index.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
    >>> rows = [f"2024-01-01 00:{i:02d}:00,{i % 7},{'true' if i in (3, 4, 9) else 'false'}" for i in range(12)]
    >>> _ = p.write_text("timestamp,value,label\\n" + "\\n".join(rows) + "\\n")
    >>> f, ix = read_labelled_csv(p, "a.csv")
    >>> f.windows, ix
    ([(3, 4), (9, 9)], FileIndex(n=12, scored_from=1, interval_s=60.0, windows=[(3, 4), (9, 9)]))
    """
    column, value = _columns(path)
    series = read_csv(path, [value], skip_bad_rows=True)
    if series.skipped:
        line, why = series.skipped[0]
        raise DataError(f"{path}, line {line}: {why}")
    if len(series) < 2:
        raise DataError(f"{path}: {len(series)} row; a labelled file needs at least two")
    labels = _labels(path, column, series.t)
    edges = np.diff(np.concatenate([[0], labels.astype(np.int8), [0]]))
    windows = list(zip(np.flatnonzero(edges == 1).tolist(), (np.flatnonzero(edges == -1) - 1).tolist(), strict=True))
    n = len(series)
    first = min([math.floor(0.15 * n)] + [a for a, _ in windows[:1]])
    stamps = np.round(series.t * 1e6).astype(np.int64).astype("datetime64[us]")
    f = DataFile(name, stamps, series.values, windows)
    return f, FileIndex(n, first, median_step(stamps), windows)


def _columns(path: Path) -> tuple[str, str]:
    """The names of the label column and of the value column: ``value``, or the one column besides time and label."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next((row for row in csv.reader(fh) if any(cell.strip() for cell in row)), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} cannot be read ({exc})") from None
    names = [h.strip() for h in header]
    label = next((h for h in names if h.lower() == "label"), None)
    if label is None:
        raise DataError(f"{path} has no label column (its columns: {', '.join(names) or 'none'}); "
                        f"a labelled corpus is NAB's layout or CSV files with timestamp,value,label")
    others = [h for h in names if h.lower() not in TIME_COLUMNS and h != label]
    value = next((h for h in others if h.lower() == "value"), others[0] if len(others) == 1 else None)
    if value is None:
        raise DataError(f"{path}: no column named value among {', '.join(others) or 'none'}; name the value column 'value'")
    return label, value


def _labels(path: Path, column: str, kept: FloatArray) -> npt.NDArray[np.bool_]:
    """The label of each row `read_csv` kept (times `kept`): read in file order, sorted and deduplicated as it does."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        records = [(reader.line_num, row) for row in reader]
    h = next(i for i, (_, row) in enumerate(records) if any(cell.strip() for cell in row))
    names = [v.strip() for v in records[h][1]]
    j = names.index(column)
    rows = [(line, row) for line, row in records[h + 1 :] if len(row) == len(names)]  # read_csv took these
    values = []
    for line, row in rows:
        flag = _LABELS.get(row[j].strip().lower())
        if flag is None:
            raise DataError(f"{path}, line {line}: label {row[j]!r} is not 1, 0, true or false")
        values.append(flag)
    spec = choose_time(str(path), names, [[row[k] for _, row in rows[:SAMPLE]] for k in range(len(names))])
    t, _ = spec.parse([[row[k] for _, row in rows] for k in spec.columns])
    order = np.argsort(t, kind="stable")
    t, flags = t[order], np.array(values, dtype=np.bool_)[order]
    last = np.append(t[1:] != t[:-1], True)
    if not np.array_equal(t[last], kept):
        raise DataError(f"{path}: the label column does not line up with the rows read; check the file's rows")
    out: npt.NDArray[np.bool_] = flags[last]
    return out
