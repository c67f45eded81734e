"""Saved query state: written without copies, read without running code, refused when not ours."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vigil.config import Config, Detection, Limits
from vigil.engine import Engine, Query
from vigil.errors import StateError
from vigil.metrics import Metrics
from vigil.outputs.store import Store
from vigil.snapshot import from_blob, to_blob
from vigil.sources.base import SeriesBatch

T0 = 1_700_000_000.0
STEP = 15.0


class Idle:
    """A source never asked for data here: these tests feed their queries directly."""

    def __init__(self, name: str) -> None:
        self.name, self.interval = name, STEP

    async def fetch(self, now: float) -> list[SeriesBatch]:
        return []

    async def close(self) -> None:
        pass


def query(detection: Detection | None = None) -> Query:
    return Query(Idle("q"), detection or Detection(), Limits(), "q")  # type: ignore[arg-type]


def fed(detection: Detection | None = None) -> Query:
    q = query(detection)
    rng = np.random.default_rng(0)
    t = T0 + STEP * np.arange(120)
    q.ingest([SeriesBatch({"instance": f"web-{i}"}, t, 50.0 + rng.normal(0, 1, 120)) for i in range(3)], T0)
    return q


def engine(tmp_path: Path, store: Store) -> Engine:
    return Engine(Config(data_dir=tmp_path), [query()], store, Metrics())


def restore_warns(tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture) -> str:
    """Restore an engine from `store`; check that its query starts fresh, and return the warning."""
    e = engine(tmp_path, store)
    with caplog.at_level(logging.WARNING, logger="vigil.engine"):
        e.restore()
    assert e.restored == []
    assert len(e.queries["q"].table) == 0 and e.queries["q"].pipeline.n_rows == 0
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("not restoring query q (it starts fresh): saved state of query 'q' is an old or unreadable snapshot")
    assert warning.endswith("; delete it to start fresh")
    return warning


class Runs:
    """Unpickling this creates `path`: a stand-in for the code a crafted snapshot would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


def test_a_crafted_pickle_in_the_store_runs_nothing_and_the_query_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "ran"
    crafted = pickle.dumps({"format": 1, "pipeline": Runs(marker), "table": Runs(marker)}, protocol=5)
    store = Store(tmp_path)
    store.save_snapshots({"query:q": crafted})
    assert "earlier version of Vigil" in restore_warns(tmp_path, store, caplog)
    assert not marker.exists()
    pickle.loads(crafted)  # the snapshot was live: loading it as the old version did runs code
    assert marker.exists()


def test_a_snapshot_saved_by_the_old_version_is_refused_the_same_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = {"format": 1, "pipeline": {"format": 2, "n_rows": 3}, "table": {"state": {"last_t": np.zeros(3)}}}
    buffers: list[pickle.PickleBuffer] = []
    meta = pickle.dumps(old, protocol=5, buffer_callback=buffers.append)  # as the old `Query.save` did
    store = Store(tmp_path)
    store.save_snapshots({"query:q": meta}, {"query:q": [b.raw() for b in buffers]})
    assert "earlier version of Vigil" in restore_warns(tmp_path, store, caplog)
    store.save_snapshots({"query:q": pickle.dumps({"format": 1})})  # and as the old `Query.snapshot`
    caplog.clear()
    assert "earlier version of Vigil" in restore_warns(tmp_path, store, caplog)


def saved(tmp_path: Path) -> tuple[Store, dict[str, Any], list[bytearray]]:
    store = Store(tmp_path)
    fed().save(store, "query:q")
    meta = store.load_snapshot("query:q")
    assert meta is not None
    return store, json.loads(meta), store.load_snapshot_parts("query:q")


def first_array(node: Any) -> dict[str, Any]:
    """The reference of the first array in a snapshot's metadata tree."""
    if isinstance(node, dict):
        if node.get("$") == "array":
            return node
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = first_array(item)
            if found:
                return found
    return {}


@pytest.mark.parametrize("tamper", ["short part", "object dtype", "not json", "no parts", "unknown version"])
def test_a_tampered_snapshot_is_refused_and_the_query_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, tamper: str
) -> None:
    store, doc, parts = saved(tmp_path)
    meta = json.dumps(doc).encode()
    if tamper == "short part":
        parts[first_array(doc["tree"])["buffer"]].pop()
    elif tamper == "object dtype":
        first_array(doc["tree"])["dtype"] = "|O"
        meta = json.dumps(doc).encode()
    elif tamper == "not json":
        meta = b"\x00" + meta
    elif tamper == "no parts":
        parts = []
    else:
        meta = json.dumps({**doc, "version": 99}).encode()
    store.save_snapshots({"query:q": meta}, {"query:q": parts})
    restore_warns(tmp_path, store, caplog)


def test_save_hands_the_store_views_of_the_arrays_under_the_querys_lock(tmp_path: Path) -> None:
    q = fed()

    class Recorder:
        def save_snapshots(
            self, blobs: dict[str, bytes], parts: dict[str, Sequence[memoryview | bytes]] | None = None
        ) -> None:
            assert q.lock.locked()
            self.meta, self.parts = blobs["query:q"], list((parts or {})["query:q"])

    store = Recorder()
    q.save(store, "query:q")  # type: ignore[arg-type]
    assert all(isinstance(p, memoryview) for p in store.parts)
    arrays = [*q.table.state.arrays.values(), *(a for st in q.pipeline._states() for a in st.arrays.values())]
    views = [np.asarray(p) for p in store.parts]
    assert all(any(np.shares_memory(a, v) for v in views) for a in arrays if a.size)

    again = query()
    again.restore(store.meta, [bytearray(p) for p in store.parts])
    assert again.table.keys == q.table.keys
    for a, b in zip(q.pipeline._states(), again.pipeline._states(), strict=True):
        for name, arr in a.arrays.items():
            np.testing.assert_array_equal(arr, b[name], err_msg=name)


def test_a_snapshot_of_other_detectors_changes_nothing_of_the_query() -> None:
    blob = fed().snapshot()
    q = query(Detection(detector="zscore"))
    with pytest.raises(StateError, match="made by detectors"):
        q.restore(blob)
    assert len(q.table) == 0 and q.table.keys == [] and q.pipeline.n_rows == 0


def test_a_snapshot_of_an_earlier_vigil_is_refused_in_one_line_and_the_query_relearns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Vigil from before the per-series state was narrowed saved its pipeline as format 6."""
    payload = from_blob(fed().snapshot())
    payload["pipeline"]["format"] = 6
    store = Store(tmp_path)
    store.save_snapshots({"query:q": to_blob(payload)})
    e = engine(tmp_path, store)
    with caplog.at_level(logging.WARNING, logger="vigil.engine"):
        e.restore()
    q = e.queries["q"]
    assert e.restored == [] and len(q.table) == 0 and q.pipeline.n_rows == 0
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("not restoring query q (it starts fresh): saved pipeline state is an old or unreadable")
    assert "pipeline format 6" in warning and "earlier version of Vigil" in warning and "\n" not in warning
    t = T0 + STEP * np.arange(40)
    q.ingest([SeriesBatch({"instance": "web-0"}, t, 50.0 + np.random.default_rng(1).normal(0, 1, 40))], T0)
    assert len(q.table) == 1 and q.pipeline.n_rows >= 1, "it learns the series again"
