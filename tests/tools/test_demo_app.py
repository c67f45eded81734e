"""The demo app: its metrics, its injections and its determinism, over real HTTP.

Each test runs the app under a real uvicorn server on a loopback socket in a thread and
drives the app's clock instead of sleeping.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from vigil.errors import ConfigError
from vigil.tools.demo_app import create_app
from vigil.tools.demo_simulation import Simulation

DAY = 600.0  # a short "day" so a test can cross it
T0 = 10_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@contextmanager
def running(app: FastAPI) -> Iterator[httpx.Client]:
    """Serve ``app`` with uvicorn on a free loopback port; yield a client for it."""
    # proto=IPPROTO_TCP matters: asyncio turns TCP_NODELAY on for accepted connections only
    # when the listening socket says TCP; with proto 0 (socket.socket() or create_server)
    # every response waits about 40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
            wait_for(lambda: server.started, "uvicorn to start")
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


@contextmanager
def demo(seed: int = 0, clock: Clock | None = None) -> Iterator[tuple[httpx.Client, Clock]]:
    clock = clock or Clock()
    with running(create_app(seed=seed, day_seconds=DAY, tick=0.25, clock=clock)) as client:
        yield client, clock


@pytest.fixture(scope="module")
def shared() -> Iterator[httpx.Client]:
    """One demo app for the tests that leave no state behind (bad bodies, the index)."""
    with demo() as (client, _):
        yield client


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> tuple[dict[str, str], Samples]:
    """Families (name -> type) and samples ((name, labels) -> value) from /metrics."""
    r = client.get("/metrics")
    assert r.status_code == 200
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str, keep: Callable[[dict[str, str]], bool] = bool) -> float:
    return sum(v for (n, lab), v in samples.items() if n == name and (not lab or keep(dict(lab))))


def cpu(client: httpx.Client) -> float:
    """demo_cpu_utilization now (read from the text: cheaper than parsing every family)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("demo_cpu_utilization "):
            return float(line.split()[1])
    raise AssertionError("no demo_cpu_utilization sample in /metrics")


