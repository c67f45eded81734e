"""The engine: ingest of bad and odd data, the series cap, eviction, events, state, sources.

Each test drives `Engine.tick` (or `Query.ingest`) directly with a fake source whose
replies it queues and an injected clock; nothing sleeps. The default detection (the ewma
and zscore ensemble, calibrated) runs for real.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.sources import FakeSource
from vigil.config import Config, Detection, Limits
from vigil.detection.detectors import DEFAULT_MEMBERS
from vigil.engine import Engine, Query
from vigil.errors import QueryRejected, SourceUnavailable
from vigil.labels import series_key
from vigil.metrics import Metrics
from vigil.outputs.store import Store
from vigil.sources.base import SeriesBatch

T0 = 1_700_000_000.0
STEP = 15.0
WEB1 = {"__name__": "cpu_utilization", "instance": "web-1"}
WEB2 = {"__name__": "cpu_utilization", "instance": "web-2"}
WEB3 = {"__name__": "cpu_utilization", "instance": "web-3"}
EVENT_FIELDS = {
    "id", "state", "series", "query", "detector", "started_at", "ended_at", "peak_at", "peak_score", "peak_surprise",
    "threshold", "observed", "expected", "lower", "upper", "detectors", "recent", "name", "summary", "muted",
}  # fmt: skip


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def batch(labels: dict[str, str], t: Sequence[float], v: Sequence[float]) -> SeriesBatch:
    return SeriesBatch(
        dict(labels), np.asarray(t, dtype=np.float64), np.asarray(v, dtype=np.float64)
    )


def calm(
    n: int, start: float = T0, seed: int = 0, level: float = 50.0
) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples of Gaussian noise around `level`, one per STEP from `start`."""
    rng = np.random.default_rng(seed)
    return start + STEP * np.arange(n), level + rng.normal(0.0, 1.0, n)


def make_query(
    name: str = "q",
    limits: Limits | None = None,
    detection: Detection | None = None,
    interval: float = STEP,
) -> Query:
    return Query(FakeSource(name, interval), detection or Detection(), limits or Limits(), name)


def make_engine(
    tmp_path: Path, *queries: Query, clock: Clock | None = None, store: Store | None = None
) -> Engine:
    config = Config(data_dir=tmp_path)
    return Engine(
        config,
        list(queries) or [make_query()],
        store or Store(tmp_path),
        Metrics(),
        clock=clock or Clock(),
    )


def tick(engine: Engine, name: str, batches: list[SeriesBatch] | BaseException, at: float) -> None:
    """Queue one reply on the query's source and run one tick at clock time `at`."""
    q = engine.queries[name]
    assert isinstance(q.source, FakeSource)
    q.source.replies.append(batches)
    assert isinstance(engine.clock, Clock)
    engine.clock.t = at
    asyncio.run(engine.tick(q))


def metric(engine: Engine, name: str, **labels: str) -> float | None:
    return engine.metrics.registry.get_sample_value(name, labels)


def row_of(q: Query, labels: dict[str, str]) -> int:
    return q.table.index[series_key(labels)]


def events(engine: Engine, **filters: Any) -> list[dict[str, Any]]:
    return engine.store.events(**filters)[0]


# -- ingest: duplicates, order, bad values, series coming and going -------------------------


def test_duplicates_inside_a_batch_keep_the_last_value(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [batch(WEB1, [1, 2, 2, 3, 3], [10, 20, 21, 30, 31])], at=T0)
    q = engine.queries["q"]
    hist = q.table.history(row_of(q, WEB1))
    assert hist["t"] == [1, 2, 3]
    assert hist["value"] == [10, 21, 31]
    assert metric(engine, "vigil_samples_total", query="q") == 3


def test_out_of_order_points_in_a_batch_are_put_in_order(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [batch(WEB1, [3, 1, 2], [30, 10, 20])], at=T0)
    q = engine.queries["q"]
    hist = q.table.history(row_of(q, WEB1))
    assert hist["t"] == [1, 2, 3]
    assert hist["value"] == [10, 20, 30]
    assert q.table.state["last_t"][row_of(q, WEB1)] == 3


