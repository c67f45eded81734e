"""Three `vigil run --shard i/3` and one unsharded `vigil run` on the same real Prometheus.

Prometheus is backfilled with an hour of history for 30 series (two metric names, 15
instances each, Gaussian noise on a 15 s grid, five of them with a spike of three
samples), ending 20 minutes ago, so that every process reads exactly the same points on
its first fetch (`lookback` covers the whole range, and the 5-minute staleness tail of the
last samples is over too). The four processes share the config and have their own
data_dir. Then:

- every series is held by exactly one shard: the three sets of /api/v1/series are
  pairwise disjoint and their union is the unsharded process's set;
- the union of the three shards' events is the unsharded process's events (same ids,
  series, query, start and state), each in the shard that owns its series;
- every output of a shard says so (`vigil_shard`, `vigil_shard_info`,
  `vigil_series_not_owned`, ``shard`` in the event JSON and the API items), and the
  unsharded process shows none of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.processes import VigilProcess
from support.servers import PrometheusServer, openmetrics, show_log_on_failure, wait_until
from vigil.labels import series_key

N_SHARDS = 3
STEP = 15
POINTS = 240  # one hour
INSTANCES = 15
SPIKED = {("shard_cpu", 0), ("shard_cpu", 7), ("shard_latency", 3), ("shard_latency", 9), ("shard_latency", 14)}
SPIKE_AT = 150  # sample index of the first of three spiked samples
QUERY = "load"

CONFIG: dict[str, Any] = {
    "data_dir": "data",
    "host": {"enabled": False},
    "detection": {  # a short warm-up, as in test_live_service.py
        "params": {"level": {"warmup": 5}, "shift": {"warmup": 5}, "volatility": {"warmup": 5}},
        "calibration_min_samples": 10,
    },
}


def history(end: int) -> str:
    rng = np.random.default_rng(2024)
    families: dict[str, tuple[str, list[tuple[dict[str, str], float, float]]]] = {}
    for name, level in (("shard_cpu", 40.0), ("shard_latency", 0.25)):
        samples = []
        for i in range(INSTANCES):
            labels = {"instance": f"node-{i:02d}", "job": "api"}
            values = level * (1 + 0.02 * rng.normal(size=POINTS))
            if (name, i) in SPIKED:
                values[SPIKE_AT : SPIKE_AT + 3] = level * 2
            samples += [(labels, end - STEP * (POINTS - 1 - k), float(v)) for k, v in enumerate(values)]
        families[name] = ("gauge", samples)
    return openmetrics(families)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    end = (int(time.time()) - 20 * 60) // STEP * STEP
    server = PrometheusServer(tmp_path_factory.mktemp("prom"))
    server.backfill(history(end))
    with server:
        yield server


@pytest.fixture(scope="module")
def vigils(
    tmp_path_factory: pytest.TempPathFactory, prometheus: PrometheusServer
) -> Iterator[dict[str | int, VigilProcess]]:
    root = tmp_path_factory.mktemp("vigil")
    config = {
        **CONFIG,
        "prometheus": {
            "url": prometheus.url, "lookback": "2h", "delay": "0s", "timeout": "5s",
            "queries": [{"name": QUERY, "query": '{__name__=~"shard_.*", job="api"}', "step": f"{STEP}s"}],
        },
    }
    procs: dict[str | int, VigilProcess] = {i: VigilProcess(root / f"shard-{i}", config) for i in range(N_SHARDS)}
    procs["all"] = VigilProcess(root / "all", config)
    try:
        for key, proc in procs.items():  # all four start at once
            proc.launch([] if key == "all" else ["--shard", f"{key}/{N_SHARDS}"])
        for proc in procs.values():
            proc.wait_up(60)
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()


@pytest.fixture(autouse=True)
def _log_on_failure(request: pytest.FixtureRequest, prometheus: PrometheusServer) -> Iterator[None]:
    with show_log_on_failure(request, prometheus):
        yield


def metrics(proc: VigilProcess) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(proc.get("/metrics").text)}


def sample(families: dict[str, Any], name: str, **labels: str) -> float | None:
    if name not in families:
        return None
    for s in families[name].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def first_fetch_done(proc: VigilProcess) -> bool:
    """All 30 series seen: held, or (sharded) counted as another shard's."""
    found = metrics(proc)
    held = sample(found, "vigil_series", query=QUERY) or 0
    others = sample(found, "vigil_series_not_owned", query=QUERY) or 0
    return held + others == 2 * INSTANCES


