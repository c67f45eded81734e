"""The store under faults: a full disk, a damaged file, a read-only data_dir.

A full disk is a real one: a 2 MB tmpfs mounted for the test (root is needed to mount it;
CI runs as root), filled with a file until it refuses writes, then emptied. Nothing is
mocked: the engine, its pipeline and SQLite run as in `vigil run`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from support.disks import fill
from vigil.config import Config, Detection, Limits
from vigil.engine import Engine, Query
from vigil.errors import StateError, StoreError
from vigil.metrics import Metrics
from vigil.outputs.store import Store
from vigil.sources.base import SeriesBatch

T0 = 1_700_000_000.0
STEP = 15.0
WEB = {"__name__": "cpu", "instance": "web-1"}


class Queued:
    """A source whose replies the test queues."""

    def __init__(self) -> None:
        self.name, self.interval = "q", STEP
        self.replies: list[list[SeriesBatch]] = []

    async def fetch(self, now: float) -> list[SeriesBatch]:
        return self.replies.pop(0) if self.replies else []

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def feed(engine: Engine, values: list[float]) -> None:
    """One tick of the query with these samples, one step apart, after the last."""
    q = engine.queries["q"]
    assert isinstance(q.source, Queued) and isinstance(engine.clock, Clock)
    start = engine.clock.t
    t = start + STEP * np.arange(1, len(values) + 1)
    q.source.replies.append([SeriesBatch(dict(WEB), t, np.asarray(values, dtype=np.float64))])
    engine.clock.t = float(t[-1])
    asyncio.run(engine.tick(q))


def on_disk(disk: Path) -> tuple[Engine, Store, Clock]:
    """An engine with one query, its store in `disk`, on a clock the test moves."""
    clock = Clock()
    store = Store(disk / "data")
    engine = Engine(Config(data_dir=disk / "data"), [Query(Queued(), Detection(), Limits(), "q")],  # type: ignore[arg-type]
                    store, Metrics(), clock=clock)
    return engine, store, clock


def test_a_full_disk_keeps_detection_going_says_why_and_loses_nothing(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine, store, clock = on_disk(tiny_disk)
    rng = np.random.default_rng(3)
    feed(engine, list(50 + rng.normal(0, 1, 300)))
    assert asyncio.run(engine.save_state())
    filler = fill(tiny_disk)

    with caplog.at_level(logging.ERROR, logger="vigil.engine"):
        feed(engine, [*(50 + rng.normal(0, 1, 50)), 95.0])  # an incident while the disk is full
        asyncio.run(engine.housekeeping(clock.t, force_snapshot=True))
        for _ in range(5):  # detection goes on
            feed(engine, list(50 + rng.normal(0, 1, 20)))
            asyncio.run(engine.housekeeping(clock.t))
    samples = engine.metrics.registry.get_sample_value("vigil_samples_total", {"query": "q"})
    assert samples == 300 + 51 + 100
    ready, reasons = engine.ready()
    assert not ready
    assert "full" in reasons["store"] and "free space" in reasons["store"]
    assert engine.metrics.registry.get_sample_value("vigil_store_errors_total", {"what": "events"}) >= 1
    assert engine.metrics.registry.get_sample_value("vigil_store_errors_total", {"what": "snapshot"}) >= 1
    said = [r for r in caplog.records if "full" in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0].getMessage()  # said once, on one line, not per retry
    assert store.events()[1] == 0  # nothing could be written ...

    filler.unlink()  # space comes back
    clock.t += 120
    asyncio.run(engine.housekeeping(clock.t))
    assert engine.ready() == (True, {})
    (event,) = store.events()[0]  # ... and nothing was lost
    assert event["observed"] == 95.0
    saved = store.load_snapshot("query:q")
    fresh = Query(Queued(), Detection(), Limits(), "q")  # type: ignore[arg-type]
    assert saved is not None
    fresh.restore(saved, store.load_snapshot_parts("query:q"))
    assert len(fresh.table.history(0)["t"]) == len(engine.queries["q"].table.history(0)["t"])  # the newest state


def test_a_failed_snapshot_is_retried_with_backoff(tiny_disk: Path) -> None:
    clock = Clock()
    store = Store(tiny_disk / "data")
    engine = Engine(Config(data_dir=tiny_disk / "data"),  # snapshot_every 60 s
                    [Query(Queued(), Detection(), Limits(), "q")], store, Metrics(), clock=clock)  # type: ignore[arg-type]
    feed(engine, list(np.linspace(0, 1, 400)))
    filler = fill(tiny_disk)
    waits = []
    for _ in range(5):
        asyncio.run(engine.housekeeping(clock.t, force_snapshot=True))
        waits.append(engine._next_snapshot - clock.t)
    assert waits == [5.0, 10.0, 20.0, 40.0, 60.0]  # doubling up to snapshot_every
    filler.unlink()
    asyncio.run(engine.housekeeping(clock.t, force_snapshot=True))
    assert engine._next_snapshot - clock.t == 60.0 and engine.store_error is None


def test_a_write_refused_by_a_full_disk_is_a_store_error_and_leaves_nothing_half_written(tiny_disk: Path) -> None:
    store = Store(tiny_disk / "data")
    store.save_snapshots({"a": b"old"})
    filler = fill(tiny_disk)
    with pytest.raises(StoreError, match="full.*free space on the disk of data_dir"):
        store.save_snapshots({"a": b"new" * 100_000, "b": b"x" * 100_000})
    filler.unlink()
    assert store.load_snapshot("a") == b"old" and store.load_snapshot("b") is None
    store.save_snapshots({"a": b"new"})  # the connection is usable again
    assert store.load_snapshot("a") == b"new"


def test_a_damaged_store_is_refused_at_start_saying_so_and_what_to_do(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save_snapshots({"q": b"x" * 200_000})
    store.close()
    db = tmp_path / "vigil.db"
    data = bytearray(db.read_bytes())
    data[4096 * 2 : 4096 * 3] = os.urandom(4096)  # one page of garbage
    db.write_bytes(bytes(data))
    with pytest.raises(StateError) as caught:
        Store(tmp_path)
    message = str(caught.value)
    assert "damaged" in message and "move it aside" in message and "\n" not in message
    assert "writable" not in message


def test_a_file_that_is_not_a_database_is_refused_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "vigil.db").write_bytes(os.urandom(8192))
    with pytest.raises(StateError, match="damaged.*move it aside"):
        Store(tmp_path)


def test_a_data_dir_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(StateError, match="cannot open the store"):
        Store(blocked / "data")


def test_a_nearly_full_disk_that_takes_events_but_not_snapshots_is_one_spell_said_once(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine, store, clock = on_disk(tiny_disk)
    rng = np.random.default_rng(5)
    feed(engine, list(50 + rng.normal(0, 1, 3000)))
    filler = fill(tiny_disk)
    with caplog.at_level(logging.INFO, logger="vigil.engine"):
        feed(engine, [*(50 + rng.normal(0, 1, 50)), 95.0])
        asyncio.run(engine.housekeeping(clock.t, force_snapshot=True))
        os.truncate(filler, filler.stat().st_size - 96 * 1024)  # room for an event, not for a snapshot
        feed(engine, [*(50 + rng.normal(0, 1, 50)), 5.0])
        assert store.events()[1] >= 1  # the events went through ...
        asyncio.run(engine.housekeeping(clock.t, force_snapshot=True))
        assert not engine.ready()[0]  # ... the snapshot did not: still not ready
        feed(engine, [*(50 + rng.normal(0, 1, 50)), 96.0])
        filler.unlink()
        clock.t += 120
        asyncio.run(engine.housekeeping(clock.t, force_snapshot=True))
    assert engine.ready() == (True, {})
    said = [r.getMessage() for r in caplog.records if "full" in r.getMessage()]
    again = [r.getMessage() for r in caplog.records if "takes writes again" in r.getMessage()]
    assert len(said) == 1 and len(again) == 1  # one spell: begun once, ended once