def test_one_series_in_two_batches_is_one_series_with_the_points_of_both(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [batch(WEB1, [1, 3], [10, 30]), batch(WEB2, [1], [5]), batch(WEB1, [2, 3], [20, 31])], at=T0)
    q = engine.queries["q"]
    assert len(q.table) == 2
    hist = q.table.history(row_of(q, WEB1))
    assert hist["t"] == [1, 2, 3]
    assert hist["value"] == [10, 20, 31]  # the last value given for a time
    assert metric(engine, "vigil_samples_total", query="q") == 4


def test_points_already_taken_in_and_late_points_are_dropped(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [batch(WEB1, [1, 2, 3], [10, 20, 30])], at=T0)
    tick(engine, "q", [batch(WEB1, [2, 2.5, 3, 4], [99, 99, 99, 40])], at=T0 + STEP)
    q = engine.queries["q"]
    hist = q.table.history(row_of(q, WEB1))
    assert hist["t"] == [1, 2, 3, 4]
    assert hist["value"] == [10, 20, 30, 40]
    assert metric(engine, "vigil_samples_total", query="q") == 4


def test_a_batch_of_only_old_points_changes_nothing(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    t, v = calm(50)
    tick(engine, "q", [batch(WEB1, t, v)], at=T0)
    q = engine.queries["q"]
    before = q.snapshot()
    tick(engine, "q", [batch(WEB1, t[:10], v[:10] + 100)], at=T0 + STEP)
    assert q.snapshot() == before
    assert events(engine) == []


def test_nan_and_infinity_are_not_learned(tmp_path: Path) -> None:
    t, v = calm(120)
    clean = make_engine(tmp_path / "clean")
    tick(clean, "q", [batch(WEB1, t, v)], at=T0)

    # the same samples with bad ones in between (at times of their own)
    bad_t = t[:-1] + STEP / 2
    bad_v = np.resize([np.nan, np.inf, -np.inf], bad_t.size)
    order = np.argsort(np.concatenate([t, bad_t]), kind="stable")
    dirty = make_engine(tmp_path / "dirty")
    tick(
        dirty,
        "q",
        [batch(WEB1, np.concatenate([t, bad_t])[order], np.concatenate([v, bad_v])[order])],
        at=T0,
    )

    qc, qd = clean.queries["q"], dirty.queries["q"]
    rc, rd = row_of(qc, WEB1), row_of(qd, WEB1)
    assert qd.table.history(rd) == qc.table.history(rc)  # bad samples are not in the history
    for name in ("value", "expected", "lower", "upper", "score", "warming", "anomalous"):
        assert qd.table.state[name][rd] == qc.table.state[name][rc] or (
            np.isnan(qd.table.state[name][rd]) and np.isnan(qc.table.state[name][rc])
        ), name
    assert events(dirty) == []

    # the next good sample is scored the same as if the bad ones had never come
    tick(clean, "q", [batch(WEB1, [t[-1] + STEP], [50.5])], at=T0 + STEP)
    tick(dirty, "q", [batch(WEB1, [t[-1] + STEP], [50.5])], at=T0 + STEP)
    for name in ("expected", "lower", "upper", "score"):
        assert qd.table.state[name][rd] == qc.table.state[name][rc], name


def test_invalid_samples_are_counted_apart_from_valid_ones(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [batch(WEB1, [1, 2, 3, 4, 5], [10, np.nan, np.inf, 40, -np.inf])], at=T0)
    assert metric(engine, "vigil_samples_total", query="q") == 2
    assert metric(engine, "vigil_samples_invalid_total", query="q") == 3


def test_hitting_the_series_cap_says_so_once_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = FakeSource("q")
    engine = make_engine(tmp_path, Query(source, Detection(), Limits(max_series_per_query=1), "q"))
    other = {"__name__": "cpu_utilization", "instance": "web-2"}
    with caplog.at_level(logging.WARNING, logger="vigil.engine"):
        tick(engine, "q", [batch(WEB1, [1], [1.0]), batch(other, [1], [1.0])], at=T0)
        tick(engine, "q", [batch(WEB1, [2], [1.0]), batch(other, [2], [1.0])], at=T0 + STEP)
    lines = [r for r in caplog.records if "cap of 1 series per query" in r.getMessage()]
    assert len(lines) == 1 and "limits.max_series_per_query" in lines[0].getMessage()


def test_a_batch_of_only_nan_keeps_the_series_without_values(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [batch(WEB1, [1, 2, 3], [np.nan, np.inf, np.nan])], at=T0)
    q = engine.queries["q"]
    row = row_of(q, WEB1)
    assert q.table.history(row)["t"] == []
    assert np.isnan(q.table.state["value"][row])
    assert engine.ready() == (True, {})


def test_series_appear_and_vanish_without_disturbing_the_others(tmp_path: Path) -> None:
    t, v = calm(60)
    engine = make_engine(tmp_path)
    tick(engine, "q", [batch(WEB1, t, v), batch(WEB2, t, v + 10)], at=T0)
    q = engine.queries["q"]
    web2_before = q.table.history(row_of(q, WEB2))

    t2, v2 = calm(5, start=t[-1] + STEP, seed=1)
    tick(engine, "q", [batch(WEB1, t2, v2), batch(WEB3, t2, v2)], at=T0 + STEP)
    assert len(q.table) == 3
    assert metric(engine, "vigil_series", query="q") == 3
    assert q.table.history(row_of(q, WEB2)) == web2_before  # silent, kept as it was until evicted
    assert q.table.history(row_of(q, WEB1))["t"][-5:] == t2.tolist()
    assert q.table.history(row_of(q, WEB3))["t"] == t2.tolist()
    assert q.table.state["warming"][row_of(q, WEB3)]  # a new series starts cold
    assert not q.table.state["warming"][row_of(q, WEB1)]


def test_an_empty_fetch_is_a_successful_fetch(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [], at=T0)
    assert engine.ready() == (True, {})
    assert metric(engine, "vigil_source_up", query="q") == 1


# -- the series cap ------------------------------------------------------------------------


def test_label_values_that_look_like_more_labels_are_a_series_of_their_own(tmp_path: Path) -> None:
    tricky = {"__name__": "up", "a": 'x",b="y'}
    plain = {"__name__": "up", "a": "x", "b": "y"}
    q = make_query()
    engine = make_engine(tmp_path, q)
    tick(engine, "q", [batch(tricky, [1], [1.0]), batch(plain, [1], [2.0])], at=T0)
    assert len(q.table) == 2
    assert q.table.history(row_of(q, tricky))["value"] == [1.0]
    assert q.table.history(row_of(q, plain))["value"] == [2.0]


def test_series_cap_refuses_new_series_and_counts_them(tmp_path: Path) -> None:
    q = make_query(limits=Limits(max_series_per_query=2))
    engine = make_engine(tmp_path, q)
    tick(engine, "q", [batch(WEB1, [1], [1]), batch(WEB2, [1], [2]), batch(WEB3, [1], [3])], at=T0)
    assert sorted(q.table.index) == sorted(series_key(x) for x in (WEB1, WEB2))
    assert metric(engine, "vigil_series_refused_total", query="q") == 1
    assert metric(engine, "vigil_series", query="q") == 2
    assert metric(engine, "vigil_samples_total", query="q") == 2

    tick(
        engine,
        "q",
        [batch(WEB1, [2], [1]), batch(WEB2, [2], [2]), batch(WEB3, [2], [3])],
        at=T0 + STEP,
    )
    assert series_key(WEB3) not in q.table.index
    assert metric(engine, "vigil_series_refused_total", query="q") == 2
    assert q.table.history(row_of(q, WEB1))["t"] == [1, 2]  # the held series go on


# -- eviction ------------------------------------------------------------------------------


def spike_batches(
    labels: dict[str, str], n: int = 200, spike: float = 90.0, seed: int = 0
) -> SeriesBatch:
    """A calm stretch whose last sample is a spike: the event is open after it."""
    t, v = calm(n, seed=seed)
    v[-1] = spike
    return batch(labels, t, v)


def test_eviction_frees_the_row_and_resolves_its_open_event(tmp_path: Path) -> None:
    q = make_query(limits=Limits.model_validate({"evict_after": "10m"}))
    engine = make_engine(tmp_path, q)
    t, v = calm(200, seed=5)
    tick(engine, "q", [batch(WEB1, t, v), spike_batches(WEB2)], at=T0)
    (opened,) = events(engine)
    assert opened["state"] == "firing" and opened["series"] == WEB2
    web2 = row_of(q, WEB2)

    # web-1 keeps reporting, web-2 stops
    tick(engine, "q", [batch(WEB1, [t[-1] + STEP], [50.0])], at=T0 + 590)
    asyncio.run(engine.housekeeping(T0 + 590))  # silent for 590 s: kept
    assert len(q.table) == 2
    tick(engine, "q", [batch(WEB1, [t[-1] + 2 * STEP], [50.0])], at=T0 + 620)
    asyncio.run(engine.housekeeping(T0 + 620))  # over 600 s, but eviction passes are 60 s apart
    assert len(q.table) == 2
    asyncio.run(engine.housekeeping(T0 + 650))  # the next pass: evicted

    assert series_key(WEB2) not in q.table.index
    assert q.table.free == [web2]
    assert metric(engine, "vigil_series_evicted_total", query="q") == 1
    assert metric(engine, "vigil_series", query="q") == 1
    assert metric(engine, "vigil_events_open", query="q") == 0
    (resolved,) = events(engine)
    assert resolved["id"] == opened["id"]
    assert resolved["state"] == "resolved"
    assert resolved["ended_at"] == opened["started_at"]  # ended at the last hot sample
    assert resolved["summary"].endswith("; resolved")
    assert not q.table.state["anomalous"][web2]


def test_by_default_a_series_absent_for_ten_steps_is_forgotten(tmp_path: Path) -> None:
    """Label churn: a query whose series change every fetch holds about ten steps of them, not a day's."""
    q = make_query(limits=Limits(max_series_per_query=50))
    engine = make_engine(tmp_path, q)
    for i in range(200):  # a new series at every fetch, each seen once
        at = T0 + i * STEP
        tick(engine, "q", [batch({"__name__": "req", "pod": f"p{i}"}, [at], [1.0])], at=at)
        asyncio.run(engine.housekeeping(at))
    assert len(q.table) <= 10 + 60 / STEP  # 10 steps, and an eviction pass at most every 5 steps
    assert metric(engine, "vigil_series_refused_total", query="q") is None  # the cap was never reached
    assert metric(engine, "vigil_series_evicted_total", query="q") >= 180


def test_an_outage_of_the_source_forgets_no_series(tmp_path: Path) -> None:
    """Silence counts from the last successful fetch: while the source is down, nothing is evicted."""
    q = make_query()
    engine = make_engine(tmp_path, q)
    t, v = calm(50)
    tick(engine, "q", [batch(WEB1, t, v)], at=T0)
    for k in range(1, 40):  # 10 minutes down, four times the eviction delay
        tick(engine, "q", SourceUnavailable("connection refused"), at=T0 + k * STEP)
        asyncio.run(engine.housekeeping(T0 + k * STEP))
    assert len(q.table) == 1
    tick(engine, "q", [batch(WEB1, [t[-1] + STEP], [50.0])], at=T0 + 40 * STEP)  # back, with the series
    asyncio.run(engine.housekeeping(T0 + 41 * STEP))
    assert len(q.table) == 1 and metric(engine, "vigil_series_evicted_total", query="q") is None


def test_a_source_that_answers_nothing_forgets_no_series(tmp_path: Path) -> None:
    """A replay that reached its end (or a query whose series all vanished) keeps what it showed."""
    q = make_query()
    engine = make_engine(tmp_path, q)
    t, v = calm(50)
    tick(engine, "q", [batch(WEB1, t, v)], at=T0)
    for k in range(1, 40):
        tick(engine, "q", [], at=T0 + k * STEP)
        asyncio.run(engine.housekeeping(T0 + k * STEP))
    assert len(q.table) == 1 and engine.ready() == (True, {})


def test_refused_series_make_the_query_degraded_but_ready(tmp_path: Path) -> None:
    q = make_query(limits=Limits(max_series_per_query=1))
    engine = make_engine(tmp_path, q)
    tick(engine, "q", [batch(WEB1, [T0], [1]), batch(WEB2, [T0], [2])], at=T0)
    ready, reasons = engine.ready()
    assert ready
    assert reasons["q"].startswith("degraded: 1 series refused") and "limits.max_series_per_query" in reasons["q"]
    tick(engine, "q", [batch(WEB1, [T0 + STEP], [1])], at=T0 + STEP)  # the other series went away
    assert engine.ready() == (True, {})


def test_series_the_source_leaves_out_for_its_own_cap_are_counted_as_refused(tmp_path: Path) -> None:
    q = make_query()
    engine = make_engine(tmp_path, q)
    q.source.capped_series = 7  # type: ignore[attr-defined]  # as PrometheusSource reports its max_series cut
    tick(engine, "q", [batch(WEB1, [T0], [1])], at=T0)
    assert metric(engine, "vigil_series_refused_total", query="q") == 7
    assert "7 series refused" in engine.ready()[1]["q"]


def test_a_reused_row_starts_cold(tmp_path: Path) -> None:
    q = make_query(limits=Limits.model_validate({"evict_after": "1m"}))
    engine = make_engine(tmp_path, q)
    tick(engine, "q", [spike_batches(WEB2)], at=T0)
    tick(engine, "q", [batch(WEB1, [T0 + 120], [1.0])], at=T0 + 120)  # the source answers without it
    asyncio.run(engine.housekeeping(T0 + 120))
    assert len(q.table) == 1

    t, v = calm(40, start=T0 + 10_000, seed=9, level=500.0)
    tick(engine, "q", [batch(WEB3, t, v)], at=T0 + 10_000)
    fresh = make_engine(tmp_path / "fresh")
    tick(fresh, "q", [batch(WEB3, t, v)], at=T0 + 10_000)

    assert row_of(q, WEB3) == 0  # the evicted series' row
    qf = fresh.queries["q"]
    assert q.table.history(row_of(q, WEB3)) == qf.table.history(row_of(qf, WEB3))
    assert q.snapshot() != b""  # and the reused row holds nothing of the old series:
    assert q.pipeline.decision_state["number"][row_of(q, WEB3)] == 0
    assert not q.table.state["anomalous"][row_of(q, WEB3)]


# -- events --------------------------------------------------------------------------------


def test_a_spike_after_a_calm_stretch_opens_one_complete_event(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [spike_batches(WEB1)], at=T0)
    (doc,) = events(engine)

    assert set(doc) == EVENT_FIELDS
    assert doc["state"] == "firing"
    assert doc["series"] == WEB1
    assert doc["query"] == "q"
    assert doc["detector"] == "default"
    assert doc["started_at"] == "2023-11-14T23:03:05Z"  # T0 + 199 steps
    assert doc["ended_at"] is None
    assert Detection().threshold <= doc["peak_score"] <= 1
    assert doc["observed"] == 90.0
    assert doc["lower"] < doc["expected"] < doc["upper"] < 90.0
    assert doc["expected"] == pytest.approx(50.0, abs=1.0)
    assert "level" in doc["detectors"] and set(doc["detectors"]) <= set(DEFAULT_MEMBERS)
    assert all(0 <= s <= 1 for s in doc["detectors"].values())
    assert len(doc["recent"]) == 30
    assert set(doc["recent"][-1]) == {"t", "value", "expected", "lower", "upper", "score"}
    assert doc["recent"][-1]["value"] == 90.0
    assert [p["t"] for p in doc["recent"]] == sorted(p["t"] for p in doc["recent"])
    assert re.fullmatch(
        r"cpu_utilization on web-1 is 90\.0, expected (4\d|5\d)\.\d \(band \d+\.\d to \d+\.\d\); as rare as 1 in .+ samples",
        doc["summary"],
    ), doc["summary"]

    q = engine.queries["q"]
    assert q.table.state["anomalous"][row_of(q, WEB1)]
    assert metric(engine, "vigil_events_total", query="q") == 1
    assert metric(engine, "vigil_events_open", query="q") == 1


def test_a_constant_calm_series_opens_no_event(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    t, v = calm(300)
    tick(engine, "q", [batch(WEB1, t, v)], at=T0)
    assert events(engine) == []
    assert metric(engine, "vigil_events_open", query="q") == 0


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_event_resolves_after_quiet_samples_under_the_same_id(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    tick(engine, "q", [spike_batches(WEB1)], at=T0)
    (opened,) = events(engine)
    last = T0 + 199 * STEP
    # the spike keeps `shift` and `volatility` hot while it is in their recent windows
    quiet_t, quiet_v = calm(30 + Detection().resolve_after, start=last + STEP, seed=1)
    tick(engine, "q", [batch(WEB1, quiet_t, quiet_v)], at=T0 + STEP)

    (resolved,) = events(engine)
    assert resolved["id"] == opened["id"]
    assert resolved["state"] == "resolved"
    assert opened["started_at"] <= resolved["ended_at"] <= _iso(quiet_t[-Detection().resolve_after - 1])
    assert resolved["summary"].startswith("cpu_utilization on web-1 was 90.0")
    assert metric(engine, "vigil_events_total", query="q") == 1  # resolution is not a new event
    assert metric(engine, "vigil_events_open", query="q") == 0


def test_a_spike_of_several_samples_is_one_event(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    t, v = calm(200)
    v[-3:] = [90.0, 95.0, 92.0]
    tick(engine, "q", [batch(WEB1, t, v)], at=T0)
    (doc,) = events(engine)
    # the scores saturate at 1, so the peak is the first sample with the top score
    assert doc["observed"] == 90.0
    assert doc["peak_score"] == 1.0
    assert doc["started_at"] == "2023-11-14T23:02:35Z"  # T0 + 197 steps
    # recent points end where the event stood when it fired, even if the block went on
    assert doc["recent"][-1]["value"] == 90.0
    assert all(p["value"] < 80 for p in doc["recent"][:-1])


def test_replaying_the_same_samples_into_a_restored_engine_gives_the_same_event(
    tmp_path: Path,
) -> None:
    t, v = calm(200)
    v[-1] = 90.0
    store = Store(tmp_path)
    first = make_engine(tmp_path, store=store)
    tick(first, "q", [batch(WEB1, t[:-1], v[:-1])], at=T0)
    first.snapshot()  # saved before the spike
    tick(first, "q", [batch(WEB1, t[-1:], v[-1:])], at=T0 + STEP)
    (opened,) = events(first)

    second = make_engine(tmp_path, store=store)  # a new Query, as after a restart
    second.restore()
    assert second.restored == ["q"]
    tick(second, "q", [batch(WEB1, t, v)], at=T0 + 2 * STEP)  # the source sends all of it again

    assert events(second) == [opened]  # same id, same document, one row
    assert store.events()[1] == 1


def test_samples_replayed_after_a_snapshot_fire_nothing_again(tmp_path: Path) -> None:
    t, v = calm(200)
    v[-1] = 90.0
    store = Store(tmp_path)
    first = make_engine(tmp_path, store=store)
    tick(first, "q", [batch(WEB1, t, v)], at=T0)
    first.snapshot()  # saved with the event open
    (opened,) = events(first)

    second = make_engine(tmp_path, store=store)
    second.restore()
    tick(second, "q", [batch(WEB1, t, v)], at=T0 + STEP)
    assert metric(second, "vigil_events_total", query="q") is None
    assert events(second) == [opened]
    q = second.queries["q"]
    assert q.table.state["anomalous"][row_of(q, WEB1)]
    assert q.open_count() == 1


def test_snapshot_and_restore_give_identical_next_outputs() -> None:
    t, v = calm(150)
    original = make_query()
    original.ingest([batch(WEB1, t, v), batch(WEB2, t, v * 2)], T0)
    restored = make_query()
    restored.restore(original.snapshot())

    t2, v2 = calm(40, start=t[-1] + STEP, seed=3)
    v2[20] = 95.0
    nxt = [batch(WEB1, t2, v2), batch(WEB2, t2, v2 * 2), batch(WEB3, t2, v2)]
    a = original.ingest(nxt, T0 + 100)
    b = restored.ingest(nxt, T0 + 100)

    assert a.events == b.events and a.events  # the spike opened the same events in both
    assert (a.taken, a.refused) == (b.taken, b.refused)
    assert original.table.keys == restored.table.keys
    for name, arr in original.table.state.arrays.items():
        np.testing.assert_array_equal(arr, restored.table.state[name], err_msg=name)
    for a, b in zip(original.pipeline._states(), restored.pipeline._states(), strict=True):
        for name, arr in a.arrays.items():
            np.testing.assert_array_equal(arr, b[name], err_msg=name)


def test_restore_of_another_querys_state_is_refused_and_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path)
    donor = make_query("other")
    donor.ingest([batch(WEB1, [1, 2], [1, 2])], T0)
    store.save_snapshots({"query:q": donor.snapshot()})
    engine = make_engine(tmp_path, store=store)
    with caplog.at_level(logging.WARNING, logger="vigil.engine"):
        engine.restore()
    assert engine.restored == []
    assert "not restoring query q" in caplog.text
    assert len(engine.queries["q"].table) == 0


# -- sources that fail ---------------------------------------------------------------------


def test_not_ready_before_the_first_fetch(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    assert engine.ready() == (False, {"q": "no successful fetch yet"})


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        pytest.param(
            SourceUnavailable("connection refused"),
            "unavailable",
            "connection refused",
            id="unavailable",
        ),
        pytest.param(
            QueryRejected("bad PromQL: parse error"),
            "rejected",
            "bad PromQL: parse error",
            id="rejected",
        ),
        pytest.param(TimeoutError(), "unavailable", "timed out", id="timeout"),
    ],
)
def test_a_failing_source_is_counted_by_kind_and_makes_the_engine_not_ready(
    tmp_path: Path, error: Exception, kind: str, reason: str
) -> None:
    good = make_query("good")
    engine = make_engine(tmp_path, make_query("q"), good)
    tick(engine, "good", [], at=T0)
    tick(engine, "q", error, at=T0)
    assert engine.ready() == (False, {"q": f"source failing: {reason}"})
    assert metric(engine, "vigil_source_errors_total", query="q", kind=kind) == 1
    other = "rejected" if kind == "unavailable" else "unavailable"
    assert metric(engine, "vigil_source_errors_total", query="q", kind=other) is None
    assert metric(engine, "vigil_source_up", query="q") == 0
    assert metric(engine, "vigil_source_up", query="good") == 1


def test_a_failing_source_backs_off_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    q = make_query(interval=1.0)
    engine = make_engine(tmp_path, q)
    delays = []
    with caplog.at_level(logging.INFO, logger="vigil.engine"):
        for i in range(5):
            now = T0 + 100 * i
            tick(engine, "q", SourceUnavailable("connection refused"), at=now)
            delays.append(q.next_due - now)
        assert delays == sorted(delays) and len(set(delays)) == 5  # grows every time
        assert delays[0] >= 1.0  # never sooner than the interval
        assert delays[-1] >= 0.8 * 16  # 1, 2, 4, 8, 16 s (with jitter)
        assert q.errors == 5
        assert metric(engine, "vigil_source_errors_total", query="q", kind="unavailable") == 5

        tick(engine, "q", [batch(WEB1, [1], [1])], at=T0 + 1000)
    assert engine.ready() == (True, {})
    assert q.errors == 0 and q.last_error is None and q.last_ok == T0 + 1000
    assert q.next_due == T0 + 1000 + q.interval
    assert metric(engine, "vigil_source_up", query="q") == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # the same failure is logged once, not every retry
    assert "query q: connection refused" in warnings[0].getMessage()
    assert "source is back after 5 failed fetches" in caplog.text


def test_backoff_is_capped(tmp_path: Path) -> None:
    q = make_query(interval=15.0)
    engine = make_engine(tmp_path, q)
    for i in range(8):
        tick(engine, "q", SourceUnavailable("down"), at=T0 + 1000 * i)
        assert q.next_due - (T0 + 1000 * i) <= 60 * 1.2


def test_one_broken_query_does_not_stop_the_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A query whose ingest raises is logged and retried on its own schedule; the others keep ticking."""
    n_ticks = 6
    interval = 0.05

    class Good(FakeSource):
        stop: asyncio.Event

        async def fetch(self, now: float) -> list[SeriesBatch]:
            if len(self.calls) + 1 >= n_ticks:
                self.stop.set()
            await super().fetch(now)
            return [batch(WEB1, [now], [50.0])]

    broken = FakeSource("broken", interval)
    broken.replies = [[batch(WEB2, [1.0, 2.0], [1.0])] for _ in range(1000)]  # t and v do not match
    good = Good("good", interval)
    queries = [
        Query(broken, Detection(), Limits(), "broken"),
        Query(good, Detection(), Limits(), "good"),
    ]
    engine = Engine(Config(data_dir=tmp_path), queries, Store(tmp_path), Metrics(), clock=time.time)

    async def main() -> None:
        good.stop = asyncio.Event()
        await asyncio.wait_for(engine.run(good.stop), timeout=20)

    with caplog.at_level(logging.ERROR, logger="vigil.engine"):
        asyncio.run(main())

    assert len(good.calls) == n_ticks
    assert len(broken.calls) >= 2  # retried all along
    assert len(engine.queries["good"].table.history(0)["t"]) == n_ticks
    assert "query broken: processing samples failed" in caplog.text
    ready, reasons = engine.ready()
    assert not ready and "internal error" in reasons["broken"] and "good" not in reasons
    assert metric(engine, "vigil_source_errors_total", query="broken", kind="internal") == len(broken.calls)
    assert good.closed and broken.closed  # sources are closed at stop
    assert engine.store.load_snapshot("query:good") is not None  # state saved at stop


def test_a_source_that_hangs_delays_no_other_query(tmp_path: Path) -> None:
    """Each query ticks on its own schedule: one whose fetch never returns leaves the others on time."""
    interval = 0.05

    class Hanging(FakeSource):
        async def fetch(self, now: float) -> list[SeriesBatch]:
            self.calls.append(now)
            await asyncio.Event().wait()  # never answers (the engine's own timeout is 30 s)
            return []

    class Counting(FakeSource):
        stop: asyncio.Event

        async def fetch(self, now: float) -> list[SeriesBatch]:
            await super().fetch(now)
            if len(self.calls) >= 10:
                self.stop.set()
            return [batch(WEB1, [now], [50.0])]

    hanging, counting = Hanging("hanging", interval), Counting("counting", interval)
    queries = [Query(hanging, Detection(), Limits(), "hanging"), Query(counting, Detection(), Limits(), "counting")]
    engine = Engine(Config(data_dir=tmp_path), queries, Store(tmp_path), Metrics(), clock=time.time)

    async def main() -> None:
        counting.stop = asyncio.Event()
        await asyncio.wait_for(engine.run(counting.stop), timeout=20)

    asyncio.run(main())
    assert len(hanging.calls) == 1  # still waiting on its first answer when the run stopped
    assert len(counting.calls) >= 10
    assert engine.store.load_snapshot("query:counting") is not None  # the hung fetch did not block the final save


def test_a_catch_up_of_many_series_is_run_in_blocks_of_bounded_size_with_the_same_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vigil.engine import query as query_module

    rng = np.random.default_rng(4)
    t = 1_700_000_000.0 + 15.0 * np.arange(200)
    batches = []
    for i in range(40):
        v = 50 + rng.normal(0, 1, t.size)
        v[150 + i % 7] += 40  # a spike in each series
        batches.append(SeriesBatch({"__name__": "cpu", "i": str(i)}, t, v))

    def run() -> tuple[Query, Any]:
        q = Query(FakeSource(), Detection(), Limits(), "q")  # type: ignore[arg-type]
        return q, q.ingest(batches, float(t[-1]))

    whole, got_whole = run()
    monkeypatch.setattr(query_module, "_CELLS", 40 * 7)  # 7 steps of 40 series a block
    cut, got_cut = run()
    assert [r.event for r in got_cut.events] == [r.event for r in got_whole.events] and got_whole.events
    for name in ("value", "expected", "score", "upper"):
        np.testing.assert_array_equal(cut.table.state[name], whole.table.state[name])
    assert cut.table.history(3) == whole.table.history(3)
