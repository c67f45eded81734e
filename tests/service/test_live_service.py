"""`vigil run` against the real Prometheus scraping `vigil demo-app`, end to end.

One Prometheus scrapes the demo app every second; Vigil reads `demo_cpu_utilization` from
it at a 1 s step. The tests run in order on that one stack: a calm stretch raises nothing,
an injected spike becomes an event and `vigil_anomaly 1`. On stacks of their own, whose
series has seen no incident yet (so that no earlier incident decides whether the next one
is news): Prometheus goes away for 20 s and comes back, and Vigil killed with SIGKILL in
the middle of an anomaly resumes it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.processes import DemoApp, VigilProcess
from support.servers import PrometheusServer, wait_until

STEP = 1.0  # Vigil's poll interval and query step, seconds

CONFIG: dict[str, Any] = {
    "data_dir": "data",
    "snapshot_every": "1s",
    "host": {"enabled": False},
    "detection": {
        # shorter warm-up than the defaults, so the test does not wait minutes
        "params": {"level": {"warmup": 5}, "shift": {"warmup": 5}, "volatility": {"warmup": 5}},
        "calibration_min_samples": 10,
    },
}


def prometheus_block(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "lookback": "10m",
        "delay": "0s",
        "timeout": "2s",
        "queries": [{"name": "demo_cpu", "query": "demo_cpu_utilization", "step": "1s"}],
    }


@contextlib.contextmanager
def _stack(root: Path) -> Iterator[dict[str, Any]]:
    with DemoApp(root / "demo", seed=3, day_seconds=3600) as demo:
        prom = PrometheusServer(root / "prom", targets=[f"127.0.0.1:{demo.port}"])
        with prom:
            wait_until(lambda: _has_data(prom.url), 30, 0.2, "Prometheus to have demo_cpu_utilization")
            vigil = VigilProcess(root / "vigil", {**CONFIG, "prometheus": prometheus_block(prom.url)})
            with vigil:
                vigil.start()
                yield {"demo": demo, "prom": prom, "vigil": vigil}
                if vigil.alive():
                    print(vigil.log()[-3000:])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with _stack(tmp_path_factory.mktemp("live")) as s:
        yield s


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A stack of its own, whose series has seen no incident yet.

    The calibration keeps the peaks of earlier incidents: once two were as large, an
    incident is a pattern of the series and does not alert.
    """
    with _stack(tmp_path) as s:
        vigil = s["vigil"]
        wait_until(lambda: (x := _series(vigil)) is not None and x["status"] == "ok", 90, 0.5, "the series warmed up")
        time.sleep(10)  # some calm history past the warm-up
        yield s


def _has_data(url: str) -> bool:
    try:
        r = httpx.get(f"{url}/api/v1/query", params={"query": "demo_cpu_utilization"}, timeout=2)
        return bool(r.json()["data"]["result"])
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def _series(vigil: VigilProcess) -> dict[str, Any] | None:
    items = vigil.get("/api/v1/series", query="demo_cpu").json()["items"]
    return items[0] if items else None


def _events(vigil: VigilProcess, **params: Any) -> list[dict[str, Any]]:
    return list(vigil.get("/api/v1/anomalies", query="demo_cpu", **params).json()["items"])


def _anomaly_gauge(vigil: VigilProcess) -> float | None:
    text = vigil.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "vigil_anomaly":
            for s in family.samples:
                if s.labels.get("query") == "demo_cpu":
                    return float(s.value)
    return None


def _spike_in_prometheus(prom: PrometheusServer, above: float) -> bool:
    r = httpx.get(f"{prom.url}/api/v1/query", params={"query": f"demo_cpu_utilization > {above}"}, timeout=2)
    return bool(r.json()["data"]["result"])


def test_calm_stretch_raises_nothing(stack: dict[str, Any]) -> None:
    vigil = stack["vigil"]
    wait_until(lambda: vigil.get("/readyz").status_code == 200, 30, 0.2, "Vigil ready")
    wait_until(lambda: (s := _series(vigil)) is not None and s["status"] == "ok", 90, 0.5, "the series warmed up")
    # 40 more seconds of calm data, watched: also history enough that the spikes of the
    # later tests stay rare
    calm_until = time.time() + 40
    while time.time() < calm_until:
        assert _events(vigil) == [], "an event opened on the calm stretch"
        time.sleep(0.5)
    health = vigil.get("/check_health")
    assert health.status_code == 200 and health.json()["anomalous"] == 0
    assert _anomaly_gauge(vigil) == 0


