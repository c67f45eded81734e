"""Read a metric series from a CSV file, for `vigil backtest`.

Two layouts are read, both with a header line:

- the seed format ``Date,Timestamp,CPU_Utilization``. How the time is written is decided
  by parsing the first rows, in this order: ``Timestamp`` holds epoch numbers;
  ``Timestamp`` holds full ISO-8601 datetimes; ``Timestamp`` holds a time of day
  (``14:05`` or ``14:05:30.5``) that is joined to the date in ``Date``; ``Date`` holds
  full datetimes (``Timestamp`` is then ignored).
- plain ``timestamp,value``, the timestamp in ISO-8601 or an epoch number.

The time column is the one named ``timestamp``, ``time``, ``datetime``, ``date`` or
``ts`` (any case). Epoch numbers are seconds, or milliseconds, microseconds or nanoseconds
when they are too large to be seconds (above 1e11, 1e14 and 1e17 respectively, that is
after the year 5138 in seconds). Datetimes without an offset are UTC. Dates may use
``-`` or ``/`` (year first).

Values: with no value column named, the one numeric column that is not a time column.
Empty cells and ``NaN``/``NA``/``null`` are missing values and stay NaN (the pipeline
treats them as gaps). Rows out of time order are sorted (stably); of rows with the same
timestamp the last one is kept. Both are counted in the result.
"""

from __future__ import annotations

import csv
import gc
import io
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import numpy as np

from vigil.errors import DataError
from vigil.sources.csv_time import (
    MISSING,
    SAMPLE,
    TIME_COLUMNS,
    TimeSpec,
    choose_time,
    datetime_seconds,
    number,
    parse_numbers,
)
from vigil.state import FloatArray

__all__ = ["CsvSeries", "read_csv"]

_SHOW = 80
_FIX = "use --skip-bad-rows to skip such rows"
_NEEDS_CSV = re.compile(
    r'["\x0b\x0c\x1c-\x1e\x85\u2028\u2029]'
)  # what str.split(",") would get wrong


@dataclass(frozen=True)
class CsvSeries:
    """A series read from a CSV file, sorted by time.

    Attributes
    ----------
    t
        Epoch seconds (UTC), float64, strictly increasing.
    values
        Float64, shape (n,) for one value column, (n, d) for several. NaN = missing.
    columns
        Names of the value columns, in the order of the last axis of `values`.
    skipped
        ``(line_number, reason)`` of each row skipped with ``skip_bad_rows``.
    """

    t: FloatArray
    values: FloatArray
    columns: tuple[str, ...]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    path: str = ""
    time_format: str = ""  # how the time was read, e.g. "Date + Timestamp (time of day), UTC"
    out_of_order: int = 0  # rows that came earlier than the row before them
    duplicates: int = 0  # rows dropped because a later row had the same timestamp

    def __len__(self) -> int:
        return int(self.t.shape[0])


def read_csv(
    path: str | Path, value_columns: Sequence[str] | None = None, skip_bad_rows: bool = False
) -> CsvSeries:
    """Read a time series from a CSV file with a header line.

    Parameters
    ----------
    path
        The file (UTF-8, optionally with a byte-order mark).
    value_columns
        Names of the value columns; several make a multivariate series. None: the one
        numeric column that is not a time column.
    skip_bad_rows
        False: a row with the wrong number of fields, or a time or value that cannot be
        read, raises `DataError` naming its line. True: such rows are skipped and listed
        in `CsvSeries.skipped`.

    Returns
    -------
    CsvSeries
        Sorted by time, one row per timestamp.

    Cost: about a second per million rows (the csv module plus vectorised parsing).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cpu.csv"
    >>> _ = p.write_text("Date,Timestamp,CPU_Utilization\\n"
    ...                  "2024-03-01,00:01:00,41.5\\n2024-03-01,00:00:00,40.0\\n")
    >>> s = read_csv(p)
    >>> s.t.tolist(), s.values.tolist(), s.columns, s.out_of_order
    ([1709251200.0, 1709251260.0], [40.0, 41.5], ('CPU_Utilization',), 1)
    """
    name = str(path)
    rows, line_of = _split_rows(name, Path(path))
    h = next((i for i, row in enumerate(rows) if any(v.strip() for v in row)), None)
    if h is None:
        raise DataError(
            f"{name} is empty; it needs a header line such as 'timestamp,value' and data rows"
        )
    names = [v.strip() for v in rows[h]]
    _check_header(name, names)
    n_fields = len(names)
    data = rows[h + 1 :]
    del rows
    bad_width: list[tuple[int, int, str]] = []  # (record index in data, width, text)
    if set(map(len, data)) <= {n_fields}:
        good_idx: list[int] | range = range(len(data))
        good = data
    else:
        good_idx = [i for i, row in enumerate(data) if len(row) == n_fields]
        bad_width = [
            (i, len(row), ",".join(row))
            for i, row in enumerate(data)
            if len(row) != n_fields and any(v.strip() for v in row)
        ]
        good = [data[i] for i in good_idx]
    if not good and not bad_width:
        raise DataError(f"{name} has a header line but no data rows")
    sample = [[row[j] for row in good[:SAMPLE]] for j in range(n_fields)]
    time_spec = choose_time(name, names, sample)
    values_idx = _choose_values(name, names, sample, value_columns, time_spec)

    n = len(good)
    problems: dict[int, str] = {}  # index into `good` -> reason
    time_cols = [list(map(itemgetter(j), good)) for j in time_spec.columns]
    t, t_bad = time_spec.parse(time_cols)
    for i in np.flatnonzero(t_bad).tolist():
        shown = ",".join(col[i] for col in time_cols)
        problems[i] = f"cannot read the time {shown!r} ({time_spec.describe})"
    del time_cols
    vals = np.empty((n, len(values_idx)))
    for k, j in enumerate(values_idx):
        cells = list(map(itemgetter(j), good))
        vals[:, k], v_bad = parse_numbers(cells, missing_ok=True)
        for i in np.flatnonzero(v_bad).tolist():
            problems.setdefault(i, f"cannot read {names[j]} {cells[i]!r} as a number")

    first = h + 1  # record number of data[0]
    skipped = [
        (line_of(first + i), f"{width} fields, expected {n_fields}", row)
        for i, width, row in bad_width
    ]
    skipped += [
        (line_of(first + good_idx[i]), why, ",".join(good[i])) for i, why in problems.items()
    ]
    skipped.sort()
    if skipped and not skip_bad_rows:
        line, why, row = skipped[0]
        more = f" (and {len(skipped) - 1} more such rows)" if len(skipped) > 1 else ""
        raise DataError(f"{name}, line {line}: {why} in row {_shorten(row)}{more}; {_FIX}")
    del data, good  # free the row lists before sorting

    keep = np.ones(n, dtype=bool)
    keep[np.fromiter(problems, dtype=np.intp, count=len(problems))] = False
    t, vals = t[keep], vals[keep]
    if t.size == 0:
        raise DataError(f"{name}: no usable rows ({len(skipped)} skipped as unreadable)")
    out_of_order = int(np.count_nonzero(np.diff(t) < 0))
    if out_of_order:
        order = np.argsort(t, kind="stable")
        t, vals = t[order], vals[order]
    last = np.append(t[1:] != t[:-1], True)
    duplicates = int(t.size - np.count_nonzero(last))
    if duplicates:
        t, vals = t[last], vals[last]
    return CsvSeries(
        t=t,
        values=vals[:, 0].copy() if len(values_idx) == 1 else vals,
        columns=tuple(names[j] for j in values_idx),
        skipped=[(line, why) for line, why, _ in skipped],
        path=name,
        time_format=time_spec.describe,
        out_of_order=out_of_order,
        duplicates=duplicates,
    )


