"""Per-series state kept as NumPy arrays, one row per series, and the snapshot format that saves it.

Detectors, calibration and the decision stage all keep their state in a `RowState`:
named arrays whose first axis is the row (one series), plus an optional object per row
(a fitted model) that the state's owner saves through an `ObjectCodec`. Growing,
resetting, and the byte-exact snapshot are written here once.

A snapshot is a payload tree (dicts, lists, tuples, str, int, float, bool, None; NumPy
arrays as leaves) as JSON metadata, each array a reference with its dtype and shape, plus
the arrays' bytes as buffers (`encode`, `decode`; `pack` makes one blob of both). Reading
one only parses JSON and views bytes as arrays of booleans, integers or floats, so a
crafted snapshot cannot run code; it, or one of another format or version, is refused.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from vigil.errors import StateError

__all__ = [
    "Field", "FloatArray", "IntArray", "ObjectCodec", "RowState", "count", "decode", "encode", "entry",
    "from_blob", "pack", "refuse", "to_blob", "unpack",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Buffer = bytes | bytearray | memoryview

FORMAT = "vigil-state"
VERSION = 1  # of the snapshot format: a reader refuses any other
MAGIC = b"VGLSTATE"  # opens a packed blob; JSON metadata opens with "{"
_TAG = "$"  # the key that marks a JSON object standing for an array, a tuple, a float or a dict
_KINDS = "biuf"  # dtype kinds a snapshot may hold: bool, int, uint, float
_LENGTH = struct.Struct("<Q")
_FORMAT = 2  # of a RowState's payload


def refuse(what: str, detail: str) -> StateError:
    """The error for a saved `what` that cannot be used: why, and to delete it."""
    return StateError(f"saved {what} is an old or unreadable snapshot ({detail}); delete it to start fresh")


def entry(payload: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """`payload[key]`, checked to be a `kind`; the error of `refuse` if it is missing or is not."""
    if not isinstance(payload, dict) or key not in payload:
        raise refuse(what, f"it has no {key!r}")
    value = payload[key]
    if not isinstance(value, kind):
        raise refuse(what, f"its {key!r} is a {type(value).__name__}")
    return value


def count(payload: Any, key: str, what: str) -> int:
    """`payload[key]`, checked to be a whole number >= 0."""
    value = entry(payload, key, int, what)
    if not _whole(value):
        raise refuse(what, f"its {key!r} is {value!r}")
    return int(value)


def _whole(n: Any) -> bool:
    return type(n) is int and n >= 0  # not a bool


def encode(tree: Any) -> tuple[bytes, list[memoryview]]:
    """The JSON metadata of a payload tree and the buffers of its arrays, in order.

    The buffers are views of the arrays themselves (of a contiguous copy when an array is
    not contiguous): the arrays must not change until the buffers are written.
    """
    buffers: list[memoryview] = []

    def node(x: Any) -> Any:
        if x is None or isinstance(x, (bool, int, str)) or _plain(x):
            return x
        if isinstance(x, float):
            return x if math.isfinite(x) else {_TAG: "float", "value": repr(float(x))}
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in _KINDS:
                raise TypeError(f"a snapshot cannot hold an array of {x.dtype}")
            contiguous = np.ascontiguousarray(x)
            buffers.append(contiguous.reshape(-1).view(np.uint8).data)
            return {_TAG: "array", "buffer": len(buffers) - 1, "dtype": x.dtype.str, "shape": list(x.shape)}
        if isinstance(x, np.generic):
            return node(x.item())
        if isinstance(x, list):
            return [node(v) for v in x]
        if isinstance(x, tuple):
            return {_TAG: "tuple", "items": [node(v) for v in x]}
        if isinstance(x, dict):
            if _TAG not in x and all(isinstance(k, str) for k in x):
                return {k: node(v) for k, v in x.items()}
            return {_TAG: "dict", "items": [[node(k), node(v)] for k, v in x.items()]}
        raise TypeError(f"a snapshot cannot hold a {type(x).__name__}")

    body = node(tree)
    meta = {"format": FORMAT, "version": VERSION, "buffers": len(buffers), "tree": body}
    return json.dumps(meta, allow_nan=False, separators=(",", ":")).encode(), buffers


def _plain(x: Any) -> bool:
    """Whether `x` is a list of str and None, or a dict of str to str (series keys, labels): JSON as it is."""
    if type(x) is list:
        return all(v is None or type(v) is str for v in x)
    if type(x) is dict:
        return _TAG not in x and all(type(k) is str and type(v) is str for k, v in x.items())
    return False


class _Malformed(ValueError):
    pass


def decode(meta: Buffer, buffers: Sequence[Buffer], what: str = "state") -> Any:
    """The payload tree of `encode`'s metadata and buffers; `StateError` if they are not one.

    Arrays are views of writable buffers (no copy) and copies of read-only ones.
    """
    used: set[int] = set()

    def tagged(x: dict[str, Any]) -> Any:  # the JSON parser calls this for every object, innermost first
        if _TAG not in x:
            return x
        tag = x[_TAG]
        if tag == "array":
            return _array(_keys(x, "buffer", "dtype", "shape"), buffers, used)
        if tag == "tuple":
            return tuple(_list(_keys(x, "items")[0]))
        if tag == "float" and _keys(x, "value")[0] in ("nan", "inf", "-inf"):
            return float(x["value"])
        if tag == "dict":
            pairs = [_list(p) for p in _list(_keys(x, "items")[0])]
            if any(len(p) != 2 for p in pairs):
                raise _Malformed("a dict item is not a key and a value")
            return dict(pairs)
        raise _Malformed(f"cannot read a {tag!r} node")

    problem = ""
    try:
        doc = json.loads(bytes(meta), object_hook=tagged, parse_constant=_no_constant)
    except (_Malformed, TypeError) as exc:  # TypeError: an unhashable dict key
        problem = str(exc)
        try:  # the header may still say that it is another version of the format
            doc = json.loads(bytes(meta))
        except (ValueError, RecursionError):
            doc = None
    except (ValueError, RecursionError) as exc:
        old = bytes(meta[:1]) == b"\x80"
        raise refuse(what, "a pickle from an earlier version of Vigil" if old else f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or set(doc) != {"format", "version", "buffers", "tree"}:
        raise refuse(what, "not in Vigil's snapshot format")
    if doc["version"] != VERSION:
        raise refuse(what, f"snapshot format version {doc['version']!r}, and this Vigil reads version {VERSION}")
    if problem:
        raise refuse(what, problem)
    if doc["buffers"] != len(buffers) or len(used) != len(buffers):
        raise refuse(what, f"it declares {doc['buffers']!r} buffers, has {len(buffers)} and uses {len(used)}")
    return doc["tree"]


def _no_constant(name: str) -> Any:
    raise _Malformed(f"{name} is not JSON")


def _keys(x: dict[str, Any], *names: str) -> list[Any]:
    if set(x) != {_TAG, *names}:
        raise _Malformed(f"a {x[_TAG]!r} has keys {sorted(x)}")
    return [x[n] for n in names]


def _list(x: Any) -> list[Any]:
    if not isinstance(x, list):
        raise _Malformed(f"a {type(x).__name__} where a list belongs")
    return x


def _array(spec: list[Any], buffers: Sequence[Buffer], used: set[int]) -> np.ndarray:
    index, dtype, shape = spec
    if not _whole(index) or index >= len(buffers) or index in used:
        raise _Malformed(f"array buffer {index!r} is not one of its buffers, or is used twice")
    try:
        dt = np.dtype(dtype) if isinstance(dtype, str) else None
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.kind not in _KINDS or dt.str != dtype:
        raise _Malformed(f"dtype {dtype!r} is not one of bool, int, uint or float")
    if not isinstance(shape, list) or not all(map(_whole, shape)):
        raise _Malformed(f"shape {shape!r} is not a list of whole numbers >= 0")
    size = math.prod(shape)
    buf = buffers[index]
    nbytes = memoryview(buf).nbytes
    if nbytes != size * dt.itemsize:
        raise _Malformed(f"buffer {index} holds {nbytes} bytes, not the {size * dt.itemsize} of a {dtype} {shape}")
    used.add(index)
    arr = np.frombuffer(buf, dtype=dt, count=size).reshape(shape)
    return arr if arr.flags.writeable else arr.copy()


def pack(meta: Buffer, buffers: Sequence[Buffer]) -> bytes:
    """One blob of metadata and buffers: `MAGIC`, then each as its length and its bytes."""
    out = bytearray(MAGIC)
    for chunk in (meta, *buffers):
        view = memoryview(chunk).cast("B")
        out += _LENGTH.pack(view.nbytes)
        out += view
    return bytes(out)


def unpack(blob: Buffer, what: str = "state") -> tuple[bytes, list[bytearray]]:
    """The metadata and buffers of a `pack`ed blob, the buffers writable."""
    view = memoryview(blob).cast("B")
    if bytes(view[: len(MAGIC)]) != MAGIC:
        old = bytes(view[:1]) == b"\x80"
        raise refuse(what, "a pickle from an earlier version of Vigil" if old else "not a Vigil snapshot")
    chunks: list[bytearray] = []
    at = len(MAGIC)
    while at < len(view):
        start = at + _LENGTH.size
        end = start + (_LENGTH.unpack_from(view, at)[0] if start <= len(view) else len(view))
        if end > len(view):
            raise refuse(what, "it is cut short")
        chunks.append(bytearray(view[start:end]))
        at = end
    if not chunks:
        raise refuse(what, "it is empty")
    return bytes(chunks[0]), chunks[1:]


def to_blob(tree: Any) -> bytes:
    """A payload tree as one blob (`encode`, then `pack`)."""
    return pack(*encode(tree))


def from_blob(blob: Buffer, what: str = "state") -> Any:
    """The payload tree of a `to_blob` blob; `StateError` if it is not one."""
    return decode(*unpack(blob, what), what=what)


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
    if dt.kind not in _KINDS or not all(map(_whole, shape)):
        raise refuse("state", f"field {name!r} is a {dtype} {shape}")
    return Field(tuple(shape), dt, fill)