def inject(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post("/inject", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def mean_duration(before: Samples, after: Samples) -> float:
    count = total(after, "demo_http_request_duration_seconds_count") - total(
        before, "demo_http_request_duration_seconds_count"
    )
    seconds = total(after, "demo_http_request_duration_seconds_sum") - total(
        before, "demo_http_request_duration_seconds_sum"
    )
    return seconds / count


def calm_cpu_range(client: httpx.Client, clock: Clock) -> tuple[float, float]:
    """Lowest and highest CPU over one whole day, sampled every 10 s (moves the clock)."""
    values = []
    for _ in range(int(DAY / 10)):
        clock.t += 10.0
        values.append(cpu(client))
    return min(values), max(values)


def test_metrics_expose_the_five_families_with_their_types() -> None:
    with demo() as (client, clock):
        clock.t += 10.0
        r = client.get("/metrics")
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        types, samples = scrape(client)
    assert types == {
        "demo_http_requests": "counter",
        "demo_http_request_duration_seconds": "histogram",
        "demo_cpu_utilization": "gauge",
        "demo_queue_depth": "gauge",
        "demo_inflight_requests": "gauge",
    }
    label_names = {frozenset(dict(lab)) for (n, lab) in samples if n == "demo_http_requests_total"}
    assert label_names == {frozenset({"method", "route", "status"})}
    routes = {dict(lab)["route"] for (n, lab) in samples if n == "demo_http_requests_total"}
    assert len(routes) == 4
    buckets = [
        dict(lab) for (n, lab) in samples if n == "demo_http_request_duration_seconds_bucket"
    ]
    assert {b["route"] for b in buckets} == routes
    assert all(b.keys() == {"route", "le"} for b in buckets)
    assert total(samples, "demo_http_requests_total") > 0
    assert 0.0 <= value(samples, "demo_cpu_utilization") <= 100.0
    assert value(samples, "demo_queue_depth") >= 0 and value(samples, "demo_inflight_requests") >= 0


def test_traffic_follows_the_clock_at_the_configured_rate() -> None:
    with demo() as (client, clock):
        _, first = scrape(client)
        _, again = scrape(client)
        assert again == first  # the clock did not move: nothing happened
        clock.t += 20.0
        _, later = scrape(client)
    served = total(later, "demo_http_requests_total") - total(first, "demo_http_requests_total")
    rate = Simulation(day_seconds=DAY).rate(T0 + 10.0)
    assert served == pytest.approx(rate * 20.0, rel=0.2)
    five_xx = total(later, "demo_http_requests_total", lambda lab: lab["status"].startswith("5"))
    assert five_xx / total(later, "demo_http_requests_total") < 0.03


def test_a_clock_jump_is_caught_up_for_at_most_a_minute() -> None:
    with demo() as (client, clock):
        _, first = scrape(client)
        clock.t += 3600.0
        _, later = scrape(client)
    served = total(later, "demo_http_requests_total") - total(first, "demo_http_requests_total")
    assert served == pytest.approx(Simulation(day_seconds=DAY).rate(clock.t) * 60.0, rel=0.3)


def test_spike_raises_cpu_far_above_its_calm_range_until_it_ends() -> None:
    with demo() as (client, clock):
        low, high = calm_cpu_range(client, clock)
        assert 5.0 < low < high < 60.0
        started = inject(client, kind="spike", duration=30)
        assert started["magnitude"] == 50.0 and started["ends_at"] == clock.t + 30.0
        during = []
        for _ in range(29):
            clock.t += 1.0
            during.append(cpu(client))
        assert min(during) > high + 20.0
        clock.t += 1.0  # the 30 s are over
        after = []
        for _ in range(20):
            after.append(cpu(client))
            clock.t += 1.5
        assert low - 1.0 <= min(after) and max(after) <= high + 1.0
        assert client.get("/inject").json()["active"] == []


def test_shift_without_duration_is_permanent() -> None:
    clock = Clock()
    with demo(seed=7, clock=clock) as (shifted, _), demo(seed=7, clock=clock) as (calm, _):
        inject(shifted, kind="shift", magnitude=25, duration=None)
        for step in (1.0, 60.0, DAY, 10 * DAY + 123.0):
            clock.t = T0 + step
            assert cpu(shifted) - cpu(calm) == pytest.approx(25.0)
        active = shifted.get("/inject").json()["active"]
    assert [(a["kind"], a["ends_at"], a["remaining"]) for a in active] == [("shift", None, None)]


def test_latency_raises_the_histograms_mean_and_the_inflight_count() -> None:
    with demo() as (client, clock):
        _, start = scrape(client)
        clock.t += 30.0
        _, calm = scrape(client)
        inflight_calm = value(calm, "demo_inflight_requests")
        inject(client, kind="latency", magnitude=5, duration=60)
        clock.t += 30.0
        _, slow = scrape(client)
        inflight_slow = value(slow, "demo_inflight_requests")
    ratio = mean_duration(calm, slow) / mean_duration(start, calm)
    assert 4.0 < ratio < 6.0
    assert inflight_slow > 3 * inflight_calm


def test_errors_raise_the_5xx_share() -> None:
    with demo() as (client, clock):
        clock.t += 5.0
        _, before = scrape(client)
        inject(client, kind="errors", magnitude=0.4, duration=60)
        clock.t += 30.0
        _, after = scrape(client)

    def five_xx(lab: dict[str, str]) -> bool:
        return lab["status"] in ("500", "503")

    errors = total(after, "demo_http_requests_total", five_xx) - total(
        before, "demo_http_requests_total", five_xx
    )
    served = total(after, "demo_http_requests_total") - total(before, "demo_http_requests_total")
    assert errors / served == pytest.approx(0.4, abs=0.05)


def test_delete_ends_every_injection_and_get_lists_the_active_ones() -> None:
    with demo() as (client, clock):
        calm = cpu(client)
        inject(client, kind="spike", magnitude=40, duration=10)
        inject(client, kind="shift", magnitude=-10, duration=None)
        inject(client, kind="errors")
        listed = client.get("/inject").json()
        assert [a["kind"] for a in listed["active"]] == ["spike", "shift", "errors"]
        assert listed["active"][0]["remaining"] == 10.0 and listed["active"][2]["duration"] == 60.0
        assert cpu(client) == pytest.approx(min(100.0, calm + 30.0))
        clock.t += 10.0
        assert [a["kind"] for a in client.get("/inject").json()["active"]] == ["shift", "errors"]
        assert client.delete("/inject").json() == {"cleared": 2}
        assert client.get("/inject").json()["active"] == []
        clock.t -= 10.0  # same tick as the first reading: same noise
        assert cpu(client) == pytest.approx(calm)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            {"kind": "boom"},
            "kind: Input should be 'spike', 'shift', 'latency' or 'errors' (got 'boom')",
            id="unknown-kind",
        ),
        pytest.param({"magnitude": 3}, "kind: Field required", id="no-kind"),
        pytest.param(
            {"kind": "errors", "magnitude": 1.5},
            "magnitude 1.5 is out of range for "
            "errors: give the share of 5xx answers, 0 < magnitude <= 1",
            id="errors>1",
        ),
        pytest.param(
            {"kind": "latency", "magnitude": -2},
            "magnitude -2.0 is out of range for latency",
            id="negative-latency",
        ),
        pytest.param(
            {"kind": "spike", "magnitude": 0},
            "magnitude 0.0 is out of range for spike",
            id="zero-spike",
        ),
        pytest.param({"kind": "shift", "magnitude": 0}, "not 0", id="zero-shift"),
        pytest.param(
            {"kind": "spike", "magnitude": "high"},
            "magnitude: Input should be a valid number",
            id="text-magnitude",
        ),
        pytest.param(
            {"kind": "spike", "duration": None},
            "duration null (permanent) is allowed for shift only",
            id="permanent-spike",
        ),
        pytest.param(
            {"kind": "shift", "duration": -5},
            "duration -5.0 is not a positive number of seconds; use null for a permanent shift",
            id="negative-duration",
        ),
        pytest.param(
            {"kind": "spike", "colour": "red"},
            "colour: Extra inputs are not permitted",
            id="unknown-key",
        ),
    ],
)
def test_bad_injection_body_is_422_with_the_reason(
    shared: httpx.Client, body: dict[str, Any], reason: str
) -> None:
    r = shared.post("/inject", json=body)
    assert shared.get("/inject").json()["active"] == []
    assert r.status_code == 422
    assert reason in r.json()["error"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b'{"kind": "spike",', "the body is not valid JSON", id="not-json"),
        pytest.param(
            b'{"kind": "spike", "magnitude": NaN}', "magnitude nan is out of range", id="nan"
        ),
        pytest.param(b"", "a JSON body is required", id="empty"),
    ],
)
def test_unreadable_injection_body_is_422_with_the_reason(
    shared: httpx.Client, content: bytes, reason: str
) -> None:
    r = shared.post("/inject", content=content, headers={"content-type": "application/json"})
    assert shared.get("/inject").json()["active"] == []
    assert r.status_code == 422
    assert reason in r.json()["error"]