def test_injected_spike_becomes_an_event_within_three_polls(stack: dict[str, Any]) -> None:
    vigil, demo, prom = stack["vigil"], stack["demo"], stack["prom"]
    before = _series(vigil)
    assert before is not None and before["upper"] is not None
    stack["demo"].inject("spike", magnitude=60, duration=6)
    wait_until(lambda: _spike_in_prometheus(prom, before["upper"] + 20), 15, 0.05, "the spike in Prometheus")
    visible = time.monotonic()
    wait_until(lambda: _events(vigil, state="firing"), 3 * STEP + 2.0, 0.05, "an event within 3 poll intervals")
    detected = time.monotonic() - visible
    event = _events(vigil)[0]
    assert event["state"] == "firing" and event["query"] == "demo_cpu"
    assert event["observed"] > event["upper"]
    assert event["series"]["__name__"] == "demo_cpu_utilization"
    assert _anomaly_gauge(vigil) == 1
    health = vigil.get("/check_health")
    assert health.status_code == 503 and health.json()["items"][0]["status"] == "anomalous"
    print(f"detected {detected:.2f} s after the spike was queryable in Prometheus")
    wait_until(lambda: _events(vigil)[0]["state"] == "resolved", 60, 0.5, "the event to resolve after the spike")
    assert len(_events(vigil)) == 1, "one incident, one event"
    del demo


def test_prometheus_down_for_twenty_seconds_then_back(fresh_stack: dict[str, Any]) -> None:
    vigil, prom, demo = fresh_stack["vigil"], fresh_stack["prom"], fresh_stack["demo"]
    n_events = len(_events(vigil))
    prom.stop()
    down_until = time.monotonic() + 20
    wait_until(lambda: vigil.get("/readyz").status_code == 503, 10, 0.2, "/readyz to turn not-ready")
    reasons = vigil.get("/readyz").json()["reasons"]
    assert "demo_cpu" in reasons and "source failing" in reasons["demo_cpu"]
    while time.monotonic() < down_until:  # Vigil keeps serving the whole time
        assert vigil.get("/healthz").status_code == 200
        assert vigil.get("/api/v1/series").status_code == 200
        time.sleep(1)
    errors = [line for line in vigil.get("/metrics").text.splitlines()
              if line.startswith("vigil_source_errors_total{") and 'query="demo_cpu"' in line]
    assert errors and float(errors[0].split()[-1]) >= 2

    prom.start(same_port=True)
    wait_until(lambda: vigil.get("/readyz").status_code == 200, 90, 0.5, "/readyz after Prometheus is back")
    wait_until(lambda: _has_data(prom.url), 30, 0.2, "fresh data in Prometheus")
    demo.inject("spike", magnitude=80, duration=20)
    wait_until(lambda: len(_events(vigil)) > n_events, 30, 0.2, "detection after Prometheus came back")
    assert vigil.alive()


def test_sigkill_during_an_anomaly_resumes_the_same_event(fresh_stack: dict[str, Any]) -> None:
    vigil, demo = fresh_stack["vigil"], fresh_stack["demo"]
    wait_until(lambda: all(e["state"] == "resolved" for e in _events(vigil)), 60, 0.5, "earlier events resolved")
    ids_before = {e["id"] for e in _events(vigil)}
    demo.inject("spike", magnitude=60, duration=20)
    new = wait_until(lambda: [e for e in _events(vigil) if e["id"] not in ids_before], 15, 0.1, "the new event")
    assert len(new) == 1 and new[0]["state"] == "firing", f"one incident, one open event: {new}"
    event = new[0]
    series_before = _series(vigil)
    time.sleep(2.5)  # let a snapshot (every 1 s) include the open event
    vigil.kill()
    vigil.start()
    after = vigil.get(f"/api/v1/series/{series_before['id']}")
    assert after.status_code == 200, "the series was not restored"
    restored = after.json()["series"]
    assert restored["status"] != "warming_up", "bands were re-learned instead of restored"
    assert restored["expected"] == pytest.approx(series_before["expected"], rel=0.5)
    wait_until(lambda: vigil.get("/readyz").status_code == 200, 30, 0.2, "ready after restart")
    time.sleep(3)  # a few polls after the restart, spike still going on
    events = _events(vigil)
    new_ids = {e["id"] for e in events} - ids_before
    assert new_ids == {event["id"]}, f"expected the same event to go on, got {events}"
    assert vigil.stop() == 0, "it did not stop by itself on SIGTERM"
    assert "Traceback" not in vigil.log()


def test_sigterm_saves_state(stack: dict[str, Any], tmp_path: Path) -> None:
    vigil = stack["vigil"]
    if not vigil.alive():
        vigil.start()
    assert vigil.stop() == 0, "it did not stop by itself on SIGTERM"
    db = vigil.directory / "data" / "vigil.db"
    assert db.exists() and db.stat().st_size > 0
