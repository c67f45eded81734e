"""The series of one query: label sets <-> rows, their latest outputs and recent history.

Rows are reused after a series is evicted, so arrays stay as large as the most series seen
at once, not as all series ever seen. Everything is kept in a `RowState`, so the table
snapshots and restores like the detectors do.

The history is what the page draws, kept small: 18 bytes a point. Times are whole
milliseconds after the row's anchor time (uint32: 49 days; points older than that before
the newest are dropped), the value and the expected value float32, the band's two
half-widths from the expected value (or from the value where there is none) and
``1 - score`` as bfloat16 (float32's range, 3 significant digits: the band's edges to
0.4 % of its width, a score near the threshold to 1e-7).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from vigil.errors import StateError
from vigil.formatting import json_numbers
from vigil.labels import series_id, series_key
from vigil.snapshot import count, entry, from_blob, refuse, to_blob
from vigil.state import Field, RowState

__all__ = ["SeriesTable"]

LATEST = ("value", "expected", "lower", "upper", "score")
HISTORY = ("t", "value", "expected", "lower", "upper", "score")
_MAX_MS = 2**32 - 1  # the latest point after the anchor a history can hold


def bfloat16(x: np.ndarray) -> np.ndarray:
    """The upper half of each float32, rounded to nearest even (NaN stays NaN), as uint16.

    >>> x = np.array([1.0, 41.5, 3e-5, -2e30, np.nan]); y = from_bfloat16(bfloat16(x))
    >>> y[:2].tolist(), bool(np.all(np.abs(y[:4] / x[:4] - 1) < 0.004)), bool(np.isnan(y[4]))
    ([1.0, 41.5], True, True)
    """
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
    return np.where(np.isnan(x), np.uint32(0x7FC0), rounded).astype(np.uint16)


def from_bfloat16(u: np.ndarray) -> np.ndarray:
    return (np.asarray(u, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)


def _packed(labels: dict[str, str]) -> tuple[str, ...]:
    """A label set as one flat tuple of interned strings (half a dict's size; series share their names and values)."""
    return tuple(sys.intern(x) for kv in labels.items() for x in kv)


class Labels(Sequence[dict[str, str] | None]):
    """The label sets of a table's rows, as dicts made when asked for (None: a free row)."""

    def __init__(self, packed: list[tuple[str, ...] | None]) -> None:
        self._packed = packed

    def __len__(self) -> int:
        return len(self._packed)

    @overload
    def __getitem__(self, row: int) -> dict[str, str] | None: ...

    @overload
    def __getitem__(self, row: slice) -> list[dict[str, str] | None]: ...

    def __getitem__(self, row: int | slice) -> dict[str, str] | None | list[dict[str, str] | None]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        flat = self._packed[row]
        return None if flat is None else dict(zip(flat[::2], flat[1::2], strict=True))


class SeriesTable:
    """Label sets of one query mapped to rows, with per-row latest outputs and history.

    Per series, the Python objects are its key (and its entry in `index`) and its labels as
    a tuple of interned strings; its API id is a uint64 in the state (`id_of`, `row_of_id`).
    """

    def __init__(self, query: str, history_points: int) -> None:
        self.query = query
        self.history_points = history_points
        self.keys: list[str | None] = []
        self._packed: list[tuple[str, ...] | None] = []
        self.labels = Labels(self._packed)
        self.index: dict[str, int] = {}
        self.free: list[int] = []
        self.state = RowState(self._fields(), 0)

    def id_of(self, row: int) -> str:
        """The series' id in the API (`vigil.labels.series_id`)."""
        return f"{int(self.state['id64'][row]):016x}"

    def row_of_id(self, sid: str) -> int | None:
        """The row of the series with API id `sid`, if it is held."""
        try:
            wanted = np.uint64(int(sid, 16)) if len(sid) == 16 else None
        except ValueError:
            return None
        if wanted is None:
            return None
        for row in np.flatnonzero(self.state["id64"][: self.n_rows] == wanted).tolist():
            key = self.keys[row]
            if key is not None and series_id(self.query, key) == sid:
                return int(row)
        return None

    def _fields(self) -> dict[str, Field]:
        h = self.history_points
        fields = {
            "last_t": Field((), np.float64, -np.inf),  # time of the last sample taken in
            "last_seen": Field((), np.float64, np.nan),  # wall clock of the last fetch with data
            "anomalous": Field((), np.bool_, False),
            "warming": Field((), np.bool_, True),
            "id64": Field((), np.uint64, 0),  # the series' API id
            "hist_pos": Field((), np.int32, 0),
            "hist_len": Field((), np.int32, 0),
            "hist_t0": Field((), np.float64, np.nan),  # the anchor of the history's times
            "hist_t": Field((h,), np.uint32, 0),  # milliseconds after the anchor
            "hist_value": Field((h,), np.float32, np.nan),
            "hist_expected": Field((h,), np.float32, np.nan),
            "hist_below": Field((h,), np.uint16, 0x7FC0),  # bfloat16: the band's reach below, above
            "hist_above": Field((h,), np.uint16, 0x7FC0),
            "hist_rest": Field((h,), np.uint16, 0x7FC0),  # bfloat16: 1 - score
        }
        for name in LATEST:
            fields[name] = Field((), np.float64, np.nan)
        return fields

    def __len__(self) -> int:
        return len(self.index)

    @property
    def n_rows(self) -> int:
        """Rows in use or freed (the arrays may have room for more)."""
        return len(self.keys)

    def active_rows(self) -> np.ndarray:
        return np.array([i for i, k in enumerate(self.keys) if k is not None], dtype=np.intp)

    def rows_for(
        self, labels: list[dict[str, str]], limit: int, keys: list[str] | None = None
    ) -> tuple[np.ndarray, int]:
        """Rows of these series, adding new ones while fewer than `limit` are held.

        Returns the rows (-1 for a series refused by the limit) and how many were refused.
        New rows start cold (their state is reset by the caller's pipeline). `keys`: the
        series' `series_key`s when the caller has them already.
        """
        if keys is None:
            keys = [series_key(lab) for lab in labels]
        index = self.index
        rows = np.array([index.get(k, -1) for k in keys], dtype=np.intp)
        missing = np.flatnonzero(rows < 0).tolist()
        refused = 0
        new = min(len(missing), max(limit - len(index), 0))
        needed = len(self.keys) + max(new - len(self.free), 0)
        if needed > self.state.n_rows:
            # the first fetch brings the fleet: rows for it exactly; later, grow once per batch by
            # an eighth more (O(n) overall)
            spare = needed // 8 if self.state.n_rows else 0
            self.state.resize(max(64, needed + spare))
        for i in missing:
            row = index.get(keys[i])  # the same series twice in one batch
            if row is None:
                if len(index) >= limit:
                    rows[i] = -1
                    refused += 1
                    continue
                row = self._add(keys[i], labels[i])
            rows[i] = row
        return rows, refused

    def _add(self, key: str, labels: dict[str, str]) -> int:
        if self.free:
            row = self.free.pop()
            self.keys[row], self._packed[row] = key, _packed(labels)
            self.state.reset(np.array([row]))
        else:
            row = len(self.keys)
            self.keys.append(key)
            self._packed.append(_packed(labels))
            if row >= self.state.n_rows:
                self.state.resize(max(64, row + 1 + (row + 1) // 8))
        self.state["id64"][row] = int(series_id(self.query, key), 16)
        self.index[key] = row
        return row

    def remove(self, rows: np.ndarray) -> None:
        for row in rows.tolist():
            key = self.keys[row]
            if key is None:
                continue
            del self.index[key]
            self.keys[row] = self._packed[row] = None
            self.free.append(row)
        self.state.reset(rows)

    def record(self, rows: np.ndarray, t: np.ndarray, values: dict[str, np.ndarray], valid: np.ndarray) -> None:
        """Append the valid samples of a block (rows x steps) to history and latest values."""
        s = self.state
        h = self.history_points
        for j in range(t.shape[1]):
            ok = valid[:, j]
            if not ok.any():
                continue
            r, tj = rows[ok], t[ok, j]
            fresh = s["hist_len"][r] == 0
            s["hist_t0"][r[fresh]] = tj[fresh]
            late = tj - s["hist_t0"][r] > _MAX_MS / 1000
            if late.any():
                self._rebase(r[late], tj[late])
            pos = s["hist_pos"][r]
            s["hist_t"][r, pos] = np.rint((tj - s["hist_t0"][r]) * 1000)
            value, expected = values["value"][ok, j], values["expected"][ok, j]
            s["hist_value"][r, pos] = value
            s["hist_expected"][r, pos] = expected
            centre = np.where(np.isnan(expected), value, expected)
            s["hist_below"][r, pos] = bfloat16(centre - values["lower"][ok, j])
            s["hist_above"][r, pos] = bfloat16(values["upper"][ok, j] - centre)
            s["hist_rest"][r, pos] = bfloat16(1.0 - values["score"][ok, j])
            s["hist_pos"][r] = (pos + 1) % h
            s["hist_len"][r] = np.minimum(s["hist_len"][r] + 1, h)
            for name in LATEST:
                s[name][r] = values[name][ok, j]
            s["last_t"][r] = tj

    def _rebase(self, rows: np.ndarray, t_new: np.ndarray) -> None:
        """Move the anchor of these rows so that `t_new` fits, dropping points too old to stay."""
        s, h = self.state, self.history_points
        for row, tn in zip(rows.tolist(), t_new.tolist(), strict=True):
            n, pos = int(s["hist_len"][row]), int(s["hist_pos"][row])
            order = np.arange(pos - n, pos) % h
            times = s["hist_t0"][row] + s["hist_t"][row, order] / 1000
            keep = times >= tn - _MAX_MS / 1000
            anchor = float(times[keep][0]) if keep.any() else tn
            s["hist_t"][row, order[keep]] = np.rint((times[keep] - anchor) * 1000)
            s["hist_len"][row] = int(keep.sum())
            s["hist_t0"][row] = anchor

    def history(self, row: int, since: float | None = None, last: int | None = None) -> dict[str, list[float | None]]:
        """The row's recent points (the `last` ones, or those from `since` on), oldest first, as JSON
        numbers (`json_number`: NaN as None)."""
        s = self.state
        n, pos, h = int(s["hist_len"][row]), int(s["hist_pos"][row]), self.history_points
        if last is not None:
            n = min(n, max(last, 0))
        order = (np.arange(pos - n, pos) % h) if n else np.array([], dtype=np.intp)
        t = s["hist_t0"][row] + s["hist_t"][row, order] / 1000
        value = s["hist_value"][row, order].astype(np.float64)
        expected = s["hist_expected"][row, order].astype(np.float64)
        centre = np.where(np.isnan(expected), value, expected)
        columns = {
            "t": t, "value": value, "expected": expected,
            "lower": centre - from_bfloat16(s["hist_below"][row, order]),
            "upper": centre + from_bfloat16(s["hist_above"][row, order]),
            "score": 1.0 - from_bfloat16(s["hist_rest"][row, order]),
        }
        keep = slice(None) if since is None else t >= since
        return {name: json_numbers(columns[name][keep]) for name in HISTORY}

    def payload(self) -> dict[str, Any]:
        return {
            "query": self.query, "history_points": self.history_points, "keys": self.keys,
            "labels": self.labels[:], "state": self.state.payload(),
        }

    def load(self, payload: Any) -> None:
        """Take the state of `payload` (a `payload()` decoded); StateError, and nothing changed, if it does not fit."""
        what = "series table"
        query, history = entry(payload, "query", str, what), count(payload, "history_points", what)
        if query != self.query or history != self.history_points:
            raise StateError(
                f"saved series table of query {query!r} (history {history}) "
                f"does not fit query {self.query!r} (history {self.history_points})"
            )
        state = RowState.from_payload(entry(payload, "state", dict, what))
        state.check_fields(self._fields(), f"query {self.query!r}")
        keys, labels = entry(payload, "keys", list, what), entry(payload, "labels", list, what)
        if len(keys) != len(labels) or len(keys) > state.n_rows or not all(map(_series, keys, labels)):
            raise refuse(what, "its series do not match its rows")
        index = {k: i for i, k in enumerate(keys) if k is not None}
        if len(index) != sum(k is not None for k in keys):
            raise refuse(what, "a series is in it twice")
        self.state = state
        self.keys = keys
        self._packed[:] = [None if lab is None else _packed(lab) for lab in labels]
        for key, row in index.items():
            state["id64"][row] = int(series_id(self.query, key), 16)
        self.index = index
        self.free = [i for i, k in enumerate(self.keys) if k is None]

    def snapshot(self) -> bytes:
        return to_blob(self.payload())

    def restore(self, data: bytes) -> None:
        self.load(from_blob(data, "series table"))


def _series(key: Any, labels: Any) -> bool:
    """Whether a saved row holds a series (a key and its labels as strings) or nothing (both None)."""
    if key is None or labels is None:
        return key is None and labels is None
    return isinstance(key, str) and isinstance(labels, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    )
