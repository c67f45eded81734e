"""The SQLite store: events upserted by id, filtered and paged; snapshots; WAL; bad paths.

Event documents are made by `vigil.outputs.event.event_doc` from `Event`s whose times we choose,
so what is stored is exactly what the engine would store.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vigil.detection.decision import Event
from vigil.engine import EventRecord
from vigil.errors import StateError
from vigil.labels import series_key
from vigil.outputs.event import event_doc
from vigil.outputs.store import Store

T0 = 1_700_000_000.0


def doc(
    query: str = "q",
    labels: dict[str, str] | None = None,
    started: float = T0,
    ended: float | None = None,
    peak: float = 0.99995,
) -> dict[str, Any]:
    labels = labels if labels is not None else {"__name__": "cpu", "instance": "web-1"}
    e = Event(
        row=0,
        number=1,
        state="firing" if ended is None else "resolved",
        started_at=started,
        ended_at=ended,
        peak_score=peak,
        peak_at=started,
        observed=97.2,
        expected=41.5,
        lower=30.1,
        upper=52.9,
        detectors={"ewma": peak},
    )
    recent = {
        "t": [started],
        "value": [97.2],
        "expected": [41.5],
        "lower": [30.1],
        "upper": [52.9],
        "score": [peak],
    }
    return event_doc(EventRecord(e, query, series_key(labels), labels, "default", 0.99996, recent))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data")
    yield s
    s.close()


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in items]


def test_data_dir_is_created(tmp_path: Path) -> None:
    s = Store(tmp_path / "a" / "b")
    try:
        assert (tmp_path / "a" / "b" / "vigil.db").is_file()
    finally:
        s.close()


def test_upsert_by_id_keeps_one_row_and_updates_its_state(store: Store) -> None:
    firing = doc(started=T0)
    store.upsert_events([firing])
    resolved = doc(started=T0, ended=T0 + 300, peak=0.999999)
    assert resolved["id"] == firing["id"]
    store.upsert_events([resolved])

    items, total = store.events()
    assert total == 1
    assert items[0]["state"] == "resolved"
    assert items[0]["ended_at"] == "2023-11-14T22:18:20Z"
    assert items[0]["peak_score"] == 0.999999
    assert store.events(state="firing") == ([], 0)


def test_upsert_of_nothing_is_a_no_op(store: Store) -> None:
    store.upsert_events([])
    assert store.events() == ([], 0)


def test_the_stored_document_is_the_event_json(store: Store) -> None:
    d = doc()
    store.upsert_events([d])
    items, _ = store.events()
    assert items == [d["event"]]


@pytest.fixture
def filled(store: Store) -> tuple[Store, dict[str, str]]:
    """Four events: a resolved one early, one firing (open-ended), two on another query."""
    docs = {
        "early": doc(started=T0, ended=T0 + 100),
        "open": doc(started=T0 + 1000, labels={"__name__": "cpu", "instance": "web-2"}),
        "mem": doc(
            query="mem",
            started=T0 + 500,
            ended=T0 + 700,
            labels={"__name__": "mem", "instance": "web-1"},
        ),
        "mem_late": doc(
            query="mem", started=T0 + 2000, ended=T0 + 2100, labels={"__name__": "mem"}
        ),
    }
    store.upsert_events(docs.values())
    return store, {k: d["id"] for k, d in docs.items()}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["mem_late", "open", "mem", "early"], id="all-newest-first"),
        pytest.param(
            {"start": T0 + 650}, ["mem_late", "open", "mem"], id="start-keeps-overlapping"
        ),
        pytest.param({"start": T0 + 5000}, ["open"], id="start-keeps-open-events"),
        pytest.param({"end": T0 + 500}, ["mem", "early"], id="end-inclusive"),
        pytest.param({"start": T0 + 50, "end": T0 + 600}, ["mem", "early"], id="window"),
        pytest.param({"start": T0 + 101, "end": T0 + 499}, [], id="window-between-events"),
        pytest.param({"state": "firing"}, ["open"], id="state-firing"),
        pytest.param({"state": "resolved"}, ["mem_late", "mem", "early"], id="state-resolved"),
        pytest.param({"query": "mem"}, ["mem_late", "mem"], id="query"),
        pytest.param(
            {"query": "mem", "state": "resolved", "end": T0 + 1000}, ["mem"], id="combined"
        ),
        pytest.param(
            {"series": ['cpu{instance="web-2"}', 'mem{instance="web-1"}']},
            ["open", "mem"],
            id="series-keys",
        ),
        pytest.param({"series": []}, [], id="no-series-keys"),
    ],
)
def test_filters(
    filled: tuple[Store, dict[str, str]], filters: dict[str, Any], expected: list[str]
) -> None:
    store, by_name = filled
    items, total = store.events(**filters)
    assert ids(items) == [by_name[n] for n in expected]
    assert total == len(expected)


def test_paging_keeps_the_total(filled: tuple[Store, dict[str, str]]) -> None:
    store, by_name = filled
    first, total1 = store.events(limit=2)
    second, total2 = store.events(limit=2, offset=2)
    past, total3 = store.events(limit=2, offset=10)
    assert total1 == total2 == total3 == 4
    assert ids(first) == [by_name["mem_late"], by_name["open"]]
    assert ids(second) == [by_name["mem"], by_name["early"]]
    assert past == []


def test_count_since(filled: tuple[Store, dict[str, str]]) -> None:
    store, _ = filled
    assert store.count_since(T0) == 4
    assert store.count_since(T0 + 501) == 2


def test_snapshots_round_trip_and_replace(store: Store) -> None:
    assert store.load_snapshot("query:q") is None
    blob = bytes(range(256)) * 10
    store.save_snapshots({"query:q": blob, "query:r": b"\x00"})
    assert store.load_snapshot("query:q") == blob
    assert store.load_snapshot("query:r") == b"\x00"
    store.save_snapshots({"query:q": b"newer"})
    assert store.load_snapshot("query:q") == b"newer"
    assert store.load_snapshot("query:r") == b"\x00"


def test_snapshot_parts_are_files_replaced_whole_and_a_cut_one_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save_snapshots({"query:q": b"meta"}, {"query:q": [memoryview(b"a" * 1000), b"b" * 10]})
    first = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert len(first) == 2 and [bytes(b) for b in store.load_snapshot_parts("query:q")] == [b"a" * 1000, b"b" * 10]
    store.save_snapshots({"query:q": b"meta2"}, {"query:q": [b"c" * 5]})
    now = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert len(now) == 1 and not set(now) & set(first)  # the replaced parts are gone
    (tmp_path / "snapshots" / "0123456789abcdef.part").write_bytes(b"from a save that never committed")
    store.close()
    again = Store(tmp_path)
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == now  # the stray is removed at start
    assert [bytes(b) for b in again.load_snapshot_parts("query:q")] == [b"c" * 5]
    (tmp_path / "snapshots" / now[0]).write_bytes(b"cc")
    with pytest.raises(StateError, match="holds 2 bytes, not the 5 saved; move data_dir/snapshots aside"):
        again.load_snapshot_parts("query:q")


def test_parts_saved_in_the_store_by_an_older_vigil_still_load(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.connection(write=True) as db:
        db.execute("INSERT INTO snapshots (name, data, saved_at) VALUES ('query:q', x'00', 0)")
        db.execute("INSERT INTO snapshot_parts (name, idx, data) VALUES ('query:q', 0, x'0102')")
    assert [bytes(b) for b in store.load_snapshot_parts("query:q")] == [b"\x01\x02"]
    store.save_snapshots({"query:q": b"\x00"}, {"query:q": [b"\x03"]})
    assert [bytes(b) for b in store.load_snapshot_parts("query:q")] == [b"\x03"]
    with store.connection() as db:
        assert db.execute("SELECT count(*) FROM snapshot_parts").fetchone()[0] == 0


def test_snapshots_and_events_survive_reopening(tmp_path: Path) -> None:
    s = Store(tmp_path)
    d = doc()
    s.upsert_events([d])
    s.save_snapshots({"query:q": b"state"})
    s.close()
    again = Store(tmp_path)
    try:
        assert again.load_snapshot("query:q") == b"state"
        assert ids(again.events()[0]) == [d["id"]]
    finally:
        again.close()


def test_wal_mode_is_on(store: Store) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_a_second_reader_sees_committed_events(store: Store) -> None:
    store.upsert_events([doc()])
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    finally:
        db.close()


def test_data_dir_that_is_a_file_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StateError) as info:
        Store(tmp_path / "file")
    message = str(info.value)
    assert "cannot open the store" in message
    assert str(tmp_path / "file" / "vigil.db") in message
    assert "check that data_dir is a folder writable" in message


def test_data_dir_under_a_file_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StateError, match="check that data_dir is a folder writable"):
        Store(tmp_path / "file" / "sub")


@pytest.mark.timeout(20)
def test_reads_do_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    """A snapshot of many series takes seconds: the API's reads must not queue behind it."""
    store = Store(tmp_path)
    store.save_snapshots({"q": b"before"})
    read_done = threading.Event()

    def slow_write() -> None:
        with store.connection(write=True) as db:
            db.execute("INSERT OR REPLACE INTO snapshots (name, data, saved_at) VALUES ('q', x'00', 0)")
            assert read_done.wait(10), "the read waited for the write"  # the write ends only after the read

    writer = threading.Thread(target=slow_write)
    writer.start()
    try:
        assert store.load_snapshot("q") == b"before"  # the last commit, while the write is open
        assert store.events() == ([], 0)
    finally:
        read_done.set()
        writer.join()
    assert store.load_snapshot("q") == b"\0"
