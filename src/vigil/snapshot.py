"""The snapshot format: a payload tree as JSON metadata plus the raw bytes of its arrays.

A payload tree holds dicts, lists, tuples, str, int, float, bool and None, with NumPy
arrays as leaves. `encode` writes it as JSON metadata, each array a reference with its
dtype and shape, plus the arrays' bytes as buffers; `decode` reads them back; `pack` makes
one blob of both. Reading only parses JSON and views bytes as arrays of booleans, integers
or floats, so a crafted snapshot cannot run code; it, or one of another format or version,
is refused with a `StateError` that says to delete it.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from vigil.errors import StateError

__all__ = ["ARRAY_KINDS", "Buffer", "count", "decode", "encode", "entry", "from_blob", "is_whole", "pack", "refuse", "to_blob", "unpack"]

Buffer = bytes | bytearray | memoryview

FORMAT = "vigil-state"
VERSION = 1  # of the snapshot format: a reader refuses any other
MAGIC = b"VGLSTATE"  # opens a packed blob; JSON metadata opens with "{"
_TAG = "$"  # the key that marks a JSON object standing for an array, a tuple, a float or a dict
ARRAY_KINDS = "biuf"  # dtype kinds a snapshot may hold: bool, int, uint, float
_LENGTH = struct.Struct("<Q")


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
    if not is_whole(value):
        raise refuse(what, f"its {key!r} is {value!r}")
    return int(value)


def is_whole(n: Any) -> bool:
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
            if x.dtype.kind not in ARRAY_KINDS:
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
    if not is_whole(index) or index >= len(buffers) or index in used:
        raise _Malformed(f"array buffer {index!r} is not one of its buffers, or is used twice")
    try:
        dt = np.dtype(dtype) if isinstance(dtype, str) else None
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.kind not in ARRAY_KINDS or dt.str != dtype:
        raise _Malformed(f"dtype {dtype!r} is not one of bool, int, uint or float")
    if not isinstance(shape, list) or not all(map(is_whole, shape)):
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
