"""The Host allow-list: the API answers loopback names, the listen host and `server.allowed_hosts` only.

A web page can make a browser send requests to a loopback API under a name the attacker
controls (DNS rebinding) and read the answers, unless the API refuses requests whose Host
header is not one of its own names. The probes answer any name (kubelet sends the pod IP).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_api import TestClient, make_service

from vigil.config import Secret, Server, load_config
from vigil.errors import ConfigError
from vigil.http.app import create_app

DATA = ["/api/v1/series", "/api/v1/anomalies", "/api/v1/summary", "/check_health", "/metrics", "/openapi.json", "/"]


def client_for(tmp_path: Path, **server: object) -> TestClient:
    return TestClient(create_app(make_service(tmp_path, Server(rate_limit=1000.0, **server))))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8080", "LocalHost:8080", "localhost.:8080", "127.0.0.1", "127.0.0.1:8080", "[::1]",
     "[::1]:8080"],
)
def test_loopback_names_are_answered(tmp_path: Path, host: str) -> None:
    client = client_for(tmp_path)
    for path in DATA:
        response = client.get(path, headers={"Host": host})
        assert response.status_code in (200, 503), (path, response.text)  # /check_health: 503 while anomalous


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.evil.example:8080", "[::2]:8080",
     "testserver", "", "0.0.0.0:8080"],
)  # fmt: skip
def test_another_host_is_refused_with_the_key_to_set(tmp_path: Path, host: str) -> None:
    client = client_for(tmp_path)
    for path in DATA:
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 421, path
        detail = response.json()["detail"]
        assert detail == (
            f"Host {host!r} is not a name of this server; add it to server.allowed_hosts in the config ('*' for any)"
        )


def test_the_listen_host_is_answered(tmp_path: Path) -> None:
    client = client_for(tmp_path, listen="10.1.2.3:8080")
    assert client.get("/api/v1/series", headers={"Host": "10.1.2.3:8080"}).status_code == 200
    assert client.get("/api/v1/series", headers={"Host": "10.1.2.4:8080"}).status_code == 421
    assert client.get("/api/v1/series", headers={"Host": "localhost:8080"}).status_code == 200


def test_allowed_hosts_adds_names(tmp_path: Path) -> None:
    client = client_for(tmp_path, allowed_hosts=["vigil.example.org", "[fd00::5]", "Vigil"])
    for host in ("vigil.example.org", "VIGIL.example.org:443", "[fd00::5]:8080", "vigil:8080", "localhost"):
        assert client.get("/api/v1/series", headers={"Host": host}).status_code == 200, host
    assert client.get("/api/v1/series", headers={"Host": "other.example.org"}).status_code == 421


def test_a_star_answers_any_host(tmp_path: Path) -> None:
    client = client_for(tmp_path, allowed_hosts=["*"])
    for host in ("evil.example", "10.0.0.9:8080", "testserver"):
        assert client.get("/api/v1/series", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize(("path", "code"), [("/healthz", 200), ("/readyz", 503)])
def test_probes_answer_any_host(tmp_path: Path, path: str, code: int) -> None:
    assert client_for(tmp_path).get(path, headers={"Host": "10.244.1.7:8080"}).status_code == code


def test_the_host_is_checked_before_the_token(tmp_path: Path) -> None:
    client = client_for(tmp_path, token=Secret(value="s3cret"))
    response = client.get("/api/v1/series", headers={"Host": "evil.example", "Authorization": "Bearer s3cret"})
    assert response.status_code == 421


@pytest.mark.parametrize(
    "given", ["vigil:8080", "http://vigil", "vigil example", "", "[::1", "*.example.org"],
)
def test_config_refuses_an_allowed_host_that_is_not_a_host_name(tmp_path: Path, given: str) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text(f"server:\n  allowed_hosts: [vigil, {json.dumps(given)}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: server.allowed_hosts[1] is {given!r}; write a host name without a port, such as "
        "vigil.example.org, 10.0.0.5 or [::1], or '*' for any"
    )


def test_config_reads_allowed_hosts(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text('server:\n  allowed_hosts: [vigil, "*", 10.0.0.5, "[::1]"]\n')
    assert load_config(path).server.allowed_hosts == ["vigil", "*", "10.0.0.5", "[::1]"]
    assert Server().allowed_hosts == []
