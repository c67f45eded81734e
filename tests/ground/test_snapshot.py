"""The snapshot format: exact round trips, no copy of the arrays, and refusal of anything else."""

from __future__ import annotations

import ast
import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vigil.errors import StateError
from vigil.snapshot import MAGIC, decode, encode, from_blob, pack, to_blob, unpack
from vigil.state import Field, RowState

SRC = Path(__file__).resolve().parents[2] / "src" / "vigil"


def tree() -> dict[str, Any]:
    return {
        "floats": [0.1, -0.0, math.nan, math.inf, -math.inf, 1e308, 5e-324],
        "ints": [0, -1, 2**70, True, False, None],
        "shape": (3, (), (4, 5)),
        "text": "é\n\"$\"",
        "odd keys": {"$": 1, 2: "two", (1, 2): [3]},
        "arrays": {
            "f8": np.array([[1.5, np.nan], [np.inf, -0.0]]),
            "f4": np.arange(6, dtype=np.float32).reshape(2, 3),
            "i8": np.array([-(2**63), 2**63 - 1]),
            "u2": np.array([0, 65535], dtype=np.uint16),
            "b1": np.array([True, False, True]),
            "empty": np.zeros((0, 3), dtype=np.int32),
            "scalar": np.array(7.25),
            "strided": np.arange(10.0)[::3],
            "big endian": np.array([1.0, 2.0], dtype=">f8"),
        },
    }


def same(a: Any, b: Any) -> None:
    """Equal trees, of the same types, with NaN equal to NaN and arrays equal bit for bit."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        assert a.tobytes() == b.tobytes()
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b))
        assert math.copysign(1.0, a) == math.copysign(1.0, b)
    else:
        assert a == b


def test_a_tree_survives_a_blob_exactly() -> None:
    same(from_blob(to_blob(tree())), tree())


def test_a_tree_survives_metadata_and_parts_exactly_and_its_arrays_view_the_parts() -> None:
    meta, buffers = encode(tree())
    parts = [bytearray(b) for b in buffers]
    back = decode(meta, parts)
    same(back, tree())
    for arr in back["arrays"].values():
        assert arr.flags.writeable
        if arr.size:
            assert any(np.shares_memory(arr, np.frombuffer(p, np.uint8)) for p in parts)


def test_encoding_makes_no_copy_of_a_contiguous_array() -> None:
    arr = np.arange(1000.0)
    _, (buf,) = encode({"a": arr})
    assert isinstance(buf, memoryview)
    assert np.shares_memory(np.asarray(buf), arr)


def test_the_metadata_is_strict_json_with_a_format_and_a_version() -> None:
    meta, buffers = encode(tree())
    doc = json.loads(meta, parse_constant=lambda name: pytest.fail(f"{name} in the metadata"))
    assert (doc["format"], doc["version"], doc["buffers"]) == ("vigil-state", 1, len(buffers))


def test_arrays_of_objects_and_other_types_are_not_saved() -> None:
    for bad in (np.array([{"a": 1}], dtype=object), np.array(["x"]), np.array([1j]), {1.5j}, b"bytes"):
        with pytest.raises(TypeError):
            encode({"x": bad})


def doc_of(t: Any) -> tuple[dict[str, Any], list[bytearray]]:
    meta, buffers = encode(t)
    return json.loads(meta), [bytearray(b) for b in buffers]


def refused(meta: bytes | dict[str, Any], parts: list[bytearray]) -> str:
    data = json.dumps(meta).encode() if isinstance(meta, dict) else meta
    with pytest.raises(StateError) as info:
        decode(data, parts, "state of query 'q'")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("saved state of query 'q' is an old or unreadable snapshot")
    assert message.endswith("; delete it to start fresh")
    return message


@pytest.mark.parametrize("dtype", ["|O", "<U3", "<c16", "|V8", "<M8[s]", "[('a', '<f8')]", "f8", "no such", 8])
def test_a_dtype_that_is_not_bool_int_uint_or_float_is_refused(dtype: Any) -> None:
    doc, parts = doc_of({"a": np.zeros(1)})
    doc["tree"]["a"]["dtype"] = dtype
    assert "dtype" in refused(doc, parts)


@pytest.mark.parametrize("change", [-1, 1, -8])
def test_a_buffer_of_the_wrong_length_is_refused(change: int) -> None:
    doc, parts = doc_of({"a": np.zeros((2, 3))})
    parts[0] = parts[0][:change] if change < 0 else parts[0] + b"\x00" * change
    assert "bytes" in refused(doc, parts)


def test_a_shape_that_does_not_match_the_buffer_is_refused() -> None:
    doc, parts = doc_of({"a": np.zeros((2, 3))})
    doc["tree"]["a"]["shape"] = [3, 3]
    refused(doc, parts)
    for shape in ([-2, -3], [2.0, 3], "6", [True, 6]):
        doc["tree"]["a"]["shape"] = shape
        refused(doc, parts)


def test_missing_extra_or_shared_buffers_are_refused() -> None:
    doc, parts = doc_of({"a": np.zeros(2), "b": np.ones(2)})
    refused(doc, parts[:1])
    refused(doc, [*parts, bytearray(16)])
    doc["tree"]["b"]["buffer"] = 0
    refused(doc, parts)
    doc["tree"]["b"]["buffer"] = 5
    refused(doc, parts)


@pytest.mark.parametrize(
    "node",
    [
        {"$": "pickle", "data": "gASV"},
        {"$": "float", "value": "1e400"},
        {"$": "float", "value": 1.0},
        {"$": "tuple", "items": {}},
        {"$": "dict", "items": [[1]]},
        {"$": "dict", "items": [[[1], 2]]},
        {"$": "array", "buffer": 0, "dtype": "<f8"},
        {"$": "tuple", "items": [], "extra": 1},
    ],
)
def test_malformed_nodes_are_refused(node: dict[str, Any]) -> None:
    doc, _ = doc_of({"a": None})
    doc["tree"]["a"] = node
    refused(doc, [])


def test_malformed_metadata_is_refused() -> None:
    doc, parts = doc_of({"a": 1})
    for meta in (b"", b"{", b"[]", b"\xff\xfe", b'{"tree": NaN}', b"[" * 100_000, b"null"):
        refused(meta, [])
    refused({**doc, "format": "other"}, parts)
    refused({k: v for k, v in doc.items() if k != "version"}, parts)
    refused({**doc, "extra": 1}, parts)


def test_another_version_of_the_format_is_refused_by_its_number() -> None:
    doc, parts = doc_of({"a": 1})
    assert "version 2" in refused({**doc, "version": 2}, parts)


class Runs:
    """Unpickling this creates `path`: a stand-in for code a crafted snapshot would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


