"""The outbox table: queued with the events, one message per (receiver, key), routes, order."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from support.notifying import T0, Clock, make_doc
from vigil.outputs.notify.outbox import Outbox, Route
from vigil.outputs.store import Store

HOOK = Route("hook")


def make_outbox(tmp_path: Path, *routes: Route, clock: Clock | None = None) -> tuple[Store, Outbox]:
    store = Store(tmp_path)
    return store, Outbox(store, list(routes) or [HOOK], clock=clock or Clock())


def rows(store: Store) -> list[tuple[Any, ...]]:
    with store.connection() as db:
        return db.execute("SELECT receiver, key, state, status, attempts FROM outbox ORDER BY id").fetchall()


def test_an_event_stored_is_queued_for_the_receiver(tmp_path: Path) -> None:
    store, _ = make_outbox(tmp_path)
    doc = make_doc()
    store.upsert_events([doc])
    assert rows(store) == [("hook", f"{doc['id']}:firing", "firing", "pending", 0)]


def test_the_same_key_twice_queues_one_message(tmp_path: Path) -> None:
    store, outbox = make_outbox(tmp_path)
    store.upsert_events([make_doc()])
    store.upsert_events([make_doc()])
    outbox.enqueue([make_doc()])
    assert len(rows(store)) == 1


def test_replayed_events_after_a_restart_queue_nothing_twice(tmp_path: Path) -> None:
    store, outbox = make_outbox(tmp_path)
    store.upsert_events([make_doc(), make_doc("resolved")])
    (first,) = outbox.due("hook", T0, 10)
    outbox.record(first.id, "sent", 1, None, None)
    store.close()
    store, _ = make_outbox(tmp_path)  # a new process on the same data_dir replays the same samples
    store.upsert_events([make_doc(), make_doc("resolved")])
    assert [(r[2], r[3]) for r in rows(store)] == [("firing", "sent"), ("resolved", "pending")]


def test_every_matching_receiver_gets_its_own_message(tmp_path: Path) -> None:
    store, _ = make_outbox(tmp_path, Route("a"), Route("b"))
    store.upsert_events([make_doc()])
    assert sorted(r[0] for r in rows(store)) == ["a", "b"]


@pytest.mark.parametrize(
    ("route", "doc", "queued"),
    [
        pytest.param(Route("r", queries=frozenset({"mem"})), make_doc(query="cpu"), False, id="other-query"),
        pytest.param(Route("r", queries=frozenset({"cpu"})), make_doc(query="cpu"), True, id="listed-query"),
        pytest.param(Route("r", min_score=0.999999), make_doc(peak_score=0.9999), False, id="below-min-score"),
        pytest.param(Route("r", min_score=0.9999), make_doc(peak_score=0.9999), True, id="at-min-score"),
        pytest.param(Route("r", states=frozenset({"resolved"})), make_doc(), False, id="state-not-wanted"),
        pytest.param(Route("r", states=frozenset({"resolved"})), make_doc("resolved"), True, id="resolved-only"),
    ],
)
def test_routes_filter_by_query_score_and_state(
    tmp_path: Path, route: Route, doc: dict[str, Any], queued: bool
) -> None:
    store, _ = make_outbox(tmp_path, route)
    store.upsert_events([doc])
    assert bool(rows(store)) == queued


def test_a_resolution_is_queued_only_after_its_firing(tmp_path: Path) -> None:
    store, _ = make_outbox(tmp_path, Route("r", min_score=0.99999))
    store.upsert_events([make_doc(peak_score=0.999), make_doc("resolved", peak_score=0.999999)])
    assert rows(store) == [], "a receiver never told of the anomaly hears nothing of its end"
    store.upsert_events([make_doc(instance="web-2"), make_doc("resolved", instance="web-2")])
    assert [r[2] for r in rows(store)] == ["firing", "resolved"]


def test_a_resolution_waits_while_its_firing_is_pending(tmp_path: Path) -> None:
    clock = Clock()
    store, outbox = make_outbox(tmp_path, clock=clock)
    store.upsert_events([make_doc()])
    (firing,) = outbox.due("hook", T0, 10)
    outbox.record(firing.id, "pending", 1, T0 + 30, "HTTP 503")  # retry later
    store.upsert_events([make_doc("resolved")])
    assert outbox.due("hook", T0 + 1, 10) == [], "resolved must not overtake firing"
    assert [m.state for m in outbox.due("hook", T0 + 30, 10)] == ["firing"]
    outbox.record(firing.id, "sent", 2, None, None)
    assert [m.state for m in outbox.due("hook", T0 + 30, 10)] == ["resolved"]


def test_the_event_and_its_messages_are_written_together(tmp_path: Path) -> None:
    store, _ = make_outbox(tmp_path)

    def boom(db: sqlite3.Connection, docs: list[dict[str, Any]]) -> None:
        raise RuntimeError("disk full")

    store.add_event_hook(boom)
    with pytest.raises(RuntimeError):
        store.upsert_events([make_doc()])
    assert store.events()[1] == 0 and rows(store) == [], "neither the event nor its message"


def test_next_due_pending_and_counts(tmp_path: Path) -> None:
    store, outbox = make_outbox(tmp_path, Route("a"), Route("b"))
    assert outbox.next_due("a") is None
    store.upsert_events([make_doc()])
    (m,) = outbox.due("a", T0, 10)
    outbox.record(m.id, "dead", 1, None, "HTTP 400")
    assert outbox.next_due("a") is None and outbox.next_due("b") == T0
    assert outbox.pending("b") == 1
    assert outbox.counts() == {"a": {"pending": 0, "sent": 0, "dead": 1}, "b": {"pending": 1, "sent": 0, "dead": 0}}


def test_prune_deletes_old_sent_and_dead_but_never_pending_nor_an_open_firing(tmp_path: Path) -> None:
    clock = Clock()
    store, outbox = make_outbox(tmp_path, clock=clock)
    store.upsert_events([make_doc(instance=f"web-{i}") for i in range(4)])
    store.upsert_events([make_doc("resolved", instance=f"web-{i}") for i in range(3)])
    firings = outbox.due("hook", T0, 10)
    for m in firings[:2]:
        outbox.record(m.id, "sent", 1, None, None)
    outbox.record(firings[2].id, "dead", 1, None, "HTTP 400")
    outbox.record(firings[3].id, "sent", 1, None, None)  # web-3: still open
    (resolved,) = [m for m in outbox.due("hook", T0, 10) if m.event_id == firings[0].event_id]
    outbox.record(resolved.id, "sent", 1, None, None)
    clock.t = T0 + 10
    assert outbox.prune(before=T0 + 5) == 4  # web-0 firing and resolved, web-1 firing, web-2 dead firing
    left = sorted((r[1].rsplit(":")[1], r[3]) for r in rows(store))
    assert left == [("firing", "sent"), ("resolved", "pending"), ("resolved", "pending")]
    assert outbox.firing_sent("hook")[0]["series"]["instance"] == "web-3"


def test_page_and_summary_show_states_without_bodies(tmp_path: Path) -> None:
    store, outbox = make_outbox(tmp_path, Route("a"), Route("b"))
    doc = make_doc()
    store.upsert_events([doc])
    (m,) = outbox.due("a", T0, 10)
    outbox.record(m.id, "sent", 1, None, None)
    items, total = outbox.page()
    assert total == 2
    assert {i["receiver"]: i["status"] for i in items} == {"a": "sent", "b": "pending"}
    item = next(i for i in items if i["receiver"] == "a")
    assert item["idempotency_key"] == f"{doc['id']}:firing" and item["event_state"] == "firing"
    assert item["summary"] == doc["event"]["summary"] and item["sent_at"] == T0
    assert "payload" not in item and "url" not in item
    assert outbox.page(status="pending")[1] == 1 and outbox.page(receiver="b")[0][0]["receiver"] == "b"
    assert outbox.summary([doc["id"], "nope"]) == {doc["id"]: {"a": {"firing": "sent"}, "b": {"firing": "pending"}}}


def test_an_event_found_over_long_ago_is_not_queued(tmp_path: Path) -> None:
    clock = Clock(T0 + 3 * 3600)  # the docs end at T0 + 60: found long after, as in the history read at start
    store, _ = make_outbox(tmp_path, clock=clock)
    store.upsert_events([make_doc(), make_doc("resolved")])
    assert rows(store) == [] and store.events()[1] == 1, "stored for the API, sent to nobody"
    store.upsert_events([make_doc(instance="web-2")])
    assert [r[2] for r in rows(store)] == ["firing"], "an event still open is news, however old its start"


def test_an_event_over_before_vigil_started_is_not_queued_however_recent(tmp_path: Path) -> None:
    clock = Clock(T0 + 120)  # started 1 min after the event ended (well within max_event_age)
    store, _ = make_outbox(tmp_path, clock=clock)
    store.upsert_events([make_doc(), make_doc("resolved")])  # rebuilt from the look-back
    assert rows(store) == [] and store.events()[1] == 1, "stored for the API, sent to nobody"
    store.upsert_events([make_doc(instance="web-2", started=T0 + 30)])
    assert [r[2] for r in rows(store)] == ["firing"], "an event open at the live edge is news"


def test_after_a_restart_the_resolution_of_an_announced_event_is_queued(tmp_path: Path) -> None:
    clock = Clock()
    store, _ = make_outbox(tmp_path, clock=clock)
    store.upsert_events([make_doc()])
    store.close()
    clock.t = T0 + 600  # restarted; the catch-up finds that the event ended while Vigil was down
    store, _ = make_outbox(tmp_path, clock=clock)
    store.upsert_events([make_doc("resolved")])
    assert [r[2] for r in rows(store)] == ["firing", "resolved"]


def test_a_late_resolution_of_an_announced_event_is_queued(tmp_path: Path) -> None:
    clock = Clock()
    store, _ = make_outbox(tmp_path, clock=clock)
    store.upsert_events([make_doc()])
    clock.t = T0 + 3 * 3600  # Vigil was down; the catch-up finds that it ended long ago
    store.upsert_events([make_doc("resolved")])
    assert [r[2] for r in rows(store)] == ["firing", "resolved"]


def test_prune_drops_the_messages_of_a_receiver_no_longer_configured(tmp_path: Path) -> None:
    clock = Clock()
    store, _ = make_outbox(tmp_path, Route("old"), clock=clock)
    store.upsert_events([make_doc()])
    store.close()
    store, outbox = make_outbox(tmp_path, Route("new"), clock=clock)  # restarted with the receiver renamed
    clock.t = T0 + 10
    assert outbox.prune(before=T0 + 5) == 1 and rows(store) == []


def muted(doc: dict[str, Any], by: str = "mute:0123456789abcdef") -> dict[str, Any]:
    doc["event"] = {**doc["event"], "muted": by}
    return doc


def test_a_muted_event_is_queued_for_nobody(tmp_path: Path) -> None:
    resolved_only = Route("resolved-only", states=frozenset({"resolved"}))
    store, _ = make_outbox(tmp_path, HOOK, resolved_only)
    store.upsert_events([muted(make_doc())])
    store.upsert_events([muted(make_doc(state="resolved"))])
    assert rows(store) == []


def test_the_resolution_of_an_event_notified_before_it_was_muted_is_still_sent(tmp_path: Path) -> None:
    store, _ = make_outbox(tmp_path)
    store.upsert_events([make_doc()])
    store.upsert_events([muted(make_doc(state="resolved"))])  # a mute made later reaches back over its start
    assert [r[2] for r in rows(store)] == ["firing", "resolved"]
