"""The HTTP API over `TestClient`: probes, health, events, series, /metrics, token, limits.

The service is real (engine, store, exporter); its one fake is the source, whose samples
the test hands to `Engine.tick` with a fixed clock. Events for the /api/v1/anomalies
filters are made with `event_doc` at chosen times and put in the store directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from support.sources import FakeSource
from vigil.cli import app as cli_app
from vigil.config import DEFAULT_EXPORT, EXPORTS, Config, Detection, Limits, Secret, Server
from vigil.detection.decision import Event
from vigil.engine import Engine, EventRecord, Query
from vigil.errors import SourceUnavailable
from vigil.http.app import create_app
from vigil.http.models import EventItem
from vigil.labels import series_key
from vigil.metrics import CATALOGUE, Metrics
from vigil.outputs.event import EventDocument, event_doc, event_schema
from vigil.outputs.exporter import Exposition
from vigil.outputs.store import Store
from vigil.service import Service
from vigil.sources.base import SeriesBatch

with warnings.catch_warnings():
    # Starlette 1.x warns at import that its TestClient wants the `httpx2` package; the
    # project depends on `httpx`, which still works. Only that one warning is ignored.
    warnings.filterwarnings(
        "ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated"
    )
    from fastapi.testclient import TestClient

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpu_spike.csv"
T0 = 1_700_000_000.0
STEP = 15.0
WEB1 = {"__name__": "cpu_utilization", "instance": "web-1", "job": "node"}
WEB2 = {"__name__": "cpu_utilization", "instance": "web-2", "job": "node"}
WEB3 = {"__name__": "cpu_utilization", "instance": "web-3", "job": "node"}
MEM1 = {"__name__": "memory_used_ratio", "instance": "web-1", "job": "node"}
LOCAL = "http://localhost"  # TestClient's own host name, testserver, is not one the API answers to


def batch(labels: dict[str, str], t: Sequence[float], v: Sequence[float]) -> SeriesBatch:
    return SeriesBatch(
        dict(labels), np.asarray(t, dtype=np.float64), np.asarray(v, dtype=np.float64)
    )


def calm(n: int, seed: int = 0, level: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return T0 + STEP * np.arange(n), level + rng.normal(0.0, 1.0, n)


def make_service(
    tmp_path: Path, server: Server | None = None, names: Sequence[str] = ("cpu", "mem"),
    export: Sequence[str] = DEFAULT_EXPORT,
) -> Service:
    config = Config(data_dir=tmp_path, server=server or Server(rate_limit=1000.0))
    limits = Limits(history_points=240)  # more than the 200 samples `fill` feeds
    queries = [Query(FakeSource(n), Detection(), limits, n, export=export) for n in names]
    store = Store(tmp_path)
    metrics = Metrics()
    engine = Engine(config, queries, store, metrics, clock=lambda: T0 + 3600)
    return Service(config=config, engine=engine, store=store, metrics=metrics)


def feed(service: Service, name: str, reply: list[SeriesBatch] | BaseException) -> None:
    q = service.engine.queries[name]
    assert isinstance(q.source, FakeSource)
    q.source.replies.append(reply)
    asyncio.run(service.engine.tick(q))


def fill(service: Service, spike: bool = True) -> None:
    """cpu: web-1 calm, web-2 calm then a spike (open event), web-3 new (warming up); mem: calm."""
    t, v = calm(200)
    t2, v2 = calm(200, seed=1)
    if spike:
        v2[-1] = 90.0
    cpu = [batch(WEB1, t, v), batch(WEB2, t2, v2), batch(WEB3, t[-3:], v[-3:])]
    feed(service, "cpu", cpu)
    t3, v3 = calm(200, seed=2, level=0.5)
    feed(service, "mem", [batch(MEM1, t3, v3 / 100)])


@pytest.fixture
def service(tmp_path: Path) -> Service:
    s = make_service(tmp_path)
    fill(s)
    return s


@pytest.fixture
def client(service: Service) -> TestClient:
    return TestClient(create_app(service), base_url=LOCAL)


# -- probes --------------------------------------------------------------------------------


def test_healthz_is_always_200(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    client = TestClient(create_app(service), base_url=LOCAL)
    assert client.get("/healthz").json() == {"status": "ok"}
    feed(service, "cpu", SourceUnavailable("connection refused"))
    response = client.get("/healthz")
    assert response.status_code == 200


def test_readyz_is_503_with_reasons_before_the_first_fetch_and_200_after(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    client = TestClient(create_app(service), base_url=LOCAL)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "reasons": {"cpu": "no successful fetch yet", "mem": "no successful fetch yet"},
    }
    feed(service, "cpu", [])
    assert client.get("/readyz").json()["reasons"] == {"mem": "no successful fetch yet"}
    feed(service, "mem", [])
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "reasons": {}}


def test_readyz_names_a_failing_source(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    client = TestClient(create_app(service), base_url=LOCAL)
    feed(service, "cpu", [])
    feed(service, "mem", SourceUnavailable("prometheus at http://p:9090 answered 503"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reasons"] == {
        "mem": "source failing: prometheus at http://p:9090 answered 503"
    }
    assert client.get("/check_health").json()["sources"] == {
        "cpu": "ok",
        "mem": "source failing: prometheus at http://p:9090 answered 503",
    }


def test_a_query_refusing_series_is_degraded_everywhere_and_stays_ready(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path, server=Server(rate_limit=1000.0))
    q = Query(FakeSource("cpu"), Detection(), Limits(max_series_per_query=1), "cpu")
    store, metrics = Store(tmp_path), Metrics()
    service = Service(config=config, engine=Engine(config, [q], store, metrics, clock=lambda: T0), store=store,
                      metrics=metrics)
    feed(service, "cpu", [batch(WEB1, [T0], [1.0]), batch(WEB2, [T0], [1.0])])
    client = TestClient(create_app(service), base_url=LOCAL)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["reasons"]["cpu"].startswith("degraded: 1 series refused")
    assert client.get("/check_health").json()["sources"]["cpu"].startswith("degraded: 1 series refused")
    source = client.get("/api/v1/summary").json()["sources"]["cpu"]
    assert source["status"] == "degraded" and "limits.max_series_per_query" in source["detail"]


def test_the_listing_changes_as_soon_as_a_tick_lands(client: TestClient, service: Service) -> None:
    """Answers are reused only while the engine's state is the same."""
    first = client.get("/api/v1/series", params={"limit": 50, "sparkline": 5}).json()
    assert client.get("/api/v1/series", params={"limit": 50, "sparkline": 5}).json() == first
    web1 = next(i for i in first["items"] if i["labels"] == WEB1)
    feed(service, "cpu", [batch(WEB1, [T0 + 200 * STEP], [51.0])])
    again = client.get("/api/v1/series", params={"limit": 50, "sparkline": 5}).json()
    now = next(i for i in again["items"] if i["labels"] == WEB1)
    assert now["value"] == 51.0 and now["value"] != web1["value"]
    assert now["sparkline"]["value"][-1] == 51.0 and now["sparkline"]["value"][:-1] == web1["sparkline"]["value"][1:]


