"""Maintenance windows and mutes in the engine: muted events notify nobody, muted samples are not learned.

The engine runs for real (the default calibrated ensemble) on a fake source whose replies
the test queues, with an injected clock; notifications go through the real outbox and
sender to a real HTTP receiver on loopback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.receivers import HookServer
from support.sources import FakeSource
from vigil.config import Config, Detection, Limits, Notify, Receiver, Window
from vigil.engine import Engine, Query
from vigil.engine.mutes import Silence, Silences
from vigil.labels import series_key
from vigil.metrics import Metrics
from vigil.outputs.notify import Outbox, Route, Sender, build_targets
from vigil.outputs.store import Store
from vigil.service import Service
from vigil.sources.base import SeriesBatch

MONDAY = dt.datetime(2026, 12, 7, tzinfo=dt.UTC).timestamp()
STEP = 60.0
N = 480  # 8 hours of samples
FROM, TO = 240, 300  # the window: 04:00 to 05:00 UTC
SHIFT = slice(250, 300)  # the level shift, inside the window
LABELS = {"__name__": "load", "instance": "db-1"}
OTHER = {"__name__": "load", "instance": "web-1"}
WINDOW = {"name": "patching", "matchers": '{instance="db-1"}', "weekdays": ["mon"], "start": "04:00", "end": "05:00"}


class Clock:
    def __init__(self) -> None:
        self.t = MONDAY

    def __call__(self) -> float:
        return self.t


def series(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = MONDAY + STEP * np.arange(N)
    v = 10.0 + rng.normal(0.0, 1.0, N)
    v[SHIFT] += 12.0
    return t, v


def query(windows: list[dict[str, Any]] | None = None) -> Query:
    q = Query(FakeSource(interval=STEP), Detection(), Limits(history_points=1000), "q")
    q.silences = Silences([Window.model_validate(w) for w in windows or []])
    return q


def feed(q: Query, t: np.ndarray, v: np.ndarray, labels: dict[str, str] = LABELS) -> list[Any]:
    """Everything at once, in blocks of an hour; the event records."""
    records = []
    for i in range(0, t.size, 60):
        got = q.ingest([SeriesBatch(dict(labels), t[i : i + 60], v[i : i + 60])], float(t[min(i + 59, t.size - 1)]))
        records += got.events
    return records


def band_at(q: Query, when: float, labels: dict[str, str] = LABELS) -> np.ndarray:
    """(expected, lower, upper) of the series at time `when`."""
    h = q.table.history(int(q.table.index[series_key(labels)]))
    i = int(np.flatnonzero(np.asarray(h["t"]) == when)[0])
    return np.array([h["expected"][i], h["lower"][i], h["upper"][i]], dtype=np.float64)


def test_a_window_keeps_a_level_shift_out_of_the_model() -> None:
    t, v = series()
    muted = query([WINDOW])
    records = feed(muted, t, v)
    after = float(t[TO])

    keep = np.r_[0:FROM, TO:N]  # the same series that never had the window's samples
    reference = query()
    feed(reference, t[keep], v[keep])

    assert records, "the shift is seen: its event is recorded"
    assert {r.muted for r in records} == {"maintenance:patching"}
    assert all(MONDAY + FROM * STEP <= r.event.started_at < MONDAY + TO * STEP for r in records)
    np.testing.assert_allclose(band_at(muted, after), band_at(reference, after), rtol=1e-9)
    # the band the model gave as the window began; its width moves a little with the hour without samples
    np.testing.assert_allclose(band_at(muted, after), band_at(muted, float(t[FROM])), rtol=1e-2)
    later = float(t[N - 1])
    np.testing.assert_allclose(band_at(muted, later), band_at(reference, later), rtol=1e-9)


def test_a_window_that_learns_lets_the_model_take_the_shift_in() -> None:
    t, v = series()
    learning = query([{**WINDOW, "learn": True}])
    records = feed(learning, t, v)
    reference = query()
    keep = np.r_[0:FROM, TO:N]
    feed(reference, t[keep], v[keep])

    assert records and all(r.muted == "maintenance:patching" for r in records if r.event.started_at < t[TO])
    learnt, before = band_at(learning, float(t[TO])), band_at(reference, float(t[TO]))
    assert learnt[0] > before[0] + 3.0, f"expected {learnt[0]:.3g} has moved toward the shifted level"


def test_a_window_covers_only_the_series_it_selects() -> None:
    t, v = series()
    q = query([WINDOW])
    records = feed(q, t, v, OTHER)
    assert records and all(r.muted is None for r in records)


def test_a_one_off_mute_over_part_of_a_block_cuts_it_at_its_edges() -> None:
    t, v = series()
    q = query()
    assert q.silences is not None
    q.silences.set_mutes([Silence.once("mute:abc", '{instance="db-1"}', float(t[FROM]), float(t[TO]))])
    q.ingest([SeriesBatch(dict(LABELS), t, v)], float(t[-1]))  # one block of all samples
    reference = query()
    keep = np.r_[0:FROM, TO:N]
    reference.ingest([SeriesBatch(dict(LABELS), t[keep], v[keep])], float(t[-1]))
    np.testing.assert_allclose(band_at(q, float(t[TO])), band_at(reference, float(t[TO])), rtol=1e-9)


def test_no_silence_changes_nothing() -> None:
    t, v = series()
    plain = Query(FakeSource(interval=STEP), Detection(), Limits(history_points=1000), "q")
    silenced = query([{**WINDOW, "weekdays": ["tue"]}])  # a window that is never over these samples
    a, b = feed(plain, t, v), feed(silenced, t, v)
    assert [r.event for r in a] == [r.event for r in b]
    for k in ("expected", "lower", "upper", "score"):
        np.testing.assert_array_equal(plain.table.history(0)[k], silenced.table.history(0)[k])


def _notified(tmp_path: Path, windows: list[dict[str, Any]]) -> tuple[list[Any], list[dict[str, Any]]]:
    """Feed the series an hour per tick through a whole service; what the receiver got, and the stored events."""
    clock = Clock()
    config = Config(data_dir=tmp_path, maintenance=[Window.model_validate(w) for w in windows])
    with HookServer() as hook:
        receiver = Receiver(name="hook", type="webhook", url=hook.url)  # type: ignore[arg-type]
        notify = Notify(receivers=[receiver])
        source = FakeSource(interval=STEP)
        q = Query(source, Detection(), Limits(history_points=1000), "q")
        store, metrics = Store(tmp_path), Metrics()
        engine = Engine(config, [q], store, metrics, clock=clock)
        outbox = Outbox(store, [Route.of(receiver)], clock=clock)
        sender = Sender(outbox, build_targets(notify), notify, metrics, "http://vigil", clock=clock)
        Service(config=config, engine=engine, store=store, metrics=metrics, outbox=outbox, sender=sender)
        t, v = series()

        async def run() -> None:
            for i in range(0, N, 60):
                source.replies.append([SeriesBatch(dict(LABELS), t[i : i + 60], v[i : i + 60])])
                clock.t = float(t[i + 59])
                await engine.tick(q)
                while (due := outbox.next_due("hook")) is not None and due <= clock.t:
                    await sender.step("hook")
            await sender.aclose()

        asyncio.run(run())
        deadline = time.monotonic() + 5.0
        while outbox.pending("hook") and time.monotonic() < deadline:
            time.sleep(0.05)
        events, _ = store.events(limit=100)
        return hook.bodies(), events


def test_a_maintenance_window_over_a_level_shift_sends_nothing(tmp_path: Path) -> None:
    bodies, events = _notified(tmp_path / "window", [WINDOW])
    assert events and all(e["muted"] == "maintenance:patching" for e in events)
    assert bodies == []

    bodies, events = _notified(tmp_path / "none", [])
    assert events and all(e["muted"] is None for e in events)
    assert bodies, "without the window the same shift is notified"


@pytest.mark.parametrize("cron", ["0 4 * * mon", "0 4 * * 1"])
def test_a_cron_window_mutes_like_a_weekday_window(cron: str) -> None:
    t, v = series()
    q = query([{"name": "patching", "matchers": '{instance="db-1"}', "cron": cron, "duration": "1h"}])
    records = feed(q, t, v)
    assert records and {r.muted for r in records} == {"maintenance:patching"}


def test_series_a_window_does_not_cover_run_as_if_it_were_not_there() -> None:
    t, v = series()
    _, w = series(seed=4)
    both = query([WINDOW])
    both.ingest([SeriesBatch(dict(LABELS), t, v), SeriesBatch(dict(OTHER), t, w)], float(t[-1]))  # cut at the edges
    alone = Query(FakeSource(interval=STEP), Detection(), Limits(history_points=1000), "q")
    alone.ingest([SeriesBatch(dict(OTHER), t, w)], float(t[-1]))
    a, b = both.table.history(int(both.table.index[series_key(OTHER)])), alone.table.history(0)
    for k in ("expected", "lower", "upper", "score"):
        np.testing.assert_array_equal(a[k], b[k])
