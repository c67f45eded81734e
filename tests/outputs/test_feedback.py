"""Feedback that teaches, through the engine with the real pipeline and a real store.

One series of calm noise around 50 (sd 1) gets the same spike again and again (three
samples at 60, outside its band of about 50 +- 5.4). Without feedback every spike opens an
event (the control). Marked ``not_an_incident``, the spike no longer opens one; a clearly
larger spike, or a dip on the other side, still does; undone, the same spike alerts again.
The only fake is the source, whose samples the test hands to `Engine.tick`.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from support.sources import FakeSource
from vigil.config import Config, Detection, Limits
from vigil.detection.acceptance import Acceptance, accepted_from
from vigil.engine import Engine, Query
from vigil.metrics import Metrics
from vigil.outputs.feedback import (
    NoSuchEvent,
    NoVerdict,
    event_feedback,
    give_feedback,
    list_feedback,
    teach_all,
    undo_feedback,
)
from vigil.outputs.store import Store
from vigil.sources.base import SeriesBatch

T0, STEP = 1_700_000_000.0, 15.0
WEB1 = {"__name__": "cpu_utilization", "instance": "web-1"}
CALM, SPIKE = 300, 60.0


class Series:
    """One series fed to a real engine, a stretch at a time."""

    def __init__(self, data_dir: Path) -> None:
        self.store = Store(data_dir)
        self.metrics = Metrics()
        self.query = Query(FakeSource("cpu"), Detection(), Limits(history_points=240), "cpu")
        self.engine = Engine(Config(data_dir=data_dir), [self.query], self.store, self.metrics, clock=lambda: T0)
        self.rng = np.random.default_rng(0)
        self.n = 0

    def feed(self, spike: list[float] | None = None, calm: int = CALM) -> list[str]:
        """`calm` samples of noise, then `spike` (if any), then 30 calm; the ids of events that opened."""
        values = list(50 + self.rng.normal(0, 1, calm)) + list(spike or []) + list(50 + self.rng.normal(0, 1, 30))
        t = T0 + STEP * (self.n + np.arange(len(values)))
        self.n += len(values)
        before = {e["id"] for e in self.events()}
        assert isinstance(self.query.source, FakeSource)
        self.query.source.replies.append([SeriesBatch(dict(WEB1), t, np.array(values))])
        asyncio.run(self.engine.tick(self.query))
        return [e["id"] for e in self.events() if e["id"] not in before]

    def events(self) -> list[dict[str, object]]:
        return self.store.events(limit=1000)[0]


@pytest.fixture
def series(tmp_path: Path) -> Series:
    return Series(tmp_path)


def test_without_feedback_every_spike_alerts(series: Series) -> None:
    """The control: the detector does not learn the spike away by itself (not in three: a spike seen
    three times before is a pattern of the series to the tail calibration, `vigil.detection.tail`)."""
    assert [len(series.feed([SPIKE] * 3)) for _ in range(3)] == [1, 1, 1]


def test_an_event_marked_not_an_incident_does_not_alert_again_on_the_same_deviation_and_does_once_undone(
    series: Series,
) -> None:
    (first,) = series.feed([SPIKE] * 3)
    answer = give_feedback(series.store, series.engine, series.metrics, first, "not_an_incident", "backup", "alice")
    assert answer.verdict is not None and answer.verdict.author == "alice"
    assert answer.verdict.teaches and "no longer alert" in answer.verdict.teaches
    assert series.feed([SPIKE] * 3) == []
    undo_feedback(series.store, series.engine, series.metrics, first, "bob")
    assert len(series.feed([SPIKE] * 3)) == 1
    assert series.metrics.registry.get_sample_value("vigil_feedback_total", {"verdict": "not_an_incident"}) == 1
    assert series.metrics.registry.get_sample_value("vigil_feedback_total", {"verdict": "undone"}) == 1


def test_a_smaller_deviation_on_the_same_side_is_accepted_too(series: Series) -> None:
    (first,) = series.feed([SPIKE] * 3)
    give_feedback(series.store, series.engine, series.metrics, first, "not_an_incident")
    assert series.feed([SPIKE - 2] * 3) == []


@pytest.mark.parametrize(
    "other", [pytest.param([SPIKE + 15] * 3, id="a-clearly-larger-spike"), pytest.param([40.0] * 3, id="a-dip")]
)
def test_a_deviation_past_the_accepted_one_still_alerts(series: Series, other: list[float]) -> None:
    (first,) = series.feed([SPIKE] * 3)
    give_feedback(series.store, series.engine, series.metrics, first, "not_an_incident")
    assert len(series.feed(other)) == 1


def test_an_incident_verdict_teaches_nothing_and_replaces_a_not_an_incident(series: Series) -> None:
    (first,) = series.feed([SPIKE] * 3)
    give_feedback(series.store, series.engine, series.metrics, first, "not_an_incident", author="alice")
    answer = give_feedback(series.store, series.engine, series.metrics, first, "incident", "it was real", "bob")
    assert answer.verdict is not None and answer.verdict.verdict == "incident" and answer.verdict.teaches is None
    older = answer.history[1]
    assert (older.verdict, older.in_force, older.undone_by) == ("not_an_incident", False, "bob")
    assert len(series.feed([SPIKE] * 3)) == 1


def test_the_widest_accepted_deviation_holds_until_its_own_verdict_is_undone(series: Series) -> None:
    (small,) = series.feed([SPIKE] * 3)
    (large,) = series.feed([SPIKE + 15] * 3)
    accepted = series.query.pipeline.accepted
    for event in (small, large):
        give_feedback(series.store, series.engine, series.metrics, event, "not_an_incident")
    assert accepted["above_level"][0] == SPIKE + 15
    undo_feedback(series.store, series.engine, series.metrics, large)
    assert accepted["above_level"][0] == SPIKE, "the small one is still accepted"
    assert len(series.feed([SPIKE + 15] * 3)) == 1


def test_what_feedback_taught_holds_after_a_restart(tmp_path: Path) -> None:
    before = Series(tmp_path)
    (first,) = before.feed([SPIKE] * 3)
    give_feedback(before.store, before.engine, before.metrics, first, "not_an_incident")
    before.engine.snapshot()
    before.store.close()
    after = Series(tmp_path)  # a new process: state from the snapshot, what was taught from the store
    after.engine.restore()
    assert after.engine.restored == ["cpu"]
    assert after.query.pipeline.accepted["above"][0] != after.query.pipeline.accepted["above"][0], "not in the snapshot"
    assert teach_all(after.store, after.engine) == 1
    after.n = before.n
    assert after.feed([SPIKE] * 3) == []


def test_a_series_that_comes_back_keeps_what_it_was_taught(series: Series) -> None:
    (first,) = series.feed([SPIKE] * 3)
    give_feedback(series.store, series.engine, series.metrics, first, "not_an_incident")
    series.query.last_data = series.query.table.state["last_seen"][0] + 1e9  # long silent: evicted
    assert series.query.evict()[1] == 1
    assert len(series.query.table) == 0
    assert series.feed([SPIKE] * 3) == []


def test_unknown_events_and_undoing_nothing_are_refused(series: Series) -> None:
    (first,) = series.feed([SPIKE] * 3)
    with pytest.raises(NoSuchEvent):
        give_feedback(series.store, series.engine, series.metrics, "0" * 20, "incident")
    with pytest.raises(NoVerdict):
        undo_feedback(series.store, series.engine, series.metrics, first)
    with pytest.raises(ValueError, match="at most 1000"):
        give_feedback(series.store, series.engine, series.metrics, first, "incident", "x" * 1001)
    assert event_feedback(series.store, first).history == []


def test_every_verdict_is_listed_with_its_time_and_author(series: Series) -> None:
    (first,) = series.feed([SPIKE] * 3)
    give_feedback(series.store, series.engine, series.metrics, first, "incident", author="alice", clock=lambda: T0)
    give_feedback(series.store, series.engine, series.metrics, first, "not_an_incident", author="bob",
                  clock=lambda: T0 + 60)
    items, total = list_feedback(series.store)
    assert total == 2
    assert [(i.verdict, i.author, i.at, i.in_force) for i in items] == [
        ("not_an_incident", "bob", "2023-11-14T22:14:20Z", True), ("incident", "alice", "2023-11-14T22:13:20Z", False),
    ]
    assert list_feedback(series.store, in_force=True)[1] == 1
    assert list_feedback(series.store, verdict="incident")[0][0].author == "alice"


def test_a_store_made_before_feedback_existed_takes_feedback(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "vigil.db")
    old.executescript(  # the tables of a store written before this version
        "CREATE TABLE events (id TEXT PRIMARY KEY, query TEXT NOT NULL, series TEXT NOT NULL, state TEXT NOT NULL, "
        "started_at REAL NOT NULL, ended_at REAL, peak_score REAL, doc TEXT NOT NULL, updated_at REAL NOT NULL);"
        "CREATE TABLE snapshots (name TEXT PRIMARY KEY, data BLOB NOT NULL, saved_at REAL NOT NULL);"
    )
    old.close()
    series = Series(tmp_path)
    (first,) = series.feed([SPIKE] * 3)
    give_feedback(series.store, series.engine, series.metrics, first, "not_an_incident")
    assert series.feed([SPIKE] * 3) == []


def test_only_points_outside_their_band_say_what_is_accepted() -> None:
    inside, above = (52.0, 50.0, 45.0, 55.0), (60.0, 50.0, 45.0, 55.0)
    a = accepted_from([inside, above, (None, 50.0, 45.0, 55.0)])
    assert (a.above, a.above_level, a.above_slack) == (2.0, 60.0, pytest.approx(1.0))
    assert math.isnan(a.below) and math.isnan(a.below_level)
    assert accepted_from([inside]).empty
    assert "up to 61.0" in a.text() and "no longer alert" in a.text()
    assert Acceptance().text() == ""


def test_the_accepted_deviation_is_stored_with_the_verdict(series: Series) -> None:
    (first,) = series.feed([SPIKE] * 3)
    give_feedback(series.store, series.engine, series.metrics, first, "not_an_incident")
    with series.store.connection() as db:
        (text,) = db.execute("SELECT accepted FROM feedback").fetchone()
    stored = json.loads(text)
    assert stored["above_level"] == SPIKE and stored["below"] is None
