"""The sender: outcomes per status, backoff with injected random and clock, giving up, re-posts,
secrets kept out of logs, errors and the API, and a hanging receiver that delays nobody.

Retry and backoff run over `httpx.MockTransport` with a fixed clock (`Sender.step` is one
round); the hanging receiver is a real HTTP server on loopback that never answers, next
to the real engine ticking on a fast fake source.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from support.notifying import T0, Clock, make_doc
from support.receivers import HookServer
from vigil.config import Config, Detection, Limits, Notify, Receiver
from vigil.engine import Engine, Query
from vigil.metrics import Metrics
from vigil.outputs.notify import Outbox, Route, Sender, build_targets
from vigil.outputs.store import Store
from vigil.service import Service
from vigil.sources.base import SeriesBatch

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated")
    from fastapi.testclient import TestClient

URL = "http://hook.test/events"
Handler = Callable[[httpx.Request], Any]


class Harness:
    """Store, outbox, sender and metrics over a MockTransport, on a fixed clock."""

    def __init__(self, tmp_path: Path, handler: Handler, receivers: list[Receiver] | None = None,
                 random: Callable[[], float] = lambda: 1.0, open_events: Callable[[], set[str]] | None = None,
                 **settings: Any) -> None:
        self.receivers = receivers or [Receiver(name="hook", type="webhook", url=URL)]  # type: ignore[arg-type]
        self.notify = Notify(receivers=self.receivers, **settings)
        self.clock = Clock()
        self.store = Store(tmp_path)
        self.outbox = Outbox(self.store, [Route.of(r) for r in self.receivers], clock=self.clock)
        self.metrics = Metrics()
        self.sender = Sender(
            self.outbox, build_targets(self.notify), self.notify, self.metrics, "http://vigil:8080",
            open_events=open_events, clock=self.clock, random=random, transport=httpx.MockTransport(handler),
        )

    def rounds(self, *times: float, receiver: str = "hook") -> None:
        """One `Sender.step` at each clock time, in one event loop."""

        async def go() -> None:
            for t in times:
                self.clock.t = t
                await self.sender.step(receiver)
            await self.sender.aclose()

        asyncio.run(go())

    def until_quiet(self, receiver: str = "hook", limit: int = 50) -> list[float]:
        """Step at each next due time until nothing is pending; the times used."""
        times: list[float] = []

        async def go() -> None:
            for _ in range(limit):
                due = self.outbox.next_due(receiver)
                if due is None:
                    break
                self.clock.t = max(due, self.clock.t)
                times.append(self.clock.t)
                await self.sender.step(receiver)
            await self.sender.aclose()

        asyncio.run(go())
        return times

    def message(self, receiver: str = "hook") -> dict[str, Any]:
        items, _ = self.outbox.page(receiver=receiver)
        return items[0]

    def count(self, result: str, receiver: str = "hook") -> float:
        return self.metrics.registry.get_sample_value(
            "vigil_notifications_total", {"receiver": receiver, "result": result}
        ) or 0.0


def answer(*statuses: int, headers: dict[str, str] | None = None) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering `statuses` in turn (the last one forever), and its request log."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = statuses[min(len(seen) - 1, len(statuses) - 1)]
        return httpx.Response(status, json={"ok": status < 300}, headers=headers)

    return handler, seen


# -- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_from_base_to_the_cap_with_full_jitter(tmp_path: Path) -> None:
    h = Harness(tmp_path, answer(200)[0], backoff="1s", max_backoff="30s")
    assert [h.sender.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    draws = iter([0.0, 0.25, 0.5, 0.999])
    h.sender.random = lambda: next(draws)
    assert [h.sender.backoff(4) for _ in range(4)] == [0.0, 2.0, 4.0, pytest.approx(7.992)]


def test_a_failing_receiver_is_retried_on_the_backoff_schedule(tmp_path: Path) -> None:
    handler, seen = answer(503)
    h = Harness(tmp_path, handler, backoff="2s", max_backoff="20s", max_attempts=7, random=lambda: 1.0)
    h.store.upsert_events([make_doc()])
    times = h.until_quiet()
    assert np.diff(times).tolist() == [2, 4, 8, 16, 20, 20]
    assert len(seen) == 7
    m = h.message()
    assert m["status"] == "dead" and m["attempts"] == 7
    assert m["last_error"].startswith("gave up after 7 attempts; last error: HTTP 503")
    assert (h.count("retry"), h.count("dead"), h.count("sent")) == (6, 1, 0)


# -- outcomes ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_a_4xx_makes_the_message_dead_at_once(tmp_path: Path, status: int) -> None:
    handler, seen = answer(status)
    h = Harness(tmp_path, handler)
    h.store.upsert_events([make_doc()])
    h.until_quiet()
    m = h.message()
    assert len(seen) == 1 and m["status"] == "dead" and m["attempts"] == 1
    assert m["last_error"].startswith(f"HTTP {status}")
    assert h.count("dead") == 1 and h.count("retry") == 0


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_408_429_and_5xx_are_retried_then_sent(tmp_path: Path, status: int) -> None:
    handler, seen = answer(status, status, 200)
    h = Harness(tmp_path, handler)
    h.store.upsert_events([make_doc()])
    h.until_quiet()
    m = h.message()
    assert m["status"] == "sent" and m["attempts"] == 3 and m["last_error"] is None
    assert (h.count("retry"), h.count("sent"), h.count("dead")) == (2, 1, 0)
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert keys == {m["idempotency_key"]}, "every attempt carries the same key"


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("closed early")],
    ids=["connect", "read-timeout", "protocol"],
)
def test_network_errors_are_retried(tmp_path: Path, error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    h = Harness(tmp_path, handler)
    h.store.upsert_events([make_doc()])
    h.rounds(T0)
    m = h.message()
    assert m["status"] == "pending" and m["attempts"] == 1
    assert m["last_error"].startswith(type(error).__name__)


def test_a_receiver_that_never_answers_times_out_and_is_retried(tmp_path: Path) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    receiver = Receiver(name="hook", type="webhook", url=URL, timeout="200ms")  # type: ignore[arg-type]
    h = Harness(tmp_path, handler, [receiver])
    h.store.upsert_events([make_doc()])
    began = time.monotonic()
    h.rounds(T0)
    assert time.monotonic() - began < 2
    m = h.message()
    assert m["status"] == "pending" and m["last_error"] == "no answer within 0.2 s (timeout)"


def test_a_redirect_is_dead_with_advice(tmp_path: Path) -> None:
    h = Harness(tmp_path, answer(302, headers={"Location": "http://elsewhere/"})[0])
    h.store.upsert_events([make_doc()])
    h.rounds(T0)
    assert h.message()["status"] == "dead" and "configure the final URL" in h.message()["last_error"]


def test_a_message_that_cannot_be_rendered_is_dead_not_retried_forever(tmp_path: Path) -> None:
    handler, seen = answer(200)
    h = Harness(tmp_path, handler)
    doc = make_doc()
    del doc["event"]["query"]  # a payload the formats cannot use
    h.outbox.enqueue([doc])
    h.rounds(T0)
    m = h.message()
    assert not seen and m["status"] == "dead" and m["last_error"].startswith("cannot render the message: KeyError")


def test_retry_after_is_waited_for(tmp_path: Path) -> None:
    h = Harness(tmp_path, answer(429, headers={"Retry-After": "120"})[0], random=lambda: 0.0)
    h.store.upsert_events([make_doc()])
    h.rounds(T0)
    assert h.outbox.next_due("hook") == T0 + 120


def test_a_message_older_than_give_up_after_is_dead_after_one_more_try(tmp_path: Path) -> None:
    handler, seen = answer(503)
    h = Harness(tmp_path, handler, give_up_after="1m")
    h.store.upsert_events([make_doc()])  # queued at T0
    h.rounds(T0 + 61)  # Vigil was down for a while: one try, then dead
    m = h.message()
    assert len(seen) == 1 and m["status"] == "dead"
    assert m["last_error"].startswith("gave up after 61 s (notify.give_up_after)")


def test_resolved_reaches_the_receiver_after_firing_even_when_firing_was_retried(tmp_path: Path) -> None:
    handler, seen = answer(503, 503, 200)
    h = Harness(tmp_path, handler)
    h.store.upsert_events([make_doc()])
    h.rounds(T0)
    h.store.upsert_events([make_doc("resolved")])
    h.until_quiet()
    states = [r.headers["Idempotency-Key"].rsplit(":", 1)[1] for r in seen]
    assert states == ["firing", "firing", "firing", "resolved"]


def test_each_request_has_the_configured_headers_and_the_format(tmp_path: Path) -> None:
    handler, seen = answer(200)
    receiver = Receiver(  # type: ignore[arg-type]
        name="hook", type="webhook", url=URL, format="slack", headers={"X-Token": {"value": "t0k3n-value"}}
    )
    h = Harness(tmp_path, handler, [receiver])
    h.store.upsert_events([make_doc()])
    h.rounds(T0)
    (r,) = seen
    assert r.method == "POST" and str(r.url) == URL
    assert r.headers["X-Token"] == "t0k3n-value" and r.headers["content-type"] == "application/json"
    assert set(httpx.Response(200, content=r.content).json()) == {"text", "blocks"}


# -- Alertmanager --------------------------------------------------------------------------


def test_alertmanager_gets_alerts_and_reposts_of_open_ones(tmp_path: Path) -> None:
    handler, seen = answer(200)
    receiver = Receiver(  # type: ignore[arg-type]
        name="am", type="alertmanager", url="http://am.test:9093", repost_every="1m", labels={"team": "ops"}
    )
    open_ids: set[str] = set()
    h = Harness(tmp_path, handler, [receiver], open_events=lambda: open_ids)
    doc = make_doc()
    open_ids.add(doc["id"])
    h.store.upsert_events([doc])
    h.rounds(T0, T0 + 30, receiver="am")
    assert len(seen) == 1 and seen[0].url.path == "/api/v2/alerts"
    (alert,) = httpx.Response(200, content=seen[0].content).json()
    assert alert["labels"]["team"] == "ops" and alert["labels"]["alertname"] == "VigilAnomaly"
    assert seen[0].headers["Idempotency-Key"] == f"{doc['id']}:firing"

    h.rounds(T0 + 61, receiver="am")  # a re-post, not an outbox message
    assert len(seen) == 2
    (again,) = httpx.Response(200, content=seen[1].content).json()
    assert again["labels"] == alert["labels"] and again["endsAt"] > alert["endsAt"]
    assert "Idempotency-Key" not in seen[1].headers
    assert h.metrics.registry.get_sample_value("vigil_alertmanager_reposts_total", {"receiver": "am", "result": "ok"}) == 1
    assert h.count("sent", "am") == 1

    open_ids.clear()  # the engine no longer has it open (e.g. its query was removed)
    h.rounds(T0 + 122, receiver="am")
    assert len(seen) == 2
    open_ids.add(doc["id"])
    h.store.upsert_events([make_doc("resolved")])
    h.rounds(T0 + 183, T0 + 244, receiver="am")
    assert len(seen) == 3, "the resolution, and no re-post after it"
    (resolved,) = httpx.Response(200, content=seen[2].content).json()
    assert resolved["endsAt"] < alert["endsAt"]


# -- secrets -------------------------------------------------------------------------------

SECRET_URL = "https://hooks.example.test/services/T0001/B0002/pAtHsEcReT123?sig=QuErYsEcReT456"
SECRETS = ("pAtHsEcReT123", "QuErYsEcReT456", "HeAdErSeCrEt789")


def test_secrets_never_reach_logs_errors_or_the_api(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:  # an error whose text carries the URL
            raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)
        if calls == 2:  # a receiver echoing the URL in its error body
            return httpx.Response(503, text=f"upstream {request.url} failed")
        return httpx.Response(400, text=f"bad token {request.headers['authorization']}")

    receiver = Receiver(  # type: ignore[arg-type]
        name="teams", type="webhook", format="teams", url={"value": SECRET_URL},
        headers={"Authorization": {"value": "Bearer HeAdErSeCrEt789"}},
    )
    h = Harness(tmp_path, handler, [receiver])
    h.store.upsert_events([make_doc()])
    h.until_quiet("teams")
    assert calls == 3

    items, _ = h.outbox.page()
    errors = " ".join(str(i["last_error"]) for i in items)
    assert "HTTP 400" in errors and "***" in errors
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "teams" in logs, "logs name the receiver"
    text = f"{logs}\n{errors}\n{h.sender.targets!r}\n{h.notify!r}"
    for secret in SECRETS:
        assert secret not in text

    engine = Engine(Config(data_dir=tmp_path), [], h.store, h.metrics)
    service = Service(config=Config(data_dir=tmp_path), engine=engine, store=h.store, metrics=h.metrics,
                      outbox=h.outbox, sender=h.sender)
    from vigil.http.app import create_app

    client = TestClient(create_app(service), base_url="http://localhost")
    bodies = [client.get(p).text for p in ("/api/v1/notifications", "/api/v1/anomalies", "/metrics", "/openapi.json")]
    page = client.get("/api/v1/notifications").json()
    assert page["receivers"] == {"teams": {"pending": 0, "sent": 0, "dead": 1}}
    assert page["items"][0]["status"] == "dead" and page["items"][0]["receiver"] == "teams"
    assert client.get("/api/v1/anomalies").json()["items"][0]["notifications"] == {"teams": {"firing": "dead"}}
    for secret in SECRETS:
        assert all(secret not in b for b in bodies)


def test_the_notifications_endpoint_filters_by_state_and_receiver(tmp_path: Path) -> None:
    receivers = [Receiver(name=n, type="webhook", url=URL) for n in ("a", "b")]  # type: ignore[arg-type]
    h = Harness(tmp_path, answer(200)[0], receivers)
    h.store.upsert_events([make_doc(), make_doc(instance="web-2")])
    h.rounds(T0, receiver="a")
    engine = Engine(Config(data_dir=tmp_path), [], h.store, h.metrics)
    service = Service(config=Config(data_dir=tmp_path), engine=engine, store=h.store, metrics=h.metrics,
                      outbox=h.outbox)
    from vigil.http.app import create_app

    client = TestClient(create_app(service), base_url="http://localhost")
    assert client.get("/api/v1/notifications", params={"state": "sent"}).json()["total"] == 2
    got = client.get("/api/v1/notifications", params={"state": "pending", "receiver": "b", "limit": 1}).json()
    assert got["total"] == 2 and len(got["items"]) == 1 and got["items"][0]["next_attempt_at"].endswith("Z")
    assert client.get("/api/v1/notifications", params={"state": "lost"}).status_code == 422


# -- the loop ------------------------------------------------------------------------------


def test_run_delivers_what_the_engine_stores_without_waiting_for_a_poll(tmp_path: Path) -> None:
    handler, seen = answer(200)
    h = Harness(tmp_path, handler)
    h.sender.clock = h.outbox.clock = time.time
    h.sender.idle = 30.0  # so only the wake-up can explain a quick delivery

    async def go() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(h.sender.run(stop))
        await asyncio.sleep(0.2)  # let the worker settle into its idle wait
        began = time.monotonic()
        await asyncio.to_thread(h.store.upsert_events, [make_doc()])  # as Engine.tick does
        while not seen and time.monotonic() - began < 5:
            await asyncio.sleep(0.005)
        took = time.monotonic() - began
        stop.set()
        await asyncio.wait_for(task, 5)
        return took

    took = asyncio.run(go())
    assert seen and took < 1.0, f"delivered after {took:.2f} s"


# -- a hanging receiver --------------------------------------------------------------------

FAST = Detection(
    params={"level": {"warmup": 5}, "shift": {"warmup": 5}, "volatility": {"warmup": 5}}, calibration_min_samples=10
)


class Spiky:
    """Ten series of noise (120 samples of history, then one a tick) with a spike every 30
    samples, each larger than the last (the same spike again is no news), staggered: about
    13 messages a second at a 0.05 s interval."""

    def __init__(self, interval: float = 0.05) -> None:
        self.name, self.interval = "spiky", interval
        self.i = 0
        self.calls = 0
        self.rng = np.random.default_rng(0)

    async def fetch(self, now: float) -> list[SeriesBatch]:
        self.calls += 1
        k = 120 if self.i == 0 else 1
        idx = np.arange(self.i, self.i + k)
        self.i += k
        t = T0 + 15.0 * idx
        out = []
        for s in range(10):
            v = 50 + self.rng.normal(0, 1, k)
            spike = ((idx + 3 * s) % 30 == 29) & (idx >= 120)
            v[spike] = 1000.0 * (1 + idx[spike] / 30)
            out.append(SeriesBatch({"__name__": "x", "instance": f"s{s}"}, t, v))
        return out

    async def close(self) -> None:
        return None


def test_a_hanging_receiver_delays_neither_detection_nor_other_receivers(tmp_path: Path) -> None:
    with HookServer(mode="hang") as hanging, HookServer() as healthy:
        receivers = [
            Receiver(name="hanging", type="webhook", url=f"{hanging.url}/hook", timeout="3s"),  # type: ignore[arg-type]
            Receiver(name="healthy", type="webhook", url=f"{healthy.url}/hook"),  # type: ignore[arg-type]
        ]
        notify = Notify(receivers=receivers)
        store, metrics = Store(tmp_path), Metrics()
        source = Spiky()
        query = Query(source, FAST, Limits(), "spiky")
        engine = Engine(Config(data_dir=tmp_path, notify=notify), [query], store, metrics)
        outbox = Outbox(store, [Route.of(r) for r in receivers])
        sender = Sender(outbox, build_targets(notify), notify, metrics, "http://vigil", engine.open_event_ids)

        def sample(name: str, **labels: str) -> float:
            return metrics.registry.get_sample_value(name, labels) or 0.0

        warm: list[float] = []

        stopped_at: list[float] = []

        async def go() -> float:
            await engine.tick(query)  # the first tick compiles and learns the history: not measured
            warm.extend(sample(n, query="spiky", **kw) for n, kw in (
                ("vigil_tick_duration_seconds_count", {}), ("vigil_tick_duration_seconds_bucket", {"le": "0.25"})))
            stop = asyncio.Event()
            tasks = [asyncio.create_task(engine.run(stop)), asyncio.create_task(sender.run(stop))]
            await asyncio.sleep(3.0)  # a window of measurement, not a wait for something
            began = time.monotonic()
            stopped_at.append(time.time())
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)
            return time.monotonic() - began

        stopped_in = asyncio.run(go())

    ticks = sample("vigil_tick_duration_seconds_count", query="spiky") - warm[0]
    quick = sample("vigil_tick_duration_seconds_bucket", query="spiky", le="0.25") - warm[1]
    assert ticks >= 20, f"only {ticks:.0f} ticks in 3 s at a 0.05 s interval"
    assert quick == ticks, f"{ticks - quick:.0f} ticks took longer than 0.25 s"
    assert hanging.received, "the hanging receiver was being talked to"
    assert outbox.pending("hanging") > 0
    keys = healthy.keys()
    assert len(keys) >= 10 and len(set(keys)) == len(keys), "the healthy receiver got every message once"
    waiting, _ = outbox.page("pending", "healthy", limit=1000)
    late = [m for m in waiting if m["created_at"] < stopped_at[0] - 1.0]
    assert not late, f"{len(late)} messages waited over 1 s for the healthy receiver"
    assert stopped_in < 5, f"stopping took {stopped_in:.1f} s"