def test_same_seed_and_clock_give_the_same_metrics() -> None:
    clock = Clock()
    with (
        demo(seed=42, clock=clock) as (a, _),
        demo(seed=42, clock=clock) as (b, _),
        demo(seed=43, clock=clock) as (other, _),
    ):
        texts: list[tuple[str, str, str]] = []
        for step in range(12):
            clock.t += 2.5
            if step == 4:
                for client in (a, b, other):
                    inject(client, kind="latency", magnitude=3, duration=10)
                    inject(client, kind="spike", duration=5)
            texts.append(
                (a.get("/metrics").text, b.get("/metrics").text, other.get("/metrics").text)
            )
    assert all(x == y for x, y, _ in texts)
    assert all(x != z for x, _, z in texts)


def test_background_task_simulates_traffic_on_the_real_clock() -> None:
    app = create_app(seed=0, day_seconds=DAY, tick=0.02)
    sim: Simulation = app.state.simulation
    with running(app):
        start = sim.simulated_until
        # no request is made: only the background task can move it
        wait_for(lambda: sim.simulated_until >= start + 0.1, "the traffic task to run")


def test_root_says_what_the_app_is_and_healthz_is_ok(shared: httpx.Client) -> None:
    root = shared.get("/").json()
    health = shared.get("/healthz")
    assert root["app"] == "vigil demo app"
    assert {"GET /metrics", "POST /inject", "GET /inject", "DELETE /inject"} <= root[
        "endpoints"
    ].keys()
    assert "demo_cpu_utilization" in root["metrics"]
    assert health.status_code == 200 and health.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        pytest.param({"seed": -1}, "seed is -1", id="negative-seed"),
        pytest.param({"tick": 0.0}, "tick is 0.0", id="zero-tick"),
        pytest.param({"day_seconds": math.nan}, "day_seconds is nan", id="nan-day"),
    ],
)
def test_create_app_names_a_bad_parameter(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        create_app(**kwargs)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_until_a_signal_then_exits_cleanly(sig: signal.Signals) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = f"from vigil.tools.demo_app import serve; serve(port={port}, seed=1, day_seconds=60, tick=0.1)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:

        def up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"serve exited early: {proc.communicate()}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, "serve() to answer /healthz", timeout=30.0)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            _, samples = scrape(client)
        assert 0.0 <= value(samples, "demo_cpu_utilization") <= 100.0
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
