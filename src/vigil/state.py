"""Per-series state kept as NumPy arrays, one row per series.

Detectors, calibration and the decision stage all keep their state in a `RowState`:
named arrays whose first axis is the row (one series), plus an optional object per row
(a fitted model) that the state's owner saves through an `ObjectCodec`. Growing,
resetting, and the byte-exact payload that `vigil.snapshot` saves are written here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from vigil.errors import StateError
from vigil.snapshot import ARRAY_KINDS, count, entry, from_blob, is_whole, refuse, to_blob

__all__ = ["Field", "FloatArray", "IntArray", "ObjectCodec", "RowState"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_FORMAT = 2  # of a RowState's payload


class ObjectCodec(Protocol):
    """How the owner of a `RowState` saves its per-row objects as payload trees and rebuilds them."""

    def encode(self, obj: Any) -> Any: ...

    def decode(self, payload: Any) -> Any: ...  # StateError if `payload` is not an object it saved


@dataclass(frozen=True)
class Field:
    """One named array of a `RowState`: its per-row shape, dtype and initial value."""

    shape: tuple[int, ...] = ()
    dtype: npt.DTypeLike = np.float64
    fill: Any = 0.0


class RowState:
    """Named arrays with one row per series, and an object per row saved through `codec`.

    Examples
    --------
    >>> s = RowState({"n": Field((), np.int64, 0), "buf": Field((3,), np.float64, np.nan)}, 2)
    >>> s.resize(3); s["buf"].shape
    (3, 3)
    >>> s["n"][1] = 5; RowState.from_bytes(s.to_bytes())["n"].tolist()
    [0, 5, 0]
    """

    def __init__(self, fields: Mapping[str, Field], n_rows: int = 0, codec: ObjectCodec | None = None) -> None:
        self.fields = dict(fields)
        self.arrays: dict[str, np.ndarray] = {
            name: np.full((n_rows, *f.shape), f.fill, dtype=f.dtype) for name, f in self.fields.items()
        }
        self.objects: list[Any] = [None] * n_rows
        self.n_rows = n_rows
        self.codec = codec

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
        """Everything needed to rebuild this state, as a payload tree (the arrays themselves)."""
        objects = [(r, o) for r, o in enumerate(self.objects) if o is not None]
        if objects and self.codec is None:
            raise TypeError("this state holds objects but has no codec to save them")
        return {
            "format": _FORMAT,
            "fields": {
                k: {"shape": list(f.shape), "dtype": np.dtype(f.dtype).str, "fill": f.fill}
                for k, f in self.fields.items()
            },
            "arrays": dict(self.arrays),
            "objects": [[r, self.codec.encode(o)] for r, o in objects] if self.codec is not None else [],
            "n_rows": self.n_rows,
        }

    @classmethod
    def from_payload(cls, payload: Any, codec: ObjectCodec | None = None) -> RowState:
        """The state saved as `payload`, its objects rebuilt by `codec`; `StateError` if it is not one.

        Only the owner of a state knows its codec: restore a detector's state through the
        detector (`load_state`).
        """
        what = "state"
        if entry(payload, "format", int, what) != _FORMAT:
            raise refuse(what, f"state format {payload['format']!r}, not {_FORMAT}")
        n_rows = count(payload, "n_rows", what)
        fields = {k: _field(k, spec) for k, spec in entry(payload, "fields", dict, what).items()}
        arrays = entry(payload, "arrays", dict, what)
        if set(arrays) != set(fields):
            raise refuse(what, f"it has arrays {sorted(arrays)} for fields {sorted(fields)}")
        for k, f in fields.items():
            arr = arrays[k]
            if not isinstance(arr, np.ndarray) or arr.dtype != f.dtype or arr.shape != (n_rows, *f.shape):
                raise refuse(what, f"its array {k!r} does not have {n_rows} rows of shape {f.shape}, dtype {f.dtype}")
        state = cls(fields, 0, codec)
        state.arrays, state.n_rows = dict(arrays), n_rows
        state.objects = [None] * n_rows
        for item in entry(payload, "objects", list, what):
            if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int and 0 <= item[0] < n_rows):
                raise refuse(what, "an object is not a row and its payload")
            if codec is None:
                raise refuse(what, "it holds objects that its owner does not save")
            state.objects[item[0]] = codec.decode(item[1])
        return state

    def to_bytes(self) -> bytes:
        """Serialise exactly: restoring gives bit-identical arrays and equal objects."""
        return to_blob(self.payload())

    @classmethod
    def from_bytes(cls, data: bytes, codec: ObjectCodec | None = None) -> RowState:
        return cls.from_payload(from_blob(data), codec)

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


def _field(name: str, spec: Any) -> Field:
    shape, dtype = entry(spec, "shape", list, "state"), entry(spec, "dtype", str, "state")
    fill = entry(spec, "fill", (bool, int, float), "state")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = np.dtype(object)
    if dt.kind not in ARRAY_KINDS or not all(map(is_whole, shape)):
        raise refuse("state", f"field {name!r} is a {dtype} {shape}")
    return Field(tuple(shape), dt, fill)
