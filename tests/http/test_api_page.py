"""What the page asks of the API: the summary, series search and sparklines, the series
window and its anomalous points, event search with delivery states, and the page's files.

The service and its data are those of `test_api` (cpu: web-1 calm, web-2 a spike with an
open event, web-3 warming up; mem: web-1 calm).
"""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from test_api import LOCAL, STEP, T0, WEB1, WEB2, TestClient, feed, fill, make_service

from support.notifying import make_doc
from vigil.config import Secret, Server
from vigil.errors import SourceUnavailable
from vigil.http.app import create_app
from vigil.outputs.notify.outbox import Outbox, Route
from vigil.service import Service

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "vigil" / "http" / "web"


@pytest.fixture
def service(tmp_path: Path) -> Service:
    s = make_service(tmp_path)
    fill(s)
    return s


@pytest.fixture
def client(service: Service) -> TestClient:
    return TestClient(create_app(service), base_url=LOCAL)


def series_of(client: TestClient, labels: dict[str, str]) -> dict[str, object]:
    return next(i for i in client.get("/api/v1/series").json()["items"] if i["labels"] == labels and i["query"] == "cpu")


# -- /api/v1/summary -----------------------------------------------------------------------


def test_summary_counts_series_states_events_and_sources(client: TestClient) -> None:
    body = client.get("/api/v1/summary").json()
    health = client.get("/check_health").json()
    assert (body["series"], body["anomalous"], body["warming_up"]) == (4, 1, health["warming_up"])
    assert body["warming_up"] >= 1  # web-3 has three samples
    assert (body["events_firing"], body["events_last_hour"], body["events_last_day"]) == (1, 1, 1)
    assert body["history_points"] == 240
    assert body["now"] == "2023-11-14T23:13:20Z"  # the engine's clock, T0 + 1 h
    assert {name: s["status"] for name, s in body["sources"].items()} == {"cpu": "ok", "mem": "ok"}
    assert body["sources"]["cpu"]["series"] == 3 and body["sources"]["cpu"]["interval"] == STEP
    assert body["notifications"] == {}


