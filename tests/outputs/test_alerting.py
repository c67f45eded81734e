"""Alerting end to end: `vigil run` -> outbox -> Alertmanager and webhooks, all real.

One Prometheus serves the module. It is backfilled with ten minutes of calm history (so a
new Vigil is warm at its first fetch) and scrapes a target whose values a driver thread
changes four times a second: noise around 50 for every series ``vt_value{t=...}``, and a
spike to 500 when a test asks for one. Each test watches its own series (two, where it needs
two incidents), so the tests do not see each other's spikes. Receivers are real HTTP servers on loopback (`HookServer`),
and Alertmanager is the real binary. Nothing is mocked and nothing is skipped.

What is checked: an anomaly reaches a webhook through Alertmanager as firing, then as
resolved; a receiver down for 30 s gets every event once it is back, and none twice
(counted by idempotency key), also when Vigil is killed in the middle; receivers that
answer 4xx or 5xx, hang, or cannot be reached leave the engine's tick pace as it is with a
healthy receiver; the example Alertmanager config passes `amtool check-config`; the
example agent receiver acts once per key.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect
from prometheus_client.parser import text_string_to_metric_families

from support.processes import VigilProcess
from support.receivers import AlertmanagerServer, HookServer, amtool_binary
from support.servers import MetricsTarget, PrometheusServer, free_port, openmetrics, wait_until

ROOT = Path(__file__).resolve().parents[2]
# the tests that need two incidents put them on two series of their query, each its series' first
# (once two earlier incidents were as large, an incident is a pattern; docs/detectors.md)
SERIES = ("am", "down", "down2", "restart", "restart2", "mode", "warm")
# past incidents in the backfilled history of series "warm": (seconds before the start, level),
# 20 s each, smaller than the live spike (500), which stays an incident and not a pattern
PAST_SPIKES = ((450, 150.0), (250, 200.0))
FAST = {
    "params": {"level": {"warmup": 5}, "shift": {"warmup": 5}, "volatility": {"warmup": 5}},
    "calibration_min_samples": 10,
    "resolve_after": 3,
    "direction": "above",
}
QUICK_RETRY = {"backoff": "200ms", "max_backoff": "2s", "max_attempts": 1000, "give_up_after": "10m"}


class Driver:
    """Writes the target's exposition four times a second: noise, or a spike while asked."""

    def __init__(self, target: MetricsTarget) -> None:
        self.target = target
        self.spikes: dict[str, float] = {}  # series -> spike until (monotonic)
        self.rng = random.Random(7)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def value(self, series: str) -> float:
        if self.spikes.get(series, 0.0) > time.monotonic():
            return 500.0
        return 50.0 + self.rng.gauss(0.0, 1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.target.set("".join(f'vt_value{{t="{s}"}} {self.value(s)}\n' for s in SERIES))
            self._stop.wait(0.25)

    def spike(self, series: str, seconds: float = 3.0) -> None:
        self.spikes[series] = time.monotonic() + seconds

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with MetricsTarget() as target, Driver(target) as driver:
        prom = PrometheusServer(tmp_path_factory.mktemp("prom"), targets=[target.address])
        now = int(time.time())
        rng = np.random.default_rng(11)
        def past(s: str, t: int) -> float:
            levels = [level for ago, level in PAST_SPIKES if s == "warm" and 0 <= now - t - ago < 20]
            return levels[0] if levels else 50.0 + float(rng.normal())

        history = [
            ({"job": "targets", "instance": target.address, "t": s}, t, past(s, t))
            for s in SERIES for t in range(now - 600, now - 5)
        ]
        prom.backfill(openmetrics({"vt_value": ("gauge", history)}))
        with prom:
            # the backfill answers at once; live scrapes begin about 5.5 s after the start
            wait_until(lambda: prom.query('up{job="targets"} == 1'), 30, 0.2, "the first scrape")
            yield {"prom": prom, "driver": driver, "target": target}


def vigil_config(
    prom_url: str, series: str, receivers: list[dict[str, Any]], query: str | None = None, **notify: Any
) -> dict[str, Any]:
    return {
        "data_dir": "data",
        "snapshot_every": "1m",
        "host": {"enabled": False},
        "detection": FAST,
        "prometheus": {
            "url": prom_url, "lookback": "10m", "delay": "0s", "timeout": "2s",
            "queries": [{"name": series, "query": query or f'vt_value{{t=~"{series}.*"}}', "step": "1s"}],
        },
        "notify": {"receivers": receivers, **notify},
    }


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def events(vigil: VigilProcess) -> list[dict[str, Any]]:
    return list(vigil.get("/api/v1/anomalies", limit=1000).json()["items"])


def spike_events(vigil: VigilProcess) -> list[dict[str, Any]]:
    return [e for e in events(vigil) if (e["observed"] or 0) > 400]


def expected_keys(vigil: VigilProcess) -> set[str]:
    """Every key Vigil's events should have been delivered under."""
    out = set()
    for e in events(vigil):
        out.add(f"{e['id']}:firing")
        if e["state"] == "resolved":
            out.add(f"{e['id']}:resolved")
    return out


def notifications(vigil: VigilProcess, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = vigil.get("/api/v1/notifications", limit=1000, **params).json()
    return body


def metric_values(vigil: VigilProcess, name: str, **labels: str) -> list[float]:
    out = []
    for family in text_string_to_metric_families(vigil.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append(float(s.value))
    return out


# -- the examples --------------------------------------------------------------------------


def test_example_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "alertmanager.yml").read_text()
    assert "url_file: /etc/alertmanager/teams-webhook-url" in text  # the Teams URL is read from a file
    assert "logic.azure.com" not in text and "sig=" not in text.split("receivers:", 1)[1]
    # Debian 12's Alertmanager 0.25 predates webhook `url_file` (0.26): the only change for
    # its amtool is a placeholder URL in place of each url_file.
    checked = tmp_path / "alertmanager.yml"
    checked.write_text(re.sub(r"url_file: \S+", 'url: "https://example.invalid/teams"', text))
    result = subprocess.run(
        [amtool_binary(), "check-config", str(checked)], capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(checked.read_text().replace("group_wait:", "group_wiat:", 1))
    bad = subprocess.run([amtool_binary(), "check-config", str(broken)], capture_output=True, text=True, timeout=30,
                         check=False)
    assert bad.returncode != 0


def test_example_agent_receiver_acts_once_per_key(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        agent = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "agent_receiver.py"), "--listen", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.post(f"{url}/events", content=b"[]").status_code == 400, 10, 0.05, "agent up")
        event = {"id": "e1", "state": "firing", "summary": "x is 97", "idempotency_key": "e1:firing",
                 "series_url": "http://vigil/api/v1/series/1"}
        for _ in range(2):
            assert httpx.post(f"{url}/events", json=event, headers={"Idempotency-Key": "e1:firing"}).status_code == 200
        am = {"version": "4", "status": "resolved", "alerts": [
            {"status": "resolved", "annotations": {"event_id": "e1", "summary": "x was 97"}, "fingerprint": "f"}]}
        assert httpx.post(f"{url}/alertmanager", json=am).status_code == 200
        assert httpx.post(f"{url}/alertmanager", json=am).status_code == 200
        assert httpx.post(f"{url}/events", content=b"not json").status_code == 400
        wait_until(lambda: log.read_text().count("dup ") == 2, 5, 0.05, "both repeats seen")
    finally:
        agent.terminate()
        agent.wait(5)
    lines = log.read_text().splitlines()
    assert sum(line.startswith("ACT firing   e1:firing") for line in lines) == 1
    assert sum(line.startswith("ACT resolved e1:resolved") for line in lines) == 1


# -- what the alerts say, and when ---------------------------------------------------------


def test_every_channel_names_the_mode_of_a_sum_by_mode_series_with_3_significant_digits(
    stack: dict[str, Any], tmp_path: Path, page: Page
) -> None:
    query = 'sum by (mode) (label_replace(vt_value{t="mode"}, "mode", "idle", "", ""))'
    with HookServer() as hook, AlertmanagerServer(tmp_path / "am", f"{hook.url}/am") as am:
        receivers = [
            {"name": "am", "type": "alertmanager", "url": am.url, "repost_every": "2s"},
            *({"name": f, "type": "webhook", "format": f, "url": f"{hook.url}/{f}"} for f in ("json", "teams", "slack")),
        ]
        config = vigil_config(stack["prom"].url, "cpu", receivers, query=query)
        with VigilProcess(tmp_path / "vigil", config) as vigil:
            vigil.start()
            wait_until(lambda: vigil.get("/readyz").status_code == 200, 30, 0.1, "Vigil ready")
            stack["driver"].spike("mode", 3.0)
            wait_until(lambda: all(any(b for b in hook.bodies(f"/{f}")) for f in ("am", "json", "teams", "slack")),
                       30, 0.1, "a message on every channel")
            (event,) = spike_events(vigil)
            page.goto(f"{vigil.url}/#/events")  # the page: the events view, in headless Chromium
            row = page.locator(f'table.events tbody tr[data-id="{event["id"]}"]')
            expect(row.locator("th a")).to_have_text('cpu{mode="idle"}')
            expect(row).to_contain_text(event["summary"])
    named = re.compile(r'^cpu\{mode="idle"\} (is|was) (\d\.\d\d|\d\d\.\d|\d{3}), expected (\d\.\d\d|\d\d\.\d|\d{3})')
    assert named.match(event["summary"]), event["summary"]
    assert event["name"] == 'cpu{mode="idle"}'
    json_body = hook.bodies("/json")[0]
    assert json_body["summary"] == event["summary"] and json_body["name"] == event["name"]
    card = hook.bodies("/teams")[0]["attachments"][0]["content"]
    assert card["body"][0]["text"] == 'Anomaly: cpu{mode="idle"}'
    assert named.match(card["body"][1]["text"])
    slack = hook.bodies("/slack")[0]
    assert slack["blocks"][0]["text"]["text"] == 'Anomaly: cpu{mode="idle"}'
    assert named.match(slack["blocks"][1]["text"]["text"].replace("&quot;", '"'))
    alert = hook.bodies("/am")[0]["alerts"][0]
    assert alert["labels"]["mode"] == "idle" and named.match(alert["annotations"]["summary"])


def test_a_warm_start_over_past_incidents_sends_nothing_but_an_incident_at_the_live_edge_once(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    with HookServer() as hook:
        receiver = {"name": "agent", "type": "webhook", "url": f"{hook.url}/events"}
        with VigilProcess(tmp_path / "vigil", vigil_config(stack["prom"].url, "warm", [receiver])) as vigil:
            stack["driver"].spike("warm", 12.0)  # going on when Vigil starts
            began = time.time()
            vigil.start()
            wait_until(lambda: vigil.get("/readyz").status_code == 200, 30, 0.1, "Vigil ready")
            live = wait_until(lambda: [e for e in spike_events(vigil) if parse_time(e["started_at"]) >= began - 5],
                              30, 0.1, "the incident at the live edge")
            wait_until(lambda: not notifications(vigil)["receivers"]["agent"]["pending"], 30, 0.1, "messages sent")
            past = [e for e in events(vigil) if (e["observed"] or 0) > 100 and parse_time(e["started_at"]) < began - 60]
            sent = [b for b in hook.bodies("/events")]
            assert len(past) >= len(PAST_SPIKES), "the past incidents are rebuilt, stored and shown"
            assert all(e["state"] == "resolved" for e in past)
            assert [b["id"] for b in sent if b["state"] == "firing"] == [live[0]["id"]], \
                "only the incident open at the live edge notifies, once"
            assert not {b["id"] for b in sent} & {e["id"] for e in past}


# -- (a) through Alertmanager --------------------------------------------------------------


def test_an_anomaly_reaches_a_webhook_through_alertmanager_firing_then_resolved(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    with HookServer() as hook, AlertmanagerServer(tmp_path / "am", f"{hook.url}/am") as am:
        receiver = {"name": "am", "type": "alertmanager", "url": am.url, "repost_every": "2s",
                    "labels": {"team": "ops"}}
        with VigilProcess(tmp_path / "vigil", vigil_config(stack["prom"].url, "am", [receiver])) as vigil:
            vigil.start()
            wait_until(lambda: vigil.get("/readyz").status_code == 200, 30, 0.1, "Vigil ready")
            # An event open at the live edge at start (a false alarm of the calm history) is
            # posted now. Alertmanager knows an alert by its labels: a spike posted within the
            # same group interval (1 s) as an older firing+resolved pair on this series would
            # count as already notified. Let that burst drain and be flushed first.
            wait_until(lambda: not notifications(vigil)["receivers"].get("am", {}).get("pending"),
                       30, 0.1, "the start-up notifications to drain")
            time.sleep(2.5)  # > group_interval (1 s): Alertmanager flushes that burst
            began = time.monotonic()
            stack["driver"].spike("am", 3.0)

            def notified(status: str) -> list[dict[str, Any]]:
                return [a for body in hook.bodies("/am") for a in body["alerts"]
                        if a["status"] == status and a["labels"].get("query") == "am"
                        and float(a["annotations"]["description"].split("Observed: ")[1].split()[0]) > 400]

            try:
                firing = wait_until(lambda: notified("firing"), 20, 0.1, "a firing notification from Alertmanager")
            except TimeoutError:
                print(f"events: {events(vigil)}\nmessages: {notifications(vigil)}\nin Alertmanager: {am.alerts()}"
                      f"\n--- vigil log ---\n{vigil.log()[-3000:]}")
                raise
            fired_after = time.monotonic() - began
            (event,) = spike_events(vigil)
            alert = firing[0]
            assert alert["labels"]["alertname"] == "VigilAnomaly"
            assert alert["labels"]["team"] == "ops" and alert["labels"]["severity"] == "warning"
            assert alert["labels"]["metric"] == "vt_value" and alert["labels"]["t"] == "am"
            assert alert["annotations"]["idempotency_key"] == f"{event['id']}:firing"
            assert alert["annotations"]["summary"].startswith('vt_value{t="am"} on 127.0.0.1:')
            assert alert["generatorURL"].startswith(f"{vigil.url}/api/v1/series/")
            assert vigil.get(alert["generatorURL"].removeprefix(vigil.url)).status_code == 200
            held = [a for a in am.alerts() if a["labels"].get("query") == "am" and a["status"]["state"] == "active"]
            if held and spike_events(vigil)[0]["state"] == "firing":  # still open: held a few re-posts ahead
                assert parse_time(held[0]["endsAt"]) > time.time()

            resolved = wait_until(lambda: notified("resolved"), 30, 0.1, "a resolved notification")
            assert resolved[0]["labels"] == alert["labels"]
            (event,) = spike_events(vigil)
            assert parse_time(resolved[0]["endsAt"]) == pytest.approx(parse_time(event["ended_at"]), abs=0.01), \
                "resolved: endsAt is the event's end"
            assert len(notified("firing")) == 1, "one firing notification: re-posts do not notify again"
            assert metric_values(vigil, "vigil_alertmanager_reposts_total", receiver="am", result="ok")[0] >= 1
            states = {(i["event_state"], i["status"]) for i in notifications(vigil)["items"]
                      if i["event_id"] == event["id"]}
            assert states == {("firing", "sent"), ("resolved", "sent")}
            print(f"firing reached the webhook through Alertmanager {fired_after:.1f} s after the spike began")


# -- (b) a receiver that is down -----------------------------------------------------------


def wait_delivered(vigil: VigilProcess, hook: HookServer, timeout: float) -> set[str]:
    """Poll until every event is resolved and every key has reached `hook`; the keys."""

    def done() -> set[str] | None:
        if any(e["state"] == "firing" for e in events(vigil)):
            return None
        want = expected_keys(vigil)
        return want if want and want <= set(hook.keys()) and not notifications(vigil, state="pending")["total"] \
            else None

    return wait_until(done, timeout, 0.2, "every event delivered")


def test_a_receiver_down_for_30_s_gets_every_event_once_back(stack: dict[str, Any], tmp_path: Path) -> None:
    hook = HookServer(port=free_port())  # not started: connections are refused
    receiver = {"name": "agent", "type": "webhook", "url": f"http://127.0.0.1:{hook.port}/events"}
    config = vigil_config(stack["prom"].url, "down", [receiver], **QUICK_RETRY)
    with VigilProcess(tmp_path / "vigil", config) as vigil, hook:
        hook.stop()
        vigil.start()
        down_since = time.monotonic()
        wait_until(lambda: vigil.get("/readyz").status_code == 200, 30, 0.1, "Vigil ready")
        for n, series in ((1, "down"), (2, "down2")):
            stack["driver"].spike(series, 3.0)
            wait_until(lambda n=n: len([e for e in spike_events(vigil) if e["state"] == "resolved"]) == n,
                       30, 0.2, f"spike {n} detected and resolved")
        pending = notifications(vigil, state="pending")
        assert pending["total"] >= 4 and pending["receivers"]["agent"]["sent"] == 0
        assert max(i["attempts"] for i in pending["items"]) > 1, "retried while the receiver was down"
        assert all("ConnectError" in (i["last_error"] or "") for i in pending["items"] if i["attempts"])
        while time.monotonic() - down_since < 30:  # keep it down for 30 s, watching
            assert vigil.alive()
            time.sleep(0.5)

        hook.start()
        want = wait_delivered(vigil, hook, 30)
        keys = hook.keys()
        assert len(keys) == len(set(keys)), f"delivered twice: {[k for k, n in Counter(keys).items() if n > 1]}"
        assert set(keys) == want
        assert notifications(vigil, state="dead")["total"] == 0
        bodies = {b["idempotency_key"]: b for b in hook.bodies("/events")}
        assert all(b["id"] == k.split(":")[0] and b["state"] == k.split(":")[1] for k, b in bodies.items())
        order = [k.split(":")[1] for k in keys if k.startswith(spike_events(vigil)[0]["id"])]
        assert order == ["firing", "resolved"]


def test_vigil_killed_while_the_receiver_is_down_still_sends_every_event_once(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    hook = HookServer(port=free_port())
    receiver = {"name": "agent", "type": "webhook", "url": f"http://127.0.0.1:{hook.port}/events"}
    # no snapshot before the kill: the restarted Vigil reads the spike again from Prometheus,
    # finds the same events (same ids), and must not queue them twice
    config = vigil_config(stack["prom"].url, "restart", [receiver], **QUICK_RETRY)
    with VigilProcess(tmp_path / "vigil", config) as vigil, hook:
        hook.stop()
        vigil.start()
        wait_until(lambda: vigil.get("/readyz").status_code == 200, 30, 0.1, "Vigil ready")
        stack["driver"].spike("restart", 3.0)
        wait_until(lambda: [e for e in spike_events(vigil) if e["state"] == "resolved"], 30, 0.2, "spike 1 resolved")
        before = notifications(vigil)
        assert before["receivers"]["agent"]["pending"] >= 2
        (first,) = spike_events(vigil)
        vigil.kill()  # SIGKILL: no snapshot, no goodbye

        stack["driver"].spike("restart2", 3.0)  # while Vigil is down
        prom = stack["prom"]
        wait_until(lambda: prom.query('max_over_time(vt_value{t="restart2"}[2s]) > 400'), 15, 0.2,
                   "spike 2 in Prometheus")
        wait_until(lambda: not prom.query('max_over_time(vt_value{t="restart2"}[4s]) > 400'), 15, 0.2,
                   "spike 2 over")

        vigil.start()
        wait_until(lambda: len([e for e in spike_events(vigil) if e["state"] == "resolved"]) == 2, 30, 0.2,
                   "both spikes as resolved events after the restart")
        assert first["id"] in {e["id"] for e in spike_events(vigil)}, "the replay found the same event again"
        assert len(spike_events(vigil)) == 2
        after = notifications(vigil)
        keys_queued = [i["idempotency_key"] for i in after["items"]]
        assert len(keys_queued) == len(set(keys_queued)), "the replay queued an event twice"
        assert set(keys_queued) >= {i["idempotency_key"] for i in before["items"]}

        hook.start()
        want = wait_delivered(vigil, hook, 30)
        keys = hook.keys()
        assert len(keys) == len(set(keys)), f"delivered twice: {[k for k, n in Counter(keys).items() if n > 1]}"
        assert set(keys) == want and len(want) >= 4


# -- (c) misbehaving receivers never slow detection ----------------------------------------


def spiky_csv(path: Path) -> Path:
    rng = np.random.default_rng(5)
    v = 50 + rng.normal(0, 1, 3000)
    # ten seconds of calm at speed 20, then a spike, and a dip 3 s later: each is news (a
    # side's tail has not seen the other's incident); the loops after the first repeat them
    v[200], v[260] = 150.0, -50.0
    path.write_text("timestamp,value\n" + "".join(f"{1_700_000_000 + i},{x:.3f}\n" for i, x in enumerate(v)))
    return path


def tick_pace(directory: Path, receivers: list[dict[str, Any]], window: float = 5.0) -> tuple[float, float, Any]:
    """Ticks per second of a replayed query over `window` s, and the share of ticks over 0.25 s."""
    config = {
        "data_dir": "data", "host": {"enabled": False}, "detection": {**FAST, "direction": "both"},
        "replay": [{"name": "spiky", "path": str(spiky_csv(directory.parent / f"{directory.name}.csv")),
                    "speed": 20, "loop": True}],
        "notify": {"receivers": receivers, "backoff": "100ms", "max_backoff": "1s", "max_attempts": 1000},
    }
    vigil = VigilProcess(directory, config)
    with vigil:
        vigil.start()
        wait_until(lambda: len(events(vigil)) >= 2, 30, 0.1, "events flowing")

        def counts() -> tuple[float, float]:
            n = metric_values(vigil, "vigil_tick_duration_seconds_count", query="spiky")[0]
            quick = metric_values(vigil, "vigil_tick_duration_seconds_bucket", query="spiky", le="0.25")[0]
            return n, quick

        n0, q0 = counts()
        began = time.monotonic()
        time.sleep(window)  # a measuring window: the ticks that happen in it are the result
        n1, q1 = counts()
        took = time.monotonic() - began
        page = notifications(vigil)
        assert "Traceback" not in vigil.log()
        vigil.stop()
    return (n1 - n0) / took, ((n1 - n0) - (q1 - q0)) / max(n1 - n0, 1), page


def test_failing_receivers_do_not_slow_detection(tmp_path: Path) -> None:
    with HookServer() as ok, HookServer(mode=400) as rejects, HookServer(mode=503) as fails, \
            HookServer(mode="hang") as hangs:
        healthy, healthy_slow, _ = tick_pace(tmp_path / "healthy", [
            {"name": "ok", "type": "webhook", "url": f"{ok.url}/e"},
        ])
        nowhere = f"http://127.0.0.1:{free_port()}/e"
        bad, bad_slow, page = tick_pace(tmp_path / "bad", [
            {"name": "rejects", "type": "webhook", "url": f"{rejects.url}/e"},
            {"name": "fails", "type": "webhook", "url": f"{fails.url}/e"},
            {"name": "hangs", "type": "webhook", "url": f"{hangs.url}/e", "timeout": "1s"},
            {"name": "nowhere", "type": "webhook", "url": nowhere},
        ])
    print(f"tick pace: {healthy:.1f}/s with a healthy receiver ({healthy_slow:.1%} over 0.25 s), "
          f"{bad:.1f}/s with four failing ones ({bad_slow:.1%})")
    assert ok.received, "the healthy run delivered"
    assert bad >= 0.75 * healthy, f"{bad:.1f} ticks/s against {healthy:.1f} with a healthy receiver"
    assert bad_slow <= max(0.02, 2 * healthy_slow), f"{bad_slow:.1%} of the ticks took over 0.25 s"
    counts = page["receivers"]
    assert counts["rejects"]["dead"] >= 1 and counts["rejects"]["pending"] <= 2
    assert counts["fails"]["pending"] >= 1 and len(fails.received) > counts["fails"]["pending"]
    assert counts["nowhere"]["pending"] >= 1 and counts["nowhere"]["sent"] == 0
    assert hangs.received and counts["hangs"]["sent"] == 0
