"""Per-series state kept as NumPy arrays, one row per series.

Detectors, calibration and the decision stage all keep their state in a `RowState`:
named arrays whose first axis is the row (one series), plus an optional Python object per
row for things that are not arrays (a fitted model). Growing, resetting, and the
byte-exact snapshot are written here once.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.errors import StateError

__all__ = ["Field", "FloatArray", "IntArray", "RowState", "unpickle"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_FORMAT = 1


def unpickle(data: bytes, what: str) -> Any:
    """Load one of our own snapshots (from our data directory); StateError if unreadable."""
    try:
        return pickle.loads(data)  # noqa: S301 - written by Vigil into its own data directory
    except Exception as exc:
        raise StateError(f"saved {what} is unreadable ({exc}); delete it to start fresh") from exc


@dataclass(frozen=True)
class Field:
    """One named array of a `RowState`: its per-row shape, dtype and initial value."""

    shape: tuple[int, ...] = ()
    dtype: npt.DTypeLike = np.float64
    fill: Any = 0.0


class RowState:
    """Named arrays with one row per series.

    Examples
    --------
    >>> s = RowState({"n": Field((), np.int64, 0), "buf": Field((3,), np.float64, np.nan)}, 2)
    >>> s.resize(3); s["buf"].shape
    (3, 3)
    >>> s["n"][1] = 5; RowState.from_bytes(s.to_bytes())["n"].tolist()
    [0, 5, 0]
    """

    def __init__(self, fields: Mapping[str, Field], n_rows: int = 0) -> None:
        self.fields = dict(fields)
        self.arrays: dict[str, np.ndarray] = {
            name: np.full((n_rows, *f.shape), f.fill, dtype=f.dtype) for name, f in self.fields.items()
        }
        self.objects: list[Any] = [None] * n_rows
        self.n_rows = n_rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self.arrays[name] = value

    def resize(self, n_rows: int) -> None:
        """Grow (new rows start cold) or shrink to `n_rows` rows."""
        if n_rows < 0:
            raise ValueError(f"n_rows must be >= 0, got {n_rows}")
        for name, f in self.fields.items():
            old = self.arrays[name]
            if n_rows <= old.shape[0]:
                self.arrays[name] = old[:n_rows].copy()
            else:
                new = np.full((n_rows, *f.shape), f.fill, dtype=f.dtype)
                new[: old.shape[0]] = old
                self.arrays[name] = new
        self.objects = (self.objects + [None] * n_rows)[:n_rows]
        self.n_rows = n_rows

    def reset(self, rows: np.ndarray) -> None:
        """Put `rows` back to their initial values, as if their series were new."""
        for name, f in self.fields.items():
            self.arrays[name][rows] = f.fill
        for r in np.asarray(rows).ravel().tolist():
            self.objects[r] = None

    def move(self, src: np.ndarray, dst: np.ndarray) -> None:
        """Copy rows `src` onto rows `dst` (used to compact the table after evictions)."""
        for arr in self.arrays.values():
            arr[dst] = arr[src]
        objs = [self.objects[i] for i in np.asarray(src).tolist()]
        for i, o in zip(np.asarray(dst).tolist(), objs, strict=True):
            self.objects[i] = o

    def payload(self) -> dict[str, Any]:
        """Everything needed to rebuild this state, as plain data (the arrays themselves)."""
        return {
            "format": _FORMAT,
            "fields": {k: (f.shape, np.dtype(f.dtype).str, f.fill) for k, f in self.fields.items()},
            "arrays": self.arrays,
            "objects": self.objects,
            "n_rows": self.n_rows,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> RowState:
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise StateError("saved state has an unknown format; delete it to start fresh")
        fields = {k: Field(tuple(s), np.dtype(d), fill) for k, (s, d, fill) in payload["fields"].items()}
        state = cls(fields, 0)
        state.arrays = payload["arrays"]
        state.objects = payload["objects"]
        state.n_rows = payload["n_rows"]
        return state

    def to_bytes(self) -> bytes:
        """Serialise exactly: restoring gives bit-identical arrays and equal objects."""
        return pickle.dumps(self.payload(), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> RowState:
        return cls.from_payload(unpickle(data, "state"))

    def check_fields(self, fields: Mapping[str, Field], what: str) -> None:
        """Raise StateError if a restored state does not have the fields `what` expects."""
        mine = {k: (f.shape, np.dtype(f.dtype)) for k, f in self.fields.items()}
        theirs = {k: (tuple(f.shape), np.dtype(f.dtype)) for k, f in fields.items()}
        if mine != theirs:
            raise StateError(
                f"saved state of {what} does not match its current parameters "
                f"(saved fields {sorted(mine)}, expected {sorted(theirs)}); "
                "delete the state to relearn, or restore the old parameters"
            )
