"""The feedback endpoints over `TestClient`: verdicts, undo, lists, the author, refusals, the metric.

The service is real (engine, store, real pipeline); `fill` opens one event (web-2's
spike). A verdict given here reaches the engine: the series' accepted deviation is read
from its pipeline.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from test_api import LOCAL, TestClient, fill, make_service

from vigil.config import Secret, Server
from vigil.config.model import NamedToken
from vigil.http.app import create_app
from vigil.service import Service

UNKNOWN = "0123456789abcdef0123"


def _client(tmp_path: Any, server: Server | None = None) -> tuple[TestClient, Service, str]:
    service = make_service(tmp_path, server)
    fill(service)
    (event,) = service.store.events()[0]
    return TestClient(create_app(service), base_url=LOCAL), service, event["id"]


@pytest.fixture
def api(tmp_path: Any) -> tuple[TestClient, Service, str]:
    return _client(tmp_path)


def _accepted(service: Service) -> float:
    q = service.engine.queries["cpu"]
    row = next(r for r, labels in enumerate(q.table.labels) if labels and labels.get("instance") == "web-2")
    return float(q.pipeline.accepted["above_level"][row])


def test_a_verdict_is_kept_listed_and_taught(api: tuple[TestClient, Service, str]) -> None:
    client, service, event = api
    response = client.post(f"/api/v1/anomalies/{event}/feedback", json={"verdict": "not_an_incident", "note": "deploy"},
                           headers={"X-Vigil-Author": "alice"})
    assert response.status_code == 200, response.text
    verdict = response.json()["verdict"]
    assert (verdict["verdict"], verdict["note"], verdict["author"], verdict["in_force"]) == (
        "not_an_incident", "deploy", "alice", True,
    )
    assert verdict["at"].endswith("Z") and "no longer alert" in verdict["teaches"]
    assert _accepted(service) == 90.0  # the spike's level
    assert client.get(f"/api/v1/anomalies/{event}/feedback").json()["verdict"] == verdict
    (item,) = client.get("/api/v1/anomalies").json()["items"]
    assert item["feedback"]["author"] == "alice"
    detail = client.get(f"/api/v1/series/{item['series_id']}").json()
    assert detail["events"][0]["feedback"]["verdict"] == "not_an_incident"
    page = client.get("/api/v1/feedback").json()
    assert page["total"] == 1 and page["items"][0]["event_id"] == event


def test_delete_undoes_the_verdict_and_what_it_taught(api: tuple[TestClient, Service, str]) -> None:
    client, service, event = api
    client.post(f"/api/v1/anomalies/{event}/feedback", json={"verdict": "not_an_incident"})
    response = client.delete(f"/api/v1/anomalies/{event}/feedback", headers={"X-Vigil-Author": "bob"})
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] is None
    (old,) = body["history"]
    assert (old["in_force"], old["undone_by"], old["author"]) == (False, "bob", "anonymous")
    assert math.isnan(_accepted(service))
    assert "feedback" not in client.get("/api/v1/anomalies").json()["items"][0]
    assert client.get("/api/v1/feedback", params={"state": "undone"}).json()["total"] == 1
    assert client.get("/api/v1/feedback", params={"state": "in_force"}).json()["total"] == 0
    again = client.delete(f"/api/v1/anomalies/{event}/feedback")
    assert again.status_code == 404 and "no verdict in force" in again.json()["detail"]


def test_every_verdict_is_counted(api: tuple[TestClient, Service, str]) -> None:
    client, service, event = api
    for verdict in ("incident", "not_an_incident", "incident"):
        client.post(f"/api/v1/anomalies/{event}/feedback", json={"verdict": verdict})
    client.delete(f"/api/v1/anomalies/{event}/feedback")
    text = client.get("/metrics").text
    assert 'vigil_feedback_total{verdict="incident"} 2.0' in text
    assert 'vigil_feedback_total{verdict="not_an_incident"} 1.0' in text
    assert 'vigil_feedback_total{verdict="undone"} 1.0' in text


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_event_is_404(api: tuple[TestClient, Service, str], method: str) -> None:
    client, _, _ = api
    response = client.request(method.upper(), f"/api/v1/anomalies/{UNKNOWN}/feedback", json={"verdict": "incident"})
    assert response.status_code == 404
    assert response.json()["detail"] == f"no event with id {UNKNOWN!r}; list them at /api/v1/anomalies"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param({"verdict": "maybe"}, "verdict is 'maybe'; write one of not_an_incident, incident", id="verdict"),
        pytest.param({}, "verdict is missing; write one of not_an_incident, incident", id="no-verdict"),
        pytest.param({"verdict": "incident", "note": "x" * 1001}, "note is 1001 characters; write at most 1000",
                     id="long-note"),
        pytest.param({"verdict": "incident", "by": "me"}, "by is not a known key; send verdict and, if you like, note",
                     id="unknown-key"),
        pytest.param([1, 2], "the body is not a JSON object", id="a-list"),
        pytest.param('{"verdict": "incident", "note": "\\ud800"}', "note: input should be a valid string, unable to parse raw data as a unicode string",
                     id="lone-surrogate"),
        pytest.param("not json", "the body is not a JSON object", id="not-json"),
    ],
)
def test_a_bad_body_gets_one_line_saying_what_to_send(
    api: tuple[TestClient, Service, str], body: Any, detail: str
) -> None:
    client, service, event = api
    url = f"/api/v1/anomalies/{event}/feedback"
    if isinstance(body, str):
        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post(url, json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
    assert client.get("/api/v1/feedback").json()["total"] == 0


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_another_site_could_send_without_asking_is_refused(
    api: tuple[TestClient, Service, str], kind: str
) -> None:
    """A web page may POST these kinds across sites with no preflight; only JSON is read, so none marks an event."""
    client, _, event = api
    response = client.post(f"/api/v1/anomalies/{event}/feedback", content='{"verdict": "not_an_incident"}',
                           headers={"Content-Type": kind})
    assert response.status_code == 422
    assert client.get("/api/v1/feedback").json()["total"] == 0


def test_a_bad_parameter_of_the_list_says_which(api: tuple[TestClient, Service, str]) -> None:
    client, _, _ = api
    response = client.get("/api/v1/feedback", params={"limit": "0"})
    assert response.status_code == 422
    assert response.json()["detail"] == "limit is '0'; input should be greater than or equal to 1"


def test_the_author_header_is_bounded_and_made_printable(api: tuple[TestClient, Service, str]) -> None:
    client, _, event = api
    url = f"/api/v1/anomalies/{event}/feedback"
    long = client.post(url, json={"verdict": "incident"}, headers={"X-Vigil-Author": "a" * 65})
    assert long.status_code == 422 and "X-Vigil-Author is 65 characters; write at most 64" in long.json()["detail"]
    odd = client.post(url, json={"verdict": "incident"}, headers={"X-Vigil-Author": "  eve\t \x7f smith "})
    assert odd.json()["verdict"]["author"] == "eve smith"


def test_a_named_token_signs_the_verdict_and_the_header_cannot_change_it(tmp_path: Any) -> None:
    server = Server(token=Secret(value="shared"), rate_limit=1000.0,
                    tokens=[NamedToken(name="alice", token=Secret(value="alices-token"))])
    client, _, event = _client(tmp_path, server)
    url = f"/api/v1/anomalies/{event}/feedback"
    assert client.post(url, json={"verdict": "incident"}).status_code == 401
    assert client.delete(url).status_code == 401
    assert client.post(url, json={"verdict": "incident"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    signed = client.post(url, json={"verdict": "incident"},
                         headers={"Authorization": "Bearer alices-token", "X-Vigil-Author": "mallory"})
    assert signed.json()["verdict"]["author"] == "alice"
    shared = client.post(url, json={"verdict": "incident"},
                         headers={"Authorization": "Bearer shared", "X-Vigil-Author": "bob"})
    assert shared.json()["verdict"]["author"] == "bob"
    assert client.get("/api/v1/feedback").status_code == 401


def test_token_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="alice appear more than once"):
        Server(tokens=[NamedToken(name="alice", token=Secret(value="a")), NamedToken(name="alice", token=Secret(value="b"))])


def test_openapi_documents_the_feedback_endpoints(api: tuple[TestClient, Service, str]) -> None:
    client, _, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    operation = paths["/api/v1/anomalies/{event_id}/feedback"]
    assert set(operation) == {"get", "post", "delete"}
    assert {"401", "404", "422"} <= set(operation["post"]["responses"])
    assert operation["post"]["requestBody"]["required"] is True
    assert "/api/v1/feedback" in paths
    assert "/api/v1/anomalies/{id}/feedback" in client.get("/api/v1").json()["endpoints"]