def _split_rows(name: str, path: Path) -> tuple[list[list[str]], Callable[[int], int]]:
    """All records of the file, and a map from record number to its first physical line.

    Without quotes or unusual line breaks, lines are split on commas directly (several
    times faster than the csv module, same result); otherwise the csv module reads them.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DataError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{name} is a directory; give a CSV file") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DataError(f"{name} cannot be read ({exc.strerror})") from exc
    with _no_gc():  # a million small lists would trigger the cyclic GC again and again
        if _NEEDS_CSV.search(text) is None:
            return [line.split(",") for line in text.splitlines()], lambda rec: rec + 1
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise DataError(f"{name}, line {reader.line_num}: not valid CSV ({exc})") from exc
    if reader.line_num == len(rows):
        return rows, lambda rec: rec + 1
    starts: list[int] = []  # some record spans several lines (a quoted line break)
    reader = csv.reader(io.StringIO(text, newline=""))
    previous = 0
    for _ in reader:
        starts.append(previous + 1)
        previous = reader.line_num
    return rows, starts.__getitem__


def _check_header(name: str, names: list[str]) -> None:
    looks_like_data = [
        h for h in names if h and (number(h) is not None or datetime_seconds(h) is not None)
    ]
    if looks_like_data:
        raise DataError(
            f"{name} has no header line (the first line holds {_shorten(','.join(names))!r}); "
            "add one such as 'timestamp,value'"
        )
    empty = [i + 1 for i, h in enumerate(names) if not h]
    if empty:
        raise DataError(f"{name}: header column {empty[0]} has no name; name every column")
    seen = sorted({h for h in names if names.count(h) > 1})
    if seen:
        raise DataError(
            f"{name}: header names {', '.join(seen)} more than once; give each column its own name"
        )


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _choose_values(
    name: str,
    names: list[str],
    records: list[list[str]],
    value_columns: Sequence[str] | None,
    time_spec: TimeSpec,
) -> list[int]:
    time_like = {i for i, h in enumerate(names) if h.lower() in TIME_COLUMNS}
    if value_columns:
        out = []
        for wanted in value_columns:
            matches = [i for i, h in enumerate(names) if h == wanted] or [
                i for i, h in enumerate(names) if h.lower() == wanted.strip().lower()
            ]
            if not matches:
                raise DataError(
                    f"{name} has no column {wanted!r}; its columns are {', '.join(names)}"
                )
            if matches[0] in time_spec.columns:
                raise DataError(f"{name}: {wanted!r} is the time column; name a value column")
            if matches[0] in out:
                raise DataError(f"{name}: value column {wanted!r} is named twice")
            out.append(matches[0])
        return out
    numeric = []
    for i in range(len(names)):
        if i in time_like:
            continue
        cells = [s for s in records[i][:SAMPLE] if s.strip().lower() not in MISSING]
        readable = sum(number(s) is not None for s in cells)
        if readable and readable * 2 >= len(cells):
            numeric.append(i)
    if not numeric:
        raise DataError(f"{name} has no numeric value column (columns: {', '.join(names)})")
    if len(numeric) > 1:
        listed = ", ".join(names[i] for i in numeric)
        raise DataError(
            f"{name} has several numeric columns ({listed}); pick one with --value-column NAME "
            "(repeat it for a multivariate series)"
        )
    return numeric


def _shorten(row: str) -> str:
    return repr(row if len(row) <= _SHOW else row[: _SHOW - 3] + "...")
