"""Sharding: the stable hash, shard strings, ownership at ingest, and what outputs say.

The hash must be the same in every process (golden values computed once and written
here, and a subprocess with another PYTHONHASHSEED), split any set of series into N
disjoint parts that cover it, and split them evenly. The engine part drives `Query` and
`Engine.tick` with a fake source and an injected clock, as tests/engine/test_engine.py does.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.sources import FakeSource
from vigil.cli.service import override as _override
from vigil.config import EXPORTS, Config, Detection, Limits, load_config
from vigil.engine import Engine, Query
from vigil.errors import ConfigError
from vigil.http.app import create_app
from vigil.labels import series_key
from vigil.metrics import CATALOGUE, Metrics
from vigil.outputs.exporter import Exposition
from vigil.outputs.store import Store
from vigil.service import Service, build_service
from vigil.sharding import Shard, check_spec, hostname_ordinal, parse_shard, series_hash, shard_of
from vigil.sources.base import SeriesBatch
from vigil.sources.prometheus import PrometheusSource

with warnings.catch_warnings():  # see tests/http/test_api.py
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated")
    from fastapi.testclient import TestClient

T0 = 1_700_000_000.0
STEP = 15.0


def random_label_sets(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` distinct label sets shaped like real ones (name, instance, job, route)."""
    rng = random.Random(seed)
    out: dict[str, dict[str, str]] = {}
    while len(out) < n:
        labels = {
            "__name__": rng.choice(["http_requests_total", "cpu_utilization", "latency_p99", "queue_depth"]),
            "instance": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}:9100",
            "job": rng.choice(["api", "node", "worker"]),
        }
        if rng.random() < 0.5:
            labels["route"] = f"/api/v{rng.randrange(3)}/{rng.choice(['orders', 'users', 'items'])}"
        out[series_key(labels)] = labels
    return list(out.values())


# -- the hash --------------------------------------------------------------------------------

GOLDEN = [  # (query, labels, 64-bit hash, shard of 3, shard of 7): computed once, never to change
    ("cpu", {"__name__": "cpu_utilization", "instance": "web-1"}, 0x9DC2E761E0451A6A, 0, 4),
    ("cpu", {"__name__": "cpu_utilization", "instance": "web-2"}, 0x509DDF960547D6DC, 1, 2),
    (
        "latency", {"__name__": "http_request_duration_seconds", "route": "/api/orders", "le": "0.5"},
        0xFA943E34F2926827, 2, 5,
    ),
    ("latency", {"route": "/api/orders"}, 0x2F0074A162F7AB82, 1, 6),
    ("host", {"__name__": "load1"}, 0x2DE98FBCCAEB8053, 0, 2),
]


@pytest.mark.parametrize(
    ("query", "labels", "digest", "of3", "of7"), [pytest.param(*g, id=f"{g[0]}-{i}") for i, g in enumerate(GOLDEN)]
)
def test_the_hash_of_a_series_never_changes(
    query: str, labels: dict[str, str], digest: int, of3: int, of7: int
) -> None:
    key = series_key(labels)
    assert series_hash(query, key) == digest
    assert (shard_of(query, key, 3), shard_of(query, key, 7)) == (of3, of7)
    assert [Shard(i, 3).owns(query, labels) for i in range(3)] == [i == of3 for i in range(3)]


def test_the_hash_is_the_same_in_another_process_with_another_hash_seed() -> None:
    label_sets = random_label_sets(200, seed=3)
    here = [shard_of("q", series_key(lab), 5) for lab in label_sets]
    code = (
        "import json, sys; from vigil.sharding import shard_of; from vigil.labels import series_key; "
        "print(json.dumps([shard_of('q', series_key(l), 5) for l in json.load(sys.stdin)]))"
    )
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], input=json.dumps(label_sets), capture_output=True, text=True,
            env=env, check=True, timeout=60,
        )
        assert json.loads(out.stdout) == here