def series(proc: VigilProcess) -> list[dict[str, Any]]:
    page = proc.get("/api/v1/series", limit=10000).json()
    assert page["total"] == len(page["items"])
    return list(page["items"])


def events(proc: VigilProcess) -> list[dict[str, Any]]:
    page = proc.get("/api/v1/anomalies", limit=1000).json()
    assert page["total"] == len(page["items"])
    return list(page["items"])


def event_facts(e: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return e["id"], e["query"], series_key(e["series"]), e["started_at"], e["state"]


@pytest.fixture(scope="module")
def ready(vigils: dict[str | int, VigilProcess]) -> dict[str | int, VigilProcess]:
    began = time.monotonic()
    for key, proc in vigils.items():
        wait_until(lambda p=proc: first_fetch_done(p), 60, 0.2, f"vigil {key} to take in its first fetch")
    print(f"all four processes took in their first fetch {time.monotonic() - began:.1f} s after they were up")
    return vigils


def test_every_series_is_held_by_exactly_one_shard(ready: dict[str | int, VigilProcess]) -> None:
    everything = {item["id"]: item for item in series(ready["all"])}
    assert len(everything) == 2 * INSTANCES
    assert all("shard" not in item for item in everything.values())
    seen: dict[str, int] = {}
    for i in range(N_SHARDS):
        items = series(ready[i])
        assert items, f"shard {i} holds no series"
        for item in items:
            assert item["id"] not in seen, f"series {item['labels']} is held by shards {seen[item['id']]} and {i}"
            seen[item["id"]] = i
            assert item["shard"] == f"{i}/{N_SHARDS}"
            assert int(item["id"], 16) % N_SHARDS == i, "the id does not name the owning shard"
            assert item["labels"] == everything[item["id"]]["labels"]
    assert seen.keys() == everything.keys()


def test_the_union_of_the_shards_events_is_the_unsharded_events(ready: dict[str | int, VigilProcess]) -> None:
    single = events(ready["all"])
    assert all("shard" not in e for e in single)
    spiked = {series_key({"__name__": n, "instance": f"node-{i:02d}", "job": "api"}) for n, i in SPIKED}
    assert spiked <= {series_key(e["series"]) for e in single}, "a spike was not found by the unsharded process"
    union: list[tuple[str, str, str, str, str]] = []
    per_shard = []
    for i in range(N_SHARDS):
        mine = events(ready[i])
        assert all(e["shard"] == f"{i}/{N_SHARDS}" for e in mine)
        union += [event_facts(e) for e in mine]
        per_shard.append(len(mine))
    print(f"{len(single)} events unsharded; {per_shard} in the shards")
    assert len(union) == len(set(union)), "an event is in two shards"
    assert sorted(union) == sorted(event_facts(e) for e in single)


def test_every_output_of_a_shard_says_so_and_the_unsharded_one_does_not(
    ready: dict[str | int, VigilProcess],
) -> None:
    for i in range(N_SHARDS):
        found = metrics(ready[i])
        assert sample(found, "vigil_shard_info", shard=str(i), shards=str(N_SHARDS)) == 1
        held = sample(found, "vigil_series", query=QUERY)
        assert sample(found, "vigil_series_not_owned", query=QUERY) == 2 * INSTANCES - (held or 0)
        lines = found["vigil_anomaly_score"].samples
        assert lines and all(s.labels["vigil_shard"] == str(i) for s in lines)
        health = ready[i].get("/check_health").json()
        assert health["items"] and all(item["shard"] == f"{i}/{N_SHARDS}" for item in health["items"])
    text = ready["all"].get("/metrics").text
    assert "vigil_shard" not in text and "vigil_series_not_owned" not in text
    assert all("shard" not in item for item in ready["all"].get("/check_health").json()["items"])
    for proc in ready.values():
        assert "Traceback" not in proc.log()