def test_a_pickle_is_refused_as_an_old_snapshot_and_never_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for blob in (pickle.dumps(Runs(marker)), pickle.dumps({"format": 1}, protocol=5)):
        assert "a pickle from an earlier version of Vigil" in refused(blob, [])
        with pytest.raises(StateError, match="earlier version of Vigil.*delete it to start fresh"):
            from_blob(blob)
        with pytest.raises(StateError, match="earlier version"):
            RowState.from_bytes(blob)
    assert not marker.exists()
    pickle.loads(pickle.dumps(Runs(marker)))  # the blob was live: loading it does run code
    assert marker.exists()


def test_a_packed_blob_cut_short_or_not_packed_is_refused() -> None:
    blob = to_blob({"a": np.arange(4.0)})
    assert blob.startswith(MAGIC)
    for bad in (blob[:-1], blob[: len(MAGIC) + 3], MAGIC, b"not a snapshot", b""):
        with pytest.raises(StateError, match="delete it to start fresh"):
            from_blob(bad)


def test_pack_and_unpack_keep_metadata_and_buffers() -> None:
    meta, parts = unpack(pack(b'{"x": 1}', [b"abc", bytearray(), memoryview(b"\x00\x01")]))
    assert (meta, parts) == (b'{"x": 1}', [bytearray(b"abc"), bytearray(), bytearray(b"\x00\x01")])


def test_row_state_round_trip_keeps_fields_fills_and_arrays() -> None:
    fields = {
        "n": Field((), np.int64, 0), "buf": Field((3,), np.float32, np.nan), "t": Field((), np.float64, -np.inf),
        "on": Field((2, 2), np.bool_, True),
    }
    s = RowState(fields, 4)
    s["buf"][1] = [1, 2, 3]
    back = RowState.from_bytes(s.to_bytes())
    for k, f in fields.items():
        assert (back.fields[k].shape, np.dtype(back.fields[k].dtype)) == (f.shape, np.dtype(f.dtype))
    back.resize(6)  # new rows get the saved fills
    assert np.isnan(back["buf"][5]).all() and back["t"][5] == -np.inf and back["on"][5].all()
    for k in fields:
        np.testing.assert_array_equal(back[k][:4], s[k])


class Boxed:
    """An object codec for the test: a row's object is a list of floats."""

    def encode(self, obj: list[float]) -> Any:
        return {"values": np.array(obj)}

    def decode(self, payload: Any) -> list[float]:
        if not isinstance(payload, dict) or not isinstance(payload.get("values"), np.ndarray):
            raise StateError("not a box; delete it to start fresh")
        return [float(v) for v in payload["values"]]


def test_row_objects_are_saved_by_their_owners_codec() -> None:
    s = RowState({"n": Field((), np.int64, 0)}, 3, Boxed())
    s.objects[1] = [1.5, math.nan]
    back = RowState.from_bytes(s.to_bytes(), Boxed())
    assert back.objects[0] is None and back.objects[2] is None
    assert back.objects[1][0] == 1.5 and math.isnan(back.objects[1][1])
    with pytest.raises(StateError, match="objects"):
        RowState.from_bytes(s.to_bytes())  # no codec: its objects cannot be rebuilt
    s.codec = None
    with pytest.raises(TypeError, match="codec"):
        s.to_bytes()


def test_a_row_state_whose_arrays_do_not_fit_its_fields_is_refused() -> None:
    s = RowState({"n": Field((), np.int64, 0), "v": Field((2,), np.float64, 0.0)}, 3)
    good = s.payload()
    bad_payloads = [
        {**good, "arrays": {**good["arrays"], "v": np.zeros((3, 3))}},
        {**good, "arrays": {**good["arrays"], "v": np.zeros((3, 2), dtype=np.float32)}},
        {**good, "arrays": {"n": good["arrays"]["n"]}},
        {**good, "n_rows": 4},
        {**good, "n_rows": -1},
        {**good, "objects": [[7, {}]]},
        {**good, "fields": {**good["fields"], "v": {"shape": [2], "dtype": "|O", "fill": 0.0}}},
        {**good, "format": 1},
        [1, 2],
    ]
    for payload in bad_payloads:
        with pytest.raises(StateError, match="delete it to start fresh"):
            RowState.from_payload(from_blob(to_blob(payload)))


def test_no_module_of_vigil_imports_pickle_or_its_kin() -> None:
    kin = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )
            found += [f"{path.relative_to(SRC)}: {n}" for n in names if n.split(".")[0] in kin]
    assert not found, found


def test_a_later_version_is_refused_by_its_number_even_with_tags_this_version_does_not_know() -> None:
    doc, parts = doc_of({"a": 1})
    assert "version 2" in refused({**doc, "version": 2, "tree": {"$": "set", "items": []}}, parts)
    refused(b'{"$": "set"} trailing', [])