def test_the_query_name_is_part_of_the_hash() -> None:
    labels = random_label_sets(100, seed=4)
    differ = sum(shard_of("a", series_key(lab), 3) != shard_of("b", series_key(lab), 3) for lab in labels)
    assert 40 <= differ <= 90  # independent: about two thirds land elsewhere


def test_the_api_id_names_the_owning_shard() -> None:
    from vigil.labels import series_id

    for lab in random_label_sets(50, seed=5):
        key = series_key(lab)
        assert int(series_id("q", key), 16) % 4 == shard_of("q", key, 4)


@pytest.mark.parametrize("n", range(1, 8))
def test_every_series_lands_in_exactly_one_shard(n: int) -> None:
    shards = [Shard(i, n) for i in range(n)]
    for labels in random_label_sets(3000, seed=n):
        owners = [s.index for s in shards if s.owns("requests", labels)]
        assert len(owners) == 1, f"{labels} is owned by shards {owners} of {n}"


def test_three_shards_are_balanced_within_twenty_percent() -> None:
    counts = [0, 0, 0]
    for labels in random_label_sets(3000, seed=11):
        counts[shard_of("requests", series_key(labels), 3)] += 1
    assert all(800 <= c <= 1200 for c in counts), counts


# -- shard strings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shard"),
    [
        pytest.param("0/1", Shard(0, 1), id="one-shard"),
        pytest.param("2/3", Shard(2, 3), id="plain"),
        pytest.param(" 1 / 4 ", Shard(1, 4), id="spaces"),
        pytest.param("06/10", Shard(6, 10), id="leading-zero"),
    ],
)
def test_shard_strings_are_read(text: str, shard: Shard) -> None:
    assert parse_shard(text, "--shard") == shard


@pytest.mark.parametrize(
    ("text", "advice"),
    [
        pytest.param("3/3", "i must be below N (shards are numbered 0 to 2)", id="i-equals-n"),
        pytest.param("1/0", "N must be 1 or more", id="zero-shards"),
        pytest.param("-1/3", "write i/N with 0 <= i < N", id="negative"),
        pytest.param("1", "write i/N with 0 <= i < N", id="no-slash"),
        pytest.param("a/3", "write i/N with 0 <= i < N", id="letters"),
        pytest.param("1/3/5", "write i/N with 0 <= i < N", id="three-parts"),
        pytest.param("", "write i/N with 0 <= i < N", id="empty"),
        pytest.param("auto", "or auto/N to take i from the hostname", id="auto-without-n"),
    ],
)
def test_bad_shard_strings_are_refused_naming_the_key_and_what_is_right(text: str, advice: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_shard(text, "--shard")
    message = str(caught.value)
    assert message.startswith(f"--shard is {text!r}; ")
    assert advice in message and "such as '0/3'" in message


@pytest.mark.parametrize(
    ("hostname", "n", "index"),
    [
        pytest.param("vigil-0", 3, 0, id="first"),
        pytest.param("vigil-2", 3, 2, id="last"),
        pytest.param("vigil-12.vigil-headless.monitoring.svc.cluster.local", 13, 12, id="fqdn"),
        pytest.param("anomaly-detector-eu-1", 2, 1, id="dashes-in-name"),
    ],
)
def test_auto_takes_the_index_from_the_hostnames_ordinal(hostname: str, n: int, index: int) -> None:
    assert parse_shard(f"auto/{n}", "VIGIL_SHARD", hostname=hostname) == Shard(index, n)


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        pytest.param("buildbox", "the hostname 'buildbox' has no trailing ordinal such as vigil-2", id="none"),
        pytest.param("vigil2", "the hostname 'vigil2' has no trailing ordinal", id="no-dash"),
        pytest.param("web-1.example", None, id="ordinal-in-first-label-only"),
        pytest.param("vigil-3", "gives shard 3, and shards are numbered 0 to 2", id="ordinal-too-big"),
    ],
)
def test_auto_with_a_hostname_without_a_fitting_ordinal_is_a_clear_error(hostname: str, expected: str | None) -> None:
    if expected is None:
        assert parse_shard("auto/3", "shard", hostname=hostname) == Shard(1, 3)
        return
    with pytest.raises(ConfigError) as caught:
        parse_shard("auto/3", "shard", hostname=hostname)
    assert str(caught.value).startswith("shard is 'auto/3', but ")
    assert expected in str(caught.value)


