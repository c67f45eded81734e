"""The mutes API: make, list and delete mutes; each refusal says what to write; the token guards writes;
mutes outlive a restart and reach the engine at once.

The app runs over a real service (store, engine, mutes) on an injected clock, through
Starlette's test client.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import vigil.outputs.mutes
from vigil.config import Config, Secret, Server, Window
from vigil.engine import Engine
from vigil.metrics import Metrics
from vigil.outputs.store import Store
from vigil.service import Service

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated")
    from fastapi.testclient import TestClient

from vigil.http.app import create_app

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
WINDOW = {"name": "backup", "matchers": '{instance="db-1"}', "weekdays": ["fri"], "start": "07:30", "end": "09:00"}


def service(tmp_path: Path, token: str | None = None, windows: list[dict[str, Any]] | None = None) -> Service:
    config = Config(
        data_dir=tmp_path, server=Server(rate_limit=1000.0, token=Secret(value=token) if token else None),
        maintenance=[Window.model_validate(w) for w in windows or []],
    )
    store = Store(tmp_path)
    engine = Engine(config, [], store, Metrics(), clock=lambda: NOW)
    return Service(config=config, engine=engine, store=store, metrics=engine.metrics)


def client(s: Service) -> TestClient:
    return TestClient(create_app(s), base_url="http://localhost")


def test_a_mute_is_made_listed_applied_and_deleted(tmp_path: Path) -> None:
    s = service(tmp_path)
    c = client(s)
    made = c.post("/api/v1/mutes", json={"matchers": '{instance="db-1", job=~"node|mysql"}', "duration": "2h",
                                          "comment": "disk swap"}, headers={"X-Vigil-Author": "ana"})
    assert made.status_code == 201, made.text
    mute = made.json()
    assert mute["starts_at"] == "2027-01-15T08:00:00Z" and mute["ends_at"] == "2027-01-15T10:00:00Z"
    assert (mute["comment"], mute["author"], mute["learn"], mute["active"]) == ("disk swap", "ana", False, True)
    assert c.get("/api/v1/mutes").json()["mutes"] == [mute]

    silences = s.mutes.silences
    covering = silences.covering({"instance": "db-1", "job": "mysql", "query": "q"}, NOW + 60)
    assert covering is not None and covering.name == f"mute:{mute['id']}"
    assert silences.covering({"instance": "db-1", "job": "web", "query": "q"}, NOW + 60) is None
    assert silences.covering({"instance": "db-1", "job": "node", "query": "q"}, NOW + 7200) is None, "over at its end"

    assert c.delete(f"/api/v1/mutes/{mute['id']}").status_code == 204
    assert c.get("/api/v1/mutes").json()["mutes"] == []
    assert silences.covering({"instance": "db-1", "job": "node", "query": "q"}, NOW + 60) is None
    gone = c.delete(f"/api/v1/mutes/{mute['id']}")
    assert gone.status_code == 404 and "GET /api/v1/mutes lists them" in gone.json()["detail"]


def test_a_future_mute_waits_and_an_explicit_end_is_kept(tmp_path: Path) -> None:
    c = client(service(tmp_path))
    body = {"matchers": "node_load1", "starts_at": "2027-01-16T00:00:00Z", "ends_at": str(NOW + 2 * 86400)}
    mute = c.post("/api/v1/mutes", json=body).json()
    assert (mute["starts_at"], mute["ends_at"], mute["active"]) == ("2027-01-16T00:00:00Z", "2027-01-17T08:00:00Z", False)


@pytest.mark.parametrize(("body", "says"), [
    pytest.param({"matchers": "{job=}", "duration": "1h"}, "matchers is '{job=}': cannot read it at character 6",
                 id="unreadable"),
    pytest.param({"matchers": "{}", "duration": "1h"}, "matches every series", id="everything"),
    pytest.param({"matchers": '{job=~"("}', "duration": "1h"}, "bad regular expression", id="bad-regex"),
    pytest.param({"matchers": '{job="a"}'}, "give either ends_at (a time) or duration", id="no-end"),
    pytest.param({"matchers": '{job="a"}', "duration": "1h", "ends_at": "2030-01-01T00:00:00Z"}, "not both",
                 id="both-ends"),
    pytest.param({"matchers": '{job="a"}', "duration": "90"}, "duration is '90'; write a duration such as",
                 id="bare-duration"),
    pytest.param({"matchers": '{job="a"}', "ends_at": "2020-01-01T00:00:00Z"}, "is not after starts_at",
                 id="end-before-start"),
    pytest.param({"matchers": '{job="a"}', "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-01-02T00:00:00Z"},
                 "is already past", id="past"),
    pytest.param({"matchers": '{job="a"}', "duration": "400d"}, "lasts over 366 days", id="too-long"),
    pytest.param({"matchers": '{job="a"}', "ends_at": "tomorrow"}, "ends_at is 'tomorrow'; write Unix seconds",
                 id="bad-time"),
])
def test_a_bad_mute_is_refused_saying_what_to_write(tmp_path: Path, body: dict[str, Any], says: str) -> None:
    c = client(service(tmp_path))
    got = c.post("/api/v1/mutes", json=body)
    assert got.status_code == 400 and says in got.json()["detail"], got.text
    assert "\n" not in got.json()["detail"]
    assert c.get("/api/v1/mutes").json()["mutes"] == []


def test_unknown_keys_and_oversized_fields_are_refused(tmp_path: Path) -> None:
    c = client(service(tmp_path))
    assert c.post("/api/v1/mutes", json={"matchers": '{a="b"}', "duration": "1h", "until": "x"}).status_code == 422
    assert c.post("/api/v1/mutes", json={"matchers": '{a="b"}', "duration": "1h", "comment": "x" * 1001}).status_code == 422


def test_the_number_of_mutes_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vigil.outputs.mutes, "MAX_MUTES", 3)
    c = client(service(tmp_path))
    for i in range(3):
        assert c.post("/api/v1/mutes", json={"matchers": f'{{n="{i}"}}', "duration": "1h"}).status_code == 201
    full = c.post("/api/v1/mutes", json={"matchers": '{n="4"}', "duration": "1h"})
    assert full.status_code == 409 and "delete some first" in full.json()["detail"]


def test_writes_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    c = client(service(tmp_path, token="s3cret"))
    body = {"matchers": '{a="b"}', "duration": "1h"}
    assert c.post("/api/v1/mutes", json=body).status_code == 401
    assert c.post("/api/v1/mutes", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    made = c.post("/api/v1/mutes", json=body, headers={"Authorization": "Bearer s3cret"})
    assert made.status_code == 201
    assert c.delete(f"/api/v1/mutes/{made.json()['id']}").status_code == 401
    assert c.get("/api/v1/mutes").status_code == 401
    assert len(c.get("/api/v1/mutes", headers={"Authorization": "Bearer s3cret"}).json()["mutes"]) == 1


def test_mutes_outlive_a_restart(tmp_path: Path) -> None:
    first = service(tmp_path)
    mute = client(first).post("/api/v1/mutes", json={"matchers": '{a="b"}', "duration": "1h"}).json()
    first.store.close()
    again = service(tmp_path)
    assert client(again).get("/api/v1/mutes").json()["mutes"] == [mute]
    assert again.mutes.silences.covering({"a": "b"}, NOW) is not None


def test_the_windows_are_listed_with_their_next_span(tmp_path: Path) -> None:
    c = client(service(tmp_path, windows=[WINDOW, {"name": "cron", "matchers": "up", "cron": "0 3 * * *",
                                                   "duration": "30m", "time_zone": "Europe/Paris"}]))
    backup, cron = c.get("/api/v1/mutes").json()["windows"]
    assert backup == {
        "name": "backup", "matchers": '{instance="db-1"}', "schedule": "07:30 to 09:00, fri", "time_zone": "UTC",
        "learn": False, "active": True,
        "next": {"starts_at": "2027-01-15T07:30:00Z", "ends_at": "2027-01-15T09:00:00Z"},
    }
    assert cron["active"] is False and cron["next"] == {"starts_at": "2027-01-16T02:00:00Z",
                                                        "ends_at": "2027-01-16T02:30:00Z"}


def test_a_mute_is_signed_by_the_author_header_else_anonymous(tmp_path: Path) -> None:
    c = client(service(tmp_path))
    body = {"matchers": '{a="b"}', "duration": "1h"}
    assert c.post("/api/v1/mutes", json=body).json()["author"] == "anonymous"
    assert c.post("/api/v1/mutes", json=body, headers={"X-Vigil-Author": " bo   b "}).json()["author"] == "bo b"
    assert c.post("/api/v1/mutes", json={**body, "author": "x"}).status_code == 422, "the body does not sign"