def test_summary_says_which_source_is_down_and_which_has_not_answered(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    feed(service, "cpu", SourceUnavailable("prometheus at http://p:9090 refused the connection"))
    body = TestClient(create_app(service), base_url=LOCAL).get("/api/v1/summary").json()
    assert body["series"] == 0
    assert body["sources"]["cpu"]["status"] == "failing"
    assert "refused the connection" in body["sources"]["cpu"]["detail"]
    assert body["sources"]["mem"] == {
        "status": "waiting", "detail": "no successful fetch yet", "series": 0, "interval": STEP, "last_ok": None,
    }  # fmt: skip


def test_events_older_than_an_hour_count_for_the_day_only(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    old = make_doc(started=T0 + 3600 - 7200)  # the engine's clock is T0 + 1 h
    service.store.upsert_events([old])
    body = TestClient(create_app(service), base_url=LOCAL).get("/api/v1/summary").json()
    assert (body["events_last_hour"], body["events_last_day"]) == (0, 1)


# -- /api/v1/series: search, paging, sparklines ---------------------------------------------


@pytest.mark.parametrize(
    ("search", "instances"),
    [
        pytest.param("web-2", ["web-2"], id="a-label-value"),
        pytest.param("instance=web-1", ["web-1", "web-1"], id="name=value"),
        pytest.param("MEM web-1", ["web-1"], id="words-and-any-case"),
        pytest.param("nothing-like-this", [], id="no-match"),
    ],
)
def test_series_search_looks_in_query_name_and_labels(client: TestClient, search: str, instances: list[str]) -> None:
    body = client.get("/api/v1/series", params={"search": search}).json()
    assert [i["labels"]["instance"] for i in body["items"]] == instances
    assert body["total"] == len(instances)


def test_series_search_keeps_the_order_anomalous_first(client: TestClient) -> None:
    found = client.get("/api/v1/series", params={"search": "cpu"}).json()["items"]
    assert [i["id"] for i in found] == [i["id"] for i in client.get("/api/v1/series", params={"query": "cpu"}).json()["items"]]
    assert found[0]["labels"] == WEB2 and len(found) == 3


def test_series_search_pages_with_the_total(client: TestClient) -> None:
    body = client.get("/api/v1/series", params={"search": "web", "limit": 2, "offset": 1}).json()
    assert body["total"] == 4 and body["offset"] == 1
    assert [i["id"] for i in body["items"]] == [i["id"] for i in client.get("/api/v1/series").json()["items"][1:3]]


def test_sparklines_hold_the_last_points_and_mark_the_anomaly(client: TestClient) -> None:
    items = client.get("/api/v1/series", params={"sparkline": 30}).json()["items"]
    spike = next(i for i in items if i["labels"] == WEB2)["sparkline"]
    assert {len(v) for v in spike.values()} == {30}
    assert spike["value"][-1] == 90.0
    assert spike["anomalous"] == [False] * 29 + [True]
    calm = next(i for i in items if i["labels"] == WEB1)["sparkline"]
    assert not any(calm["anomalous"])


def test_items_have_no_sparkline_unless_asked(client: TestClient) -> None:
    assert all("sparkline" not in i for i in client.get("/api/v1/series").json()["items"])


# -- /api/v1/series/{id}: window and anomalous points ---------------------------------------


def test_series_detail_marks_the_anomalous_point_and_says_what_is_kept(client: TestClient, service: Service) -> None:
    body = client.get(f"/api/v1/series/{series_of(client, WEB2)['id']}").json()
    assert len(body["anomalous"]) == len(body["points"]["t"]) == 200
    assert [i for i, hot in enumerate(body["anomalous"]) if hot] == [199]
    threshold = service.engine.queries["cpu"].detection.threshold
    assert (body["threshold"], body["interval"], body["history_points"]) == (threshold, STEP, 240)


def test_series_window_keeps_the_points_that_long_before_the_latest(client: TestClient) -> None:
    sid = series_of(client, WEB2)["id"]
    body = client.get(f"/api/v1/series/{sid}", params={"window": "2m"}).json()
    last = T0 + 199 * STEP
    assert body["points"]["t"] == [last - k * STEP for k in range(8, -1, -1)]
    assert body["anomalous"] == [False] * 8 + [True]


def test_a_bad_window_says_what_to_write(client: TestClient) -> None:
    response = client.get(f"/api/v1/series/{series_of(client, WEB2)['id']}", params={"window": "15"})
    assert response.status_code == 400
    assert response.json()["detail"] == "window is '15'; write a duration such as '15s', '1m', '1h' or '1d'"


# -- /api/v1/anomalies: search, series id, delivery -----------------------------------------


def test_event_search_looks_in_the_summary_and_labels(client: TestClient) -> None:
    assert client.get("/api/v1/anomalies", params={"search": "web-2 is 90"}).json()["total"] == 1
    assert client.get("/api/v1/anomalies", params={"search": "web-1"}).json()["total"] == 0


def test_events_link_to_their_series(client: TestClient) -> None:
    (event,) = client.get("/api/v1/anomalies").json()["items"]
    assert event["series_id"] == series_of(client, WEB2)["id"]
    assert "delivery" not in event  # no receivers configured


def test_delivery_says_queued_retrying_sent_or_dead(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    service.outbox = Outbox(service.store, [Route("a"), Route("b"), Route("c"), Route("d")])
    doc = make_doc()
    service.store.upsert_events([doc])
    with service.store.connection(write=True) as db:
        db.execute("UPDATE outbox SET status = 'sent', attempts = 1 WHERE receiver = 'b'")
        db.execute("UPDATE outbox SET attempts = 3, last_error = '503' WHERE receiver = 'c'")
        db.execute("UPDATE outbox SET status = 'dead', attempts = 1 WHERE receiver = 'd'")
    (event,) = TestClient(create_app(service), base_url=LOCAL).get("/api/v1/anomalies").json()["items"]
    assert event["delivery"] == {
        "a": {"firing": "queued"}, "b": {"firing": "sent"}, "c": {"firing": "retrying"}, "d": {"firing": "dead"},
    }  # fmt: skip
    assert event["notifications"]["c"] == {"firing": "pending"}  # the older field stays as it was


# -- the page ------------------------------------------------------------------------------


def test_the_page_is_served_at_the_root_with_a_strict_content_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for asset in re.findall(r'(?:src|href)="(static/[^"]+)"', response.text):
        got = client.get(f"/{asset}")
        assert got.status_code == 200, asset
        assert got.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")


def test_the_json_index_moved_to_api_v1(client: TestClient) -> None:
    body = client.get("/api/v1").json()
    assert body["name"] == "vigil" and "/api/v1/summary" in body["endpoints"]


def test_an_unknown_page_file_is_404(client: TestClient) -> None:
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/../api.py").status_code == 404


def test_the_page_needs_no_token_but_its_data_does(tmp_path: Path) -> None:
    client = TestClient(create_app(make_service(tmp_path, Server(token=Secret(value="s3cret"), rate_limit=1000.0))), base_url=LOCAL)
    assert client.get("/").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/api/v1/summary").status_code == 401


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for path in WEB.iterdir():
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # the SVG namespace, not a download
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), f"{path.name} refers to another host"


def test_every_page_file_is_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vigil"]
    for path in WEB.iterdir():
        assert any(fnmatch(f"http/web/{path.name}", g) for g in globs), f"{path.name} would be missing from a wheel"


def test_the_page_files_are_the_ones_served(client: TestClient) -> None:
    assert {p.name for p in WEB.iterdir()} == {"index.html", "app.js", "chart.js", "mutes.js", "style.css"}
    assert client.get("/static/mutes.js").text == (WEB / "mutes.js").read_text()
    assert client.get("/static/chart.js").text == (WEB / "chart.js").read_text()