# -- /check_health -------------------------------------------------------------------------


def test_check_health_is_200_when_every_series_is_ok(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    fill(service, spike=False)
    response = TestClient(create_app(service), base_url=LOCAL).get(
        "/check_health", params={"label": "instance!=web-3"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert (body["series"], body["anomalous"], body["warming_up"]) == (3, 0, 0)
    assert {i["status"] for i in body["items"]} == {"ok"}
    assert {i["reason"] for i in body["items"]} == {"within the expected band"}


def test_check_health_is_503_and_says_why_a_series_is_anomalous(client: TestClient) -> None:
    response = client.get("/check_health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "anomalous"
    assert (body["series"], body["anomalous"], body["warming_up"]) == (4, 1, 1)
    first = body["items"][0]  # anomalous first
    assert first["labels"] == WEB2
    assert first["status"] == "anomalous"
    assert first["value"] == 90.0
    assert first["lower"] < first["expected"] < first["upper"] < 90.0
    pattern = r"value 90\.0 outside the band (\S+) to (\S+) \(expected (\S+)\), score (?:0\.9999[6-9]\d|1\.000000)"
    match = re.fullmatch(pattern, first["reason"])
    assert match, first["reason"]
    lo, hi, exp = (float(x) for x in match.groups())
    assert (lo, hi, exp) == pytest.approx(
        (first["lower"], first["upper"], first["expected"]), abs=0.05
    )  # numbers in text have 3 significant digits: one decimal here
    assert [i["status"] for i in body["items"]] == ["anomalous", "warming_up", "ok", "ok"]


@pytest.mark.parametrize(
    ("params", "code", "instances"),
    [
        pytest.param({"query": "mem"}, 200, ["web-1"], id="query-without-anomaly"),
        pytest.param({"query": "cpu"}, 503, ["web-2", "web-3", "web-1"], id="query-with-anomaly"),
        pytest.param({"label": "instance=web-2"}, 503, ["web-2"], id="label-equal"),
        pytest.param({"label": "instance!=web-2"}, 200, ["web-3", "web-1", "web-1"], id="label-not-equal"),
        pytest.param({"label": ["__name__=cpu_utilization", "instance=~web-[13]"]}, 200, ["web-3", "web-1"],
                     id="two-labels"),
        pytest.param({"status": "warming_up"}, 503, ["web-3"], id="status-shown-503-still-counts-all"),
        pytest.param({"status": "ok", "query": "cpu"}, 503, ["web-1"], id="status-and-query"),
    ],
)  # fmt: skip
def test_check_health_filters(
    client: TestClient, params: dict[str, Any], code: int, instances: list[str]
) -> None:
    response = client.get("/check_health", params=params)
    assert response.status_code == code
    assert [i["labels"]["instance"] for i in response.json()["items"]] == instances


def test_check_health_pages(client: TestClient) -> None:
    everything = client.get("/check_health").json()["items"]
    page = client.get("/check_health", params={"limit": 2, "offset": 1}).json()
    assert page["offset"] == 1
    assert page["series"] == 4
    assert [i["id"] for i in page["items"]] == [i["id"] for i in everything[1:3]]


# -- /api/v1/anomalies ---------------------------------------------------------------------


def put_event(
    service: Service,
    query: str,
    labels: dict[str, str],
    started: float,
    ended: float | None = None,
) -> str:
    e = Event(
        row=0, number=1, state="firing" if ended is None else "resolved", started_at=started, ended_at=ended,
        peak_score=0.99999, peak_at=started, observed=97.2, expected=41.5, lower=30.1, upper=52.9,
        detectors={"ewma": 0.99999, "zscore": 0.5},
    )  # fmt: skip
    recent = {
        "t": [started],
        "value": [97.2],
        "expected": [41.5],
        "lower": [30.1],
        "upper": [52.9],
        "score": [1.0],
    }
    d = event_doc(EventRecord(e, query, series_key(labels), labels, "default", 0.99996, recent))
    service.store.upsert_events([d])
    return str(d["id"])


@pytest.fixture
def stocked(tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    """Four events: a (cpu web-1, 0-100 s), b (cpu web-2, open from 1000 s),
    c (mem web-1, 500-700 s), d (mem web-3, 2000-2100 s); times from T0."""
    service = make_service(tmp_path)
    ids = {
        "a": put_event(service, "cpu", WEB1, T0, T0 + 100),
        "b": put_event(service, "cpu", WEB2, T0 + 1000),
        "c": put_event(service, "mem", MEM1, T0 + 500, T0 + 700),
        "d": put_event(service, "mem", {**MEM1, "instance": "web-3"}, T0 + 2000, T0 + 2100),
    }
    return TestClient(create_app(service), base_url=LOCAL), ids


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, "dbca", id="all-newest-first"),
        pytest.param({"start": str(T0 + 650)}, "dbc", id="start-unix"),
        pytest.param({"start": iso(T0 + 650)}, "dbc", id="start-rfc3339"),
        pytest.param({"start": "2023-11-14T22:24:10+00:00"}, "dbc", id="start-rfc3339-offset"),
        pytest.param({"start": "2023-11-14T23:24:10+01:00"}, "dbc", id="start-rfc3339-other-zone"),
        pytest.param({"start": "2023-11-14T22:24:10"}, "dbc", id="start-no-zone-is-utc"),
        pytest.param({"end": str(T0 + 500)}, "ca", id="end-unix-inclusive"),
        pytest.param({"end": iso(T0 + 500)}, "ca", id="end-rfc3339"),
        pytest.param({"start": str(T0 + 50), "end": iso(T0 + 600)}, "ca", id="window-mixed"),
        pytest.param({"start": str(T0 + 5000)}, "b", id="open-events-reach-now"),
        pytest.param({"state": "firing"}, "b", id="state-firing"),
        pytest.param({"state": "resolved"}, "dca", id="state-resolved"),
        pytest.param({"query": "mem"}, "dc", id="query"),
        pytest.param({"label": "instance=web-1"}, "ca", id="label-equal"),
        pytest.param({"label": "instance!=web-1"}, "db", id="label-not-equal"),
        pytest.param({"label": "instance=~web-[12]"}, "bca", id="label-regex"),
        pytest.param({"label": "instance=~web"}, "", id="label-regex-is-anchored"),
        pytest.param({"label": "instance!~web-[12]"}, "d", id="label-not-regex"),
        pytest.param({"label": "__name__=memory_used_ratio"}, "dc", id="metric-name"),
        pytest.param({"label": "zone="}, "dbca", id="empty-matches-missing-label"),
        pytest.param({"label": ["job=node", "instance=web-1"]}, "ca", id="labels-and"),
        pytest.param(
            {"label": "instance=web-1", "query": "cpu", "state": "resolved"}, "a", id="combined"
        ),
    ],
)
def test_anomalies_filters(
    stocked: tuple[TestClient, dict[str, str]], params: dict[str, Any], expected: str
) -> None:
    client, ids = stocked
    response = client.get("/api/v1/anomalies", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["id"] for e in body["items"]] == [ids[k] for k in expected]
    assert body["total"] == len(expected)


@pytest.mark.parametrize(
    "params",
    [pytest.param({}, id="no-labels"), pytest.param({"label": "job=node"}, id="with-labels")],
)
def test_anomalies_pages_with_the_total(
    stocked: tuple[TestClient, dict[str, str]], params: dict[str, str]
) -> None:
    client, ids = stocked
    page = client.get("/api/v1/anomalies", params={**params, "limit": 2, "offset": 1}).json()
    assert page["total"] == 4
    assert page["offset"] == 1
    assert [e["id"] for e in page["items"]] == [ids["b"], ids["c"]]
    assert client.get("/api/v1/anomalies", params={**params, "offset": 10}).json()["items"] == []


def test_anomalies_items_are_the_event_json(stocked: tuple[TestClient, dict[str, str]]) -> None:
    client, ids = stocked
    (item,) = client.get("/api/v1/anomalies", params={"state": "firing"}).json()["items"]
    assert item["id"] == ids["b"]
    assert item["series"] == WEB2
    assert item["summary"] == "cpu_utilization on web-2 is 97.2, expected 41.5 (band 30.1 to 52.9); as rare as 1 in 100,000 samples"
    assert item["ended_at"] is None


def test_an_event_stored_before_peak_at_and_threshold_still_lists(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    eid = put_event(service, "cpu", WEB2, T0)
    (stored,) = service.store.events()[0]
    old = {k: v for k, v in stored.items() if k not in ("peak_at", "threshold")}
    service.store.upsert_events([{
        "id": eid, "query": "cpu", "series_key": series_key(WEB2), "state": "firing", "started_ts": T0,
        "ended_ts": None, "peak_score": old["peak_score"], "event": old,
    }])
    response = TestClient(create_app(service), base_url=LOCAL).get("/api/v1/anomalies")
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert item["id"] == eid and item["peak_at"] is None and item["threshold"] is None


def test_api_items_and_backtest_events_are_one_event_document(client: TestClient) -> None:
    """The engine's event in /api/v1/anomalies and `vigil backtest --json`'s events validate
    against the one schema; the API adds only its own fields."""
    schema = Draft202012Validator(event_schema())
    (item,) = client.get("/api/v1/anomalies").json()["items"]
    own = set(EventItem.model_fields) - set(EventDocument.model_fields)
    document = {k: v for k, v in item.items() if k not in own}
    schema.validate(document)
    assert item["series"] == WEB2 and item["recent"][-1]["value"] == 90.0 and item["threshold"] == Detection().threshold

    backtest = CliRunner().invoke(cli_app, ["backtest", str(EXAMPLE), "--json"])
    assert backtest.exit_code == 0, backtest.output
    events = [json.loads(line) for line in backtest.stdout.splitlines()]
    assert events
    for event in events:
        schema.validate(event)
        assert set(event) == set(document)
    spike = events[-1]  # its points end at its end
    assert len(spike["recent"]) == 30 and iso(spike["recent"][-1]["t"]) == spike["ended_at"]


@pytest.mark.parametrize(
    ("params", "code", "detail"),
    [
        pytest.param({"start": "yesterday"}, 400, "start is 'yesterday'; write Unix seconds or RFC 3339", id="bad-start"),
        pytest.param({"end": "31/01/2026"}, 400, "end is '31/01/2026'; write Unix seconds or RFC 3339", id="bad-end"),
        pytest.param({"start": "nan"}, 400, "start is 'nan'; write Unix seconds", id="nan"),
        pytest.param({"end": "inf"}, 400, "end is 'inf'; write Unix seconds", id="infinity"),
        pytest.param({"start": str(T0 + 10), "end": str(T0)}, 400, "is after end", id="start-after-end"),
        pytest.param({"label": "instance=~web-("}, 400, "bad regular expression", id="bad-regex"),
        pytest.param({"label": "instance"}, 400, "write name=value, name!=value, name=~regex or name!~regex",
                     id="matcher-without-operator"),
        pytest.param({"label": "1abc=x"}, 400, "label is '1abc=x'", id="bad-label-name"),
        pytest.param({"limit": 1001}, 422, "limit", id="limit-over-max"),
        pytest.param({"limit": 0}, 422, "limit", id="limit-zero"),
        pytest.param({"offset": -1}, 422, "offset", id="negative-offset"),
        pytest.param({"state": "open"}, 422, "state", id="unknown-state"),
    ],
)  # fmt: skip
def test_anomalies_bad_parameters_say_what_is_wrong(
    stocked: tuple[TestClient, dict[str, str]], params: dict[str, Any], code: int, detail: str
) -> None:
    client, _ = stocked
    response = client.get("/api/v1/anomalies", params=params)
    assert response.status_code == code
    assert detail in str(response.json()["detail"])


# -- /api/v1/series ------------------------------------------------------------------------


def test_series_lists_anomalous_first_with_the_total(client: TestClient) -> None:
    body = client.get("/api/v1/series").json()
    assert body["total"] == 4
    assert [(i["query"], i["labels"]["instance"], i["status"]) for i in body["items"]][:2] == [
        ("cpu", "web-2", "anomalous"),
        ("cpu", "web-3", "warming_up"),
    ]
    ok = body["items"][2:]
    assert {(i["query"], i["status"]) for i in ok} == {("cpu", "ok"), ("mem", "ok")}
    assert ok[0]["score"] >= ok[1]["score"]  # then by score, highest first
    assert {i["id"] for i in body["items"]} == {
        i["id"] for i in client.get("/check_health").json()["items"]
    }


@pytest.mark.parametrize(
    ("params", "count"),
    [
        pytest.param({"query": "mem"}, 1, id="query"),
        pytest.param({"status": "ok"}, 2, id="status"),
        pytest.param({"label": "instance=web-1"}, 2, id="label"),
        pytest.param({"limit": 1, "offset": 3}, 1, id="page"),
    ],
)
def test_series_filters(client: TestClient, params: dict[str, Any], count: int) -> None:
    body = client.get("/api/v1/series", params=params).json()
    assert len(body["items"]) == count
    assert body["total"] == (4 if "limit" in params else count)


def test_series_detail_has_points_with_bands_and_its_own_events(
    client: TestClient, service: Service
) -> None:
    anomalous = client.get("/api/v1/series", params={"status": "anomalous"}).json()["items"][0]
    response = client.get(f"/api/v1/series/{anomalous['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["series"] == anomalous
    points = body["points"]
    assert set(points) == {"t", "value", "expected", "lower", "upper", "score"}
    assert len({len(v) for v in points.values()}) == 1
    assert len(points["t"]) == 200  # every sample fed (fewer than history_points)
    assert points["value"][-1] == 90.0
    banded = [i for i, e in enumerate(points["expected"]) if e is not None]
    assert banded, "the detector gives a band once warmed up"
    for i in banded:
        assert points["lower"][i] <= points["expected"][i] <= points["upper"][i]
    (event,) = body["events"]
    assert event["series"] == WEB2 and event["state"] == "firing"

    calm_one = next(i for i in client.get("/api/v1/series").json()["items"] if i["labels"] == WEB1)
    assert client.get(f"/api/v1/series/{calm_one['id']}").json()["events"] == []


def test_series_detail_since_keeps_recent_points(client: TestClient) -> None:
    sid = client.get("/api/v1/series", params={"status": "anomalous"}).json()["items"][0]["id"]
    last = T0 + 199 * STEP
    points = client.get(f"/api/v1/series/{sid}", params={"since": iso(last - 2 * STEP)}).json()[
        "points"
    ]
    assert points["t"] == [last - 2 * STEP, last - STEP, last]
    bad = client.get(f"/api/v1/series/{sid}", params={"since": "soon"})
    assert bad.status_code == 400


def test_unknown_series_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/series/0123456789abcdef")
    assert response.status_code == 404
    assert "/api/v1/series" in response.json()["detail"]


def test_a_series_whose_event_is_held_open_shows_the_events_peak_score_not_0(
    service: Service, client: TestClient
) -> None:
    feed(service, "cpu", [batch(WEB2, [T0 + 200 * STEP], [50.0])])  # back to normal: the event stays open
    (event,) = client.get("/api/v1/anomalies", params={"state": "firing"}).json()["items"]
    (item,) = [i for i in client.get("/api/v1/series").json()["items"] if i["labels"] == WEB2]
    latest = client.get(f"/api/v1/series/{item['id']}").json()["points"]["score"][-1]
    assert item["status"] == "anomalous" and latest < Detection().threshold
    assert item["score"] == event["peak_score"] >= Detection().threshold
    assert item["name"] == "cpu_utilization on web-2"
    assert "peak score" in item["reason"]


# -- /metrics ------------------------------------------------------------------------------

PER_SERIES = ("vigil_observed_value", "vigil_expected_value", "vigil_upper_bound", "vigil_lower_bound",
              "vigil_anomaly_score", "vigil_anomaly", "vigil_warming_up")
EVENT_FAMILIES = ("vigil_event_observed_value", "vigil_event_expected_value", "vigil_event_lower_bound",
                  "vigil_event_upper_bound", "vigil_event_peak_score")
PLAIN = {"Accept-Encoding": "identity"}


def families(client: TestClient) -> dict[str, Any]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


@pytest.fixture
def everything(tmp_path: Path) -> TestClient:
    """The `service` fixture's series with every family exported (export: all six names)."""
    s = make_service(tmp_path, export=EXPORTS)
    fill(s)
    return TestClient(create_app(s), base_url=LOCAL)


def catalogued(name: str, kind: str) -> bool:
    """Whether a parsed family is in the catalogue (the parser drops a counter's _total)."""
    key = f"{name}_total" if kind == "counter" else name
    return key in CATALOGUE and CATALOGUE[key][0] == kind


def test_metrics_families_are_all_in_the_catalogue(everything: TestClient) -> None:
    found = families(everything)
    assert "vigil_observed_value" in found and "vigil_samples" in found
    for name, family in found.items():
        assert catalogued(name, family.type), f"{name} ({family.type}) is not in exporter.CATALOGUE"
        assert (
            family.documentation
            == CATALOGUE[f"{name}_total" if family.type == "counter" else name][1]
        )


def test_default_export_is_the_score_and_the_verdict_per_series_and_the_open_events_peak(
    client: TestClient,
) -> None:
    found = families(client)
    shown = {name: len(f.samples) for name, f in found.items() if name in PER_SERIES + EVENT_FAMILIES}
    # four series: two lines each, and one line of each event family for web-2's open event
    assert shown == {"vigil_anomaly_score": 4, "vigil_anomaly": 4, **dict.fromkeys(EVENT_FAMILIES, 1)}
    text = client.get("/metrics").text
    for name in set(PER_SERIES) - {"vigil_anomaly_score", "vigil_anomaly"}:
        assert name not in text, f"{name} is not exported by default, not even its HELP line"
    per_series = [line for line in text.splitlines() if line.startswith("vigil_anomaly")]
    assert len(per_series) == 2 * 4


def test_a_query_exports_what_its_export_names_and_the_families_group_its_lines(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.engine.queries["mem"].export = ("observed", "bounds")
    fill(service)
    text = TestClient(create_app(service), base_url=LOCAL).get("/metrics").text
    found = {f.name: f for f in text_string_to_metric_families(text)}

    def queries_in(family: str) -> list[str]:
        return sorted(s.labels["query"] for s in found[family].samples)

    assert queries_in("vigil_anomaly_score") == queries_in("vigil_anomaly") == ["cpu", "cpu", "cpu"]
    assert queries_in("vigil_observed_value") == queries_in("vigil_upper_bound") == ["mem"]
    assert queries_in("vigil_lower_bound") == ["mem"]
    assert "vigil_expected_value" not in found and "vigil_warming_up" not in found
    names = [n for n in (line.split("{")[0] for line in text.splitlines()) if n in PER_SERIES + EVENT_FAMILIES]
    grouped = [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
    assert len(grouped) == len(set(grouped)), f"a family's lines are split: {grouped}"


def test_per_series_families_carry_metric_query_detector_and_the_series_labels(
    everything: TestClient,
) -> None:
    found = families(everything)
    for family in PER_SERIES:
        labels = sorted(
            (s.labels["query"], s.labels["metric"], s.labels["instance"])
            for s in found[family].samples
        )
        assert labels == [
            ("cpu", "cpu_utilization", "web-1"),
            ("cpu", "cpu_utilization", "web-2"),
            ("cpu", "cpu_utilization", "web-3"),
            ("mem", "memory_used_ratio", "web-1"),
        ], family
        for s in found[family].samples:
            assert set(s.labels) == {"metric", "query", "detector", "instance", "job"}
            assert s.labels["detector"] == "default" and s.labels["job"] == "node"

    def value(family: str, instance: str, query: str = "cpu") -> float:
        (v,) = [
            s.value
            for s in found[family].samples
            if s.labels["instance"] == instance and s.labels["query"] == query
        ]
        return float(v)

    assert value("vigil_observed_value", "web-2") == 90.0
    assert value("vigil_anomaly", "web-2") == 1 and value("vigil_anomaly", "web-1") == 0
    assert value("vigil_warming_up", "web-3") == 1 and value("vigil_warming_up", "web-1") == 0
    assert value("vigil_lower_bound", "web-2") < value("vigil_expected_value", "web-2")
    assert value("vigil_expected_value", "web-2") < value("vigil_upper_bound", "web-2") < 90.0
    assert value("vigil_anomaly_score", "web-2") >= Detection().threshold
    assert np.isnan(value("vigil_expected_value", "web-3"))  # no opinion while warming up
    (samples,) = [s for s in found["vigil_samples"].samples if s.labels == {"query": "cpu"}]
    assert samples.value == 403


def test_exported_values_read_back_as_the_series_latest_values_exactly(everything: TestClient) -> None:
    found = families(everything)
    items = everything.get("/api/v1/series").json()["items"]
    for it in items:
        detail = everything.get(f"/api/v1/series/{it['id']}").json()["points"]
        (observed,) = [s.value for s in found["vigil_observed_value"].samples
                       if s.labels["instance"] == it["labels"]["instance"] and s.labels["query"] == it["query"]]
        assert observed == pytest.approx(detail["value"][-1], rel=1e-6)  # history is float32


def test_event_families_show_the_open_events_peak_and_only_for_series_with_one(client: TestClient) -> None:
    found = families(client)
    (event,) = client.get("/api/v1/anomalies", params={"state": "firing"}).json()["items"]
    for family, field in (("vigil_event_observed_value", "observed"), ("vigil_event_expected_value", "expected"),
                          ("vigil_event_lower_bound", "lower"), ("vigil_event_upper_bound", "upper"),
                          ("vigil_event_peak_score", "peak_score")):
        (sample,) = found[family].samples
        assert sample.labels["instance"] == event["series"]["instance"] == "web-2"
        assert sample.value == pytest.approx(event[field], rel=1e-6), family


def test_the_band_stays_in_the_api_whatever_the_export(client: TestClient) -> None:
    assert "vigil_upper_bound" not in client.get("/metrics").text
    (web2,) = [i for i in client.get("/api/v1/series").json()["items"] if i["labels"] == WEB2]
    points = client.get(f"/api/v1/series/{web2['id']}").json()["points"]
    assert len(points["t"]) == 200
    assert points["value"][-1] == 90.0
    assert points["lower"][-1] < points["expected"][-1] < points["upper"][-1] < 90.0


def per_series_part(text: str) -> str:
    """The per-series lines of a /metrics text (the self-monitoring after them changes with every tick)."""
    return "".join(line + "\n" for line in text.splitlines() if line.startswith(("vigil_anomaly", "vigil_event_")))


def test_the_text_changes_after_a_tick_and_is_rendered_once_between_ticks(service: Service) -> None:
    client = TestClient(create_app(service), base_url=LOCAL)
    first = client.get("/metrics", headers=PLAIN).text
    assert client.get("/metrics", headers=PLAIN).text == first
    exposition = Exposition(service.metrics, service.engine.queries.values)
    kept = exposition.series()
    assert exposition.series() is kept, "no tick: the per-series part is not rendered again"

    feed(service, "cpu", [batch(WEB1, [T0 + 200 * STEP], [95.0])])  # a spike: web-1's score rises
    after = client.get("/metrics", headers=PLAIN).text
    assert per_series_part(after) != per_series_part(first)
    again = exposition.series()
    assert again is not kept and again.plain() != kept.plain()
    # only the query that ticked is rendered again: mem's lines are the very same bytes
    mem = [p for p in kept.pieces if b'query="mem"' in p.text]
    assert mem and all(any(p is q for q in again.pieces) for p in mem)
    cpu = [p for p in again.pieces if b'query="cpu"' in p.text]
    assert cpu and not any(p is q for p in cpu for q in kept.pieces)


def test_scrapes_at_the_same_time_render_once_and_get_the_same_bytes(service: Service) -> None:
    exposition = Exposition(service.metrics, service.engine.queries.values)
    before = exposition.series()
    feed(service, "cpu", [batch(WEB1, [T0 + 200 * STEP], [51.0])])
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: exposition.series(), range(32)))
        gzipped = set(pool.map(lambda _: exposition.body(gzip=True), range(32)))
    assert bodies[0] is not before and all(b is bodies[0] for b in bodies), "one render for all of them"
    assert len(gzipped) == 1


def test_an_evicted_series_leaves_the_text(service: Service) -> None:
    client = TestClient(create_app(service), base_url=LOCAL)
    assert 'instance="web-3"' in client.get("/metrics").text
    q = service.engine.queries["cpu"]
    q.last_data = T0 + 10**6
    q.table.state["last_seen"][q.table.index[series_key(WEB1)]] = q.last_data  # the others silent since
    _, evicted = q.evict()
    assert evicted == 2
    text = client.get("/metrics").text
    assert 'instance="web-3"' not in text and 'instance="web-1",job="node",metric="cpu_utilization"' in text


def test_metrics_are_gzipped_when_asked_and_plain_otherwise(service: Service) -> None:
    client = TestClient(create_app(service), base_url=LOCAL)
    plain = client.get("/metrics", headers=PLAIN)
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    assert plain.text.startswith("# HELP vigil_anomaly_score ")
    for asked in ("gzip", "deflate, gzip;q=0.8", "*"):
        with client.stream("GET", "/metrics", headers={"Accept-Encoding": asked}) as r:
            raw = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
            assert int(r.headers["content-length"]) == len(raw)
        assert raw[:2] == b"\x1f\x8b"
        assert gzip.decompress(raw) == plain.content, asked  # one member: any gzip reader takes it whole
        assert len(raw) < len(plain.content) / 2
    for refused in ("identity", "gzip;q=0", "br"):
        r = client.get("/metrics", headers={"Accept-Encoding": refused})
        assert "content-encoding" not in r.headers and r.content == plain.content, refused


def test_label_values_are_escaped(tmp_path: Path) -> None:
    service = make_service(tmp_path, names=("cpu",), export=("observed",))
    odd = {"__name__": "cpu_utilization", "instance": 'we"b\\1\nx', "path": "C:\\temp\\"}
    feed(service, "cpu", [batch(odd, [T0], [1.0])])
    client = TestClient(create_app(service), base_url=LOCAL)
    text = client.get("/metrics").text
    assert 'instance="we\\"b\\\\1\\nx"' in text
    assert 'path="C:\\\\temp\\\\"' in text
    (sample,) = families(client)["vigil_observed_value"].samples
    assert sample.labels["instance"] == odd["instance"]
    assert sample.labels["path"] == odd["path"]


# -- token, size and rate limits -----------------------------------------------------------

PROTECTED = [
    "/api/v1/anomalies",
    "/api/v1/series",
    "/check_health",
    "/metrics",
    "/openapi.json",
    "/api/v1",
    "/api/v1/summary",
]


@pytest.fixture
def guarded(tmp_path: Path) -> TestClient:
    service = make_service(tmp_path, Server(token=Secret(value="s3cret"), rate_limit=1000.0))
    return TestClient(create_app(service), base_url=LOCAL)


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
        pytest.param({"Authorization": "s3cret"}, id="no-scheme"),
        pytest.param({"Authorization": "Basic s3cret"}, id="other-scheme"),
        pytest.param({"Authorization": "Bearer s3cret "}, id="trailing-space"),
    ],
)
def test_token_is_required(guarded: TestClient, path: str, headers: dict[str, str]) -> None:
    response = guarded.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "s3cret" not in response.text


@pytest.mark.parametrize("path", PROTECTED)
def test_the_right_token_opens(guarded: TestClient, path: str) -> None:
    assert guarded.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200


@pytest.mark.parametrize(("path", "code"), [("/healthz", 200), ("/readyz", 503)])
def test_probes_need_no_token(guarded: TestClient, path: str, code: int) -> None:
    assert guarded.get(path).status_code == code


def test_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_TOKEN", "from-env")
    client = TestClient(
        create_app(make_service(tmp_path, Server(token=Secret(env="VIGIL_TEST_TOKEN")))), base_url=LOCAL
    )
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    client = TestClient(create_app(make_service(tmp_path, Server(max_request_bytes=1024))), base_url=LOCAL)
    response = client.post("/api/v1/anomalies", content=b"x" * 1025)
    assert response.status_code == 413
    assert "1024 bytes" in response.json()["detail"]
    assert (
        client.post("/api/v1/anomalies", content=b"x" * 1024).status_code == 405
    )  # within: routed


@pytest.mark.parametrize("length", ["9" * 5000, "1e3", "-1", " 5"])
def test_a_content_length_that_is_not_a_plain_number_is_413(tmp_path: Path, length: str) -> None:
    client = TestClient(create_app(make_service(tmp_path)), base_url=LOCAL)
    response = client.get("/api/v1/series", headers={"Content-Length": length})
    assert response.status_code == 413
    assert response.json() == {"detail": "request body over 65536 bytes"}


def test_more_requests_than_the_rate_limit_allows_get_429(tmp_path: Path) -> None:
    client = TestClient(create_app(make_service(tmp_path, Server(rate_limit=1.0))), base_url=LOCAL)
    codes = [client.get("/api/v1/series").status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # a burst of twice the rate, then refused
    assert client.get("/healthz").status_code == 200  # probes are never limited
    response = client.get("/api/v1/anomalies")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert "too many requests" in response.json()["detail"]


def test_the_rate_limit_is_per_client(tmp_path: Path) -> None:
    app = create_app(make_service(tmp_path, Server(rate_limit=1.0)))
    one = TestClient(app, client=("10.0.0.1", 40000), base_url=LOCAL)
    other = TestClient(app, client=("10.0.0.2", 40000), base_url=LOCAL)
    assert [one.get("/api/v1/series").status_code for _ in range(3)] == [200, 200, 429]
    assert other.get("/api/v1/series").status_code == 200


def test_many_clients_cost_no_memory_and_a_limited_one_stays_limited(tmp_path: Path) -> None:
    """The guard keeps a token bucket per client, but forgets full ones past 10,000 clients."""
    import vigil.http.app as http_app

    app = create_app(make_service(tmp_path, Server(rate_limit=1.0)))
    greedy = TestClient(app, client=("10.0.0.1", 40000), base_url=LOCAL)
    assert [greedy.get("/api/v1/series").status_code for _ in range(3)] == [200, 200, 429]
    guard = next(m for m in app.user_middleware if m.kwargs.get("dispatch")).kwargs["dispatch"]
    buckets = next(c.cell_contents for c in guard.__closure__ if isinstance(c.cell_contents, dict))
    for i in range(http_app._MAX_CLIENTS + 50):  # a crowd, each seen once long ago: their buckets are full
        buckets[f"crowd-{i}"] = http_app._Bucket(tokens=2.0, at=0.0)
    assert TestClient(app, client=("10.0.0.3", 40000), base_url=LOCAL).get("/api/v1/series").status_code == 200
    assert len(buckets) < 100  # the full ones were forgotten ...
    assert greedy.get("/api/v1/series").status_code == 429  # ... the empty one was not


# -- OpenAPI -------------------------------------------------------------------------------


def test_openapi_lists_the_endpoints(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) >= {
        "/check_health", "/api/v1/anomalies", "/api/v1/series", "/api/v1/series/{series_id}",
        "/metrics", "/healthz", "/readyz",
    }  # fmt: skip
    params = {p["name"] for p in doc["paths"]["/api/v1/anomalies"]["get"]["parameters"]}
    assert params == {"start", "end", "state", "query", "label", "search", "limit", "offset"}


def test_interactive_docs_pages_are_off(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_a_series_label_named_like_ours_is_kept_as_exported() -> None:
    from vigil.labels import exposition_labels

    text = exposition_labels({"__name__": "up", "query": "theirs", "detector": "x", "job": "api"}, "ours", "default")
    assert 'exported_query="theirs"' in text and 'query="ours"' in text
    assert 'exported_detector="x"' in text and 'detector="default"' in text and 'job="api"' in text