def test_hostname_ordinal() -> None:
    assert hostname_ordinal("vigil-7") == 7
    assert hostname_ordinal("vigil-7x") is None
    assert hostname_ordinal("1.2.3.4") is None


def test_the_config_key_is_validated_at_load(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text('shard: "auto/3"\n')
    assert load_config(path).shard == "auto/3"
    path.write_text('shard: " 1 /3"\n')
    assert load_config(path).shard == "1/3"
    for bad, shown in (('"3/3"', "'3/3'"), ("1", "1")):
        path.write_text(f"shard: {bad}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert f"shard is {shown}; " in str(caught.value)
        assert "write i/N with 0 <= i < N" in str(caught.value)


def test_the_command_line_beats_the_environment_which_beats_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text('shard: "0/2"\n')
    assert _override(path, None, None).shard == "0/2"
    monkeypatch.setenv("VIGIL_SHARD", "auto/3")
    assert _override(path, None, None, hostname="vigil-1").shard == "1/3"
    assert _override(path, None, None, shard="2/3", hostname="vigil-1").shard == "2/3"
    with pytest.raises(ConfigError, match=r"^VIGIL_SHARD is 'auto/3', but the hostname 'laptop' has no"):
        _override(path, None, None, hostname="laptop")
    with pytest.raises(ConfigError, match=r"^--shard is '5/3'; i must be below N"):
        _override(path, None, None, shard="5/3")


def test_build_service_resolves_auto_from_the_hostname(tmp_path: Path) -> None:
    config = Config.model_validate({"data_dir": str(tmp_path), "shard": "auto/4"})
    service = build_service(config, hostname="vigil-3")
    try:
        assert service.shard == Shard(3, 4)
        assert all(q.shard == Shard(3, 4) for q in service.engine.queries.values())
        assert not service.engine.queries["host"].split, "the host query is never split"
    finally:
        service.store.close()
    with pytest.raises(ConfigError, match=r"^shard is 'auto/4', but the hostname 'ci-runner' has no"):
        build_service(config, hostname="ci-runner")


# -- ownership at ingest ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def calm_batches(label_sets: Sequence[dict[str, str]], n: int = 200, spike_every: int = 0) -> list[SeriesBatch]:
    """`n` calm samples per series; every `spike_every`-th series ends on a spike (an open event)."""
    rng = np.random.default_rng(0)
    out = []
    for i, labels in enumerate(label_sets):
        v = 50 + rng.normal(0, 1, n)
        if spike_every and i % spike_every == 0:
            v[-1] = 95.0
        out.append(SeriesBatch(dict(labels), T0 + STEP * np.arange(n), v))
    return out


def sharded_engine(tmp_path: Path, shard: Shard | None, store: Store | None = None) -> Engine:
    # a high threshold: the spikes of 45 sigma open events, the calm samples never
    q = Query(FakeSource(), Detection(threshold=0.999999), Limits(), "q", shard=shard)
    return Engine(Config(data_dir=tmp_path), [q], store or Store(tmp_path), Metrics(shard=shard), clock=Clock())


def tick(engine: Engine, batches: list[SeriesBatch], at: float = T0 + 3000) -> None:
    q = engine.queries["q"]
    assert isinstance(q.source, FakeSource) and isinstance(engine.clock, Clock)
    q.source.replies.append(batches)
    engine.clock.t = at
    asyncio.run(engine.tick(q))


def test_ingest_takes_in_only_owned_series_and_counts_the_others(tmp_path: Path) -> None:
    labels = random_label_sets(30, seed=21)
    shard = Shard(1, 3)
    mine = {series_key(lab) for lab in labels if shard.owns("q", lab)}
    assert 3 < len(mine) < 27
    q = Query(FakeSource(), Detection(), Limits(), "q", shard=shard)
    got = q.ingest(calm_batches(labels, n=20), now=T0)
    assert got.not_owned == 30 - len(mine)
    assert set(q.table.index) == mine
    assert q.table.n_rows == len(mine), "a row was made for a series of another shard"
    assert got.taken == 20 * len(mine)
    again = q.ingest(calm_batches(labels, n=21)[::-1], now=T0 + STEP)  # owned ones are known now
    assert again.not_owned == 30 - len(mine) and again.taken == len(mine)


def test_unsharded_ingest_takes_everything_and_reports_no_count(tmp_path: Path) -> None:
    q = Query(FakeSource(), Detection(), Limits(), "q")
    got = q.ingest(calm_batches(random_label_sets(30, seed=21), n=5), now=T0)
    assert got.not_owned is None and len(q.table) == 30


def test_a_query_not_split_keeps_every_series_but_still_says_its_shard(tmp_path: Path) -> None:
    q = Query(FakeSource("host"), Detection(), Limits(), "host", shard=Shard(1, 3), split=False)
    got = q.ingest(calm_batches(random_label_sets(30, seed=21), n=5), now=T0)
    assert got.not_owned is None and len(q.table) == 30
    assert all('vigil_shard="1"' in text for text in q.line_prefixes(q.table.active_rows()))


def test_the_not_owned_gauge_and_the_shard_info_are_exported(tmp_path: Path) -> None:
    labels = random_label_sets(30, seed=22)
    engine = sharded_engine(tmp_path, Shard(0, 3))
    tick(engine, calm_batches(labels, n=5))
    owned = len(engine.queries["q"].table)
    registry = engine.metrics.registry
    assert registry.get_sample_value("vigil_series_not_owned", {"query": "q"}) == 30 - owned
    assert registry.get_sample_value("vigil_series", {"query": "q"}) == owned
    assert registry.get_sample_value("vigil_shard_info", {"shard": "0", "shards": "3"}) == 1
    tick(engine, [], at=T0 + 3100)  # a fetch with nothing new leaves the count as it was
    assert registry.get_sample_value("vigil_series_not_owned", {"query": "q"}) == 30 - owned


def test_every_series_line_says_its_shard_and_nothing_changes_unsharded(tmp_path: Path) -> None:
    labels = [*random_label_sets(12, seed=23), {"__name__": "x", "vigil_shard": "theirs", "instance": "a"}]
    shard = Shard(0, 1)  # owns everything: every line is checked
    engine = sharded_engine(tmp_path / "a", shard)
    engine.queries["q"].export = EXPORTS  # every family, not only the default two
    tick(engine, calm_batches(labels, n=5))
    text = Exposition(engine.metrics, engine.queries.values).body().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("vigil_observed_value", "vigil_anomaly_score", "vigil_anomaly", "vigil_warming_up"):
        samples = families[name].samples
        assert len(samples) == 13 and all(s.labels["vigil_shard"] == "0" for s in samples)
    own = [s for s in families["vigil_observed_value"].samples if s.labels["metric"] == "x"]
    assert own[0].labels["exported_vigil_shard"] == "theirs"
    for name, family in families.items():
        key = f"{name}_total" if family.type == "counter" else name
        assert key in CATALOGUE, f"{name} is not in exporter.CATALOGUE"

    plain = sharded_engine(tmp_path / "b", None)
    plain.queries["q"].export = EXPORTS
    tick(plain, calm_batches(labels, n=5))
    text = Exposition(plain.metrics, plain.queries.values).body().decode()
    assert "vigil_shard" not in text.replace('vigil_shard="theirs"', "")
    assert "vigil_series_not_owned" not in text and "exported_vigil_shard" not in text


def test_events_say_their_shard_and_keep_the_id_of_the_unsharded_run(tmp_path: Path) -> None:
    labels = random_label_sets(30, seed=24)
    plain = sharded_engine(tmp_path / "plain", None)
    tick(plain, calm_batches(labels, spike_every=3))
    every = {e["id"]: e for e in plain.store.events()[0]}
    assert len(every) == 10 and all("shard" not in e for e in every.values())
    union: dict[str, dict[str, Any]] = {}
    for i in range(3):
        engine = sharded_engine(tmp_path / str(i), Shard(i, 3))
        tick(engine, calm_batches(labels, spike_every=3))
        for e in engine.store.events()[0]:
            assert e["shard"] == f"{i}/3" and e["id"] not in union
            union[e["id"]] = e
    assert union.keys() == every.keys()
    for eid, e in union.items():
        assert {k: v for k, v in e.items() if k != "shard"} == every[eid]


def test_api_items_say_their_shard_only_when_sharded(tmp_path: Path) -> None:
    labels = random_label_sets(9, seed=25)
    for shard, expected in ((Shard(0, 1), "0/1"), (None, None)):
        engine = sharded_engine(tmp_path / str(expected), shard)
        tick(engine, calm_batches(labels, n=5))
        service = Service(config=engine.config, engine=engine, store=engine.store, metrics=engine.metrics)
        client = TestClient(create_app(service), base_url="http://localhost")
        for path in ("/check_health", "/api/v1/series"):
            items = client.get(path).json()["items"]
            assert len(items) == 9
            assert all(item.get("shard") == expected for item in items)
            assert all(("shard" in item) == (shard is not None) for item in items)


def test_a_restart_with_another_shard_count_forgets_the_series_no_longer_owned(tmp_path: Path) -> None:
    labels = random_label_sets(30, seed=26)
    store = Store(tmp_path)
    before = sharded_engine(tmp_path, Shard(0, 1), store)
    tick(before, calm_batches(labels, spike_every=3))
    assert len(before.store.events(state="firing")[0]) == 10
    before.snapshot()

    after = sharded_engine(tmp_path, Shard(1, 2), store)
    after.restore()
    q = after.queries["q"]
    mine = {series_key(lab) for lab in labels if Shard(1, 2).owns("q", lab)}
    assert set(q.table.index) == mine
    firing = {series_key(e["series"]) for e in store.events(state="firing")[0]}
    assert firing <= mine, "an event of a series now owned elsewhere stayed open"
    assert len(store.events(state="resolved")[0]) == 10 - len(firing)
    store.close()


def test_the_prometheus_cap_counts_only_owned_series() -> None:
    labels = random_label_sets(12, seed=27)
    shard = Shard(2, 3)
    mine = [lab for lab in labels if shard.owns("q", lab)]

    def handler(request: httpx.Request) -> httpx.Response:
        result = [{"metric": lab, "values": [[T0, "1"], [T0 + STEP, "2"]]} for lab in labels]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": result}})

    async def main() -> list[SeriesBatch]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            source = PrometheusSource(
                "q", "http://prom.test", "up", step=STEP, lookback=3600, client=client, max_series=len(mine),
                owns=lambda key: shard.owns_key("q", key),
            )
            return await source.fetch(T0 + 2 * STEP)

    batches = asyncio.run(main())
    assert len(batches) == 12, "the cap left out a series: it counted another shard's"
    owned = [b for b in batches if shard.owns("q", b.labels)]
    assert len(owned) == len(mine) and all(b.t.size == 2 for b in owned)
    assert all(b.t.size == 0 for b in batches if not shard.owns("q", b.labels)), "points of another shard's series"


def test_check_spec_normalises() -> None:
    assert check_spec(" auto / 5 ") == "auto/5"
    assert check_spec("007/9") == "7/9"
