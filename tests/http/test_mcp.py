"""The MCP server, driven by the `mcp` SDK's own client: /mcp of a live `vigil run`, and `vigil mcp` over stdio.

One `vigil run` replays a CSV file whose spike opens an event that stays open, and requires
a bearer token. An agent connects over streamable HTTP (the initialize handshake), lists
the tools and finds the spike with `list_anomalies`, `explain_anomaly` and `get_series`;
without the token, or under another Host name, /mcp refuses as the API does. `vigil mcp`
is started as an agent host starts it (a child process on stdio) and answers the same.
The write tools and the refusals are checked in-process over the service of test_api.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from test_api import LOCAL, TestClient, fill, make_service
from typer.testing import CliRunner

from support.processes import VigilProcess
from support.servers import wait_until
from support.sources import spike_csv
from vigil.cli import app as cli_app
from vigil.config import Mcp
from vigil.http.app import create_app
from vigil.http.mcp_app import mcp_server
from vigil.outputs.feedback import event_feedback
from vigil.service import Service

TOKEN = "mcp-token-5d2e"  # noqa: S105 - this test's own token
READ_TOOLS = {"list_anomalies", "explain_anomaly", "get_series", "list_series", "summary"}
ROWS, SPIKE = 240, 200
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def vigil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VigilProcess]:
    root = tmp_path_factory.mktemp("mcp")
    spike_csv(root / "cpu.csv", ROWS, SPIKE)
    (root / "token").write_text(TOKEN + "\n")
    config = {
        "data_dir": "data",
        "host": {"enabled": False},
        "server": {"token": {"file": str(root / "token")}},
        "detection": {
            "detector": "ewma", "params": {"ewma": {"warmup": 5}}, "calibration_min_samples": 10,
            "min_rel_deviation": 0.3,  # noise is about 4 %: only the spike opens an event
            "resolve_after": 1000,  # and it is still firing while the agent asks
        },
        "replay": [{"name": "cpu", "path": str(root / "cpu.csv"), "value_column": "cpu", "speed": 6000}],
    }
    with VigilProcess(root / "vigil", config) as v:
        v.start()
        wait_until(lambda: _events(v), 30, 0.2, "the spike's event")
        yield v
        assert v.alive(), f"vigil died:\n{v.log()[-5000:]}"
        v.stop()
    assert "Traceback" not in v.log(), v.log()[-5000:]


def _events(v: VigilProcess) -> list[dict[str, Any]]:
    page = httpx.get(f"{v.url}/api/v1/anomalies", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    items: list[dict[str, Any]] = page.json()["items"] if page.status_code == 200 else []
    return items


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content)


async def _agent_session(client: Client) -> dict[str, Any]:
    """What an agent does first: list the tools, find what is firing, explain it, look at its series."""
    tools = (await client.list_tools()).tools
    firing = await client.call_tool("list_anomalies", {"state": "firing"})
    event_id = firing.structured_content["items"][0]["id"] if firing.structured_content else ""
    explained = await client.call_tool("explain_anomaly", {"event_id": event_id})
    series_id = explained.structured_content["event"]["series_id"] if explained.structured_content else ""
    return {
        "tools": tools, "firing": firing, "explained": explained,
        "series": await client.call_tool("get_series", {"series_id": series_id, "points": 5}),
        "unknown": await client.call_tool("explain_anomaly", {"event_id": "0123456789abcdef0123"}),
        "bad_matcher": await client.call_tool("list_anomalies", {"labels": ["job=~(web"]}),
        "bad_argument": await client.call_tool("get_series", {"series_id": "", "points": 0}),
    }


def _check_agent_session(seen: dict[str, Any], event: dict[str, Any]) -> None:
    tools = {t.name: t for t in seen["tools"]}
    assert set(tools) == READ_TOOLS  # mcp.write is false: no tool that changes anything
    for tool in tools.values():
        assert tool.description and tool.input_schema["type"] == "object" and tool.output_schema, tool.name
        assert tool.annotations is not None and tool.annotations.read_only_hint, tool.name
    assert tools["list_anomalies"].input_schema["properties"]["state"]["anyOf"][0]["enum"] == ["firing", "resolved"]

    firing = seen["firing"]
    assert not firing.is_error, _text(firing)
    assert firing.structured_content["total"] == 1
    brief = firing.structured_content["items"][0]
    assert brief["id"] == event["id"] and brief["summary"] == event["summary"] and brief["state"] == "firing"
    assert "recent" not in brief  # a listing is one line per event; explain_anomaly has the points

    explained = seen["explained"]
    assert not explained.is_error, _text(explained)
    doc = explained.structured_content["event"]
    assert doc["id"] == event["id"] and doc["observed"] == pytest.approx(95.0)
    assert doc["observed"] > doc["upper"]
    assert explained.structured_content["agreed"] == ["ewma"]
    assert len(doc["recent"]) > 5 and doc["recent"][-1]["value"] == pytest.approx(95.0)
    assert explained.structured_content["series_now"]["id"] == doc["series_id"]
    assert explained.structured_content["feedback"] == {"event_id": event["id"], "verdict": None, "history": []}
    assert json.loads(_text(explained))["event"]["summary"] == event["summary"]  # text content for older clients

    series = seen["series"]
    assert not series.is_error, _text(series)
    assert series.structured_content["series"]["status"] == "anomalous"
    assert len(series.structured_content["points"]["value"]) == 5
    assert [e["id"] for e in series.structured_content["events"]] == [event["id"]]
    assert series.structured_content["agreed"] == ["ewma"]

    for key, says in [
        ("unknown", "no event with id '0123456789abcdef0123'"),
        ("bad_matcher", "bad regular expression"),
        ("bad_argument", "series_id: String should have at least 1 character; points: Input should be greater"),
    ]:
        result = seen[key]
        assert result.is_error and says in _text(result), (key, _text(result))
        assert "\n" not in _text(result) and "Traceback" not in _text(result), key


def test_an_agent_finds_and_explains_the_spike_over_streamable_http(vigil: VigilProcess) -> None:
    async def session() -> tuple[str, dict[str, Any]]:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
            Client(streamable_http_client(f"{vigil.url}/mcp", http_client=http), mode="legacy") as client,
        ):
            assert client.server_info is not None
            return client.server_info.name, await _agent_session(client)

    name, seen = asyncio.run(session())
    assert name == "vigil"
    _check_agent_session(seen, _events(vigil)[0])


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, 401, id="wrong-token"),
        pytest.param({"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}, 421, id="other-host"),
    ],
)
def test_mcp_is_refused_as_the_api_is(vigil: VigilProcess, headers: dict[str, str], status: int) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    answer = httpx.post(f"{vigil.url}/mcp", json=initialize, timeout=5,
                        headers={"Accept": "application/json, text/event-stream", **headers})
    assert answer.status_code == status, answer.text
    assert "detail" in answer.json() and "vigil" not in answer.text


def test_mcp_answers_posts_only(vigil: VigilProcess) -> None:
    """Stateless, /mcp has no stream for a GET to hold open, and no session to DELETE."""
    auth = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/event-stream"}
    for method in ("GET", "DELETE"):
        assert httpx.request(method, f"{vigil.url}/mcp", headers=auth, timeout=5).status_code == 405, method


def test_the_sdk_client_without_the_token_gets_no_session(vigil: VigilProcess) -> None:
    async def session() -> None:
        async with Client(f"{vigil.url}/mcp", mode="legacy") as client:
            await client.list_tools()

    with pytest.raises(Exception) as caught:  # noqa: PT011 - the SDK wraps its error in task groups
        asyncio.run(session())
    leaf = caught.value
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert isinstance(leaf, MCPError)


def _stdio_env() -> dict[str, str]:
    """What the agent host gives `vigil mcp`: this checkout's code (the SDK passes only a few variables by default)."""
    keep = ("PATH", "HOME", "NUMBA_CACHE_DIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "PYTHONPATH": str(SRC)}


def test_vigil_mcp_answers_the_same_over_stdio(vigil: VigilProcess) -> None:
    command = StdioServerParameters(
        command=sys.executable, args=["-m", "vigil", "mcp", "--config", str(vigil.config_path)], env=_stdio_env(),
    )

    async def session() -> tuple[str | None, dict[str, Any]]:
        async with Client(command, mode="legacy") as client:
            return client.instructions, await _agent_session(client)

    instructions, seen = asyncio.run(session())
    assert instructions and "list_anomalies" in instructions  # the live Vigil's own, passed on
    _check_agent_session(seen, _events(vigil)[0])


def test_vigil_mcp_outlives_a_restart_of_vigil(tmp_path: Path) -> None:
    spike_csv(tmp_path / "cpu.csv")
    config = {"data_dir": "data", "host": {"enabled": False}, "detection": {"detector": "ewma"},
              "replay": [{"name": "cpu", "path": str(tmp_path / "cpu.csv"), "value_column": "cpu", "speed": 6000}]}
    command = StdioServerParameters(command=sys.executable, args=["-m", "vigil", "mcp", "--url", "URL"],
                                    env=_stdio_env())
    with VigilProcess(tmp_path / "vigil", config) as v:
        v.start()
        command.args[-1] = v.url

        async def session() -> list[Any]:
            async with Client(command, mode="legacy") as client:
                answers = [await client.call_tool("summary", {})]
                v.stop()
                answers.append(await client.call_tool("summary", {}))
                v.start()
                answers.append(await client.call_tool("summary", {}))
                return answers

        before, down, after = asyncio.run(session())
        v.stop()
    assert not before.is_error and not after.is_error
    assert after.structured_content["sources"]["cpu"]["status"] in ("ok", "waiting")
    assert down.is_error
    assert _text(down) == f"cannot reach Vigil at {v.url}/mcp (All connection attempts failed)"


def test_vigil_mcp_says_in_one_line_why_it_cannot_start(vigil: VigilProcess) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "mcp", "--url", vigil.url], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, env=_stdio_env(), timeout=60, check=False,
    )
    assert done.returncode == 2 and done.stdout == ""  # stdout is the protocol's: nothing else is written there
    assert done.stderr == (f"error: cannot use Vigil's MCP endpoint at {vigil.url}/mcp: the token was refused: "
                           "give server.token with --token-file, --token-env or --config\n")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--token-env", "NO_SUCH_VARIABLE_5d2e"], "environment variable NO_SUCH_VARIABLE_5d2e is not set",
                     id="unset-variable"),
        pytest.param(["--token-env", "A", "--token-file", "b"], "give --token-file or --token-env, not both",
                     id="two-tokens"),
        pytest.param(["--url", "127.0.0.1:8080"], "--url is '127.0.0.1:8080'; write Vigil's address", id="bare-url"),
    ],
)
def test_vigil_mcp_refuses_bad_options_in_one_line(args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli_app, ["mcp", *args])
    assert result.exit_code == 2 and says in result.output, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


@pytest.fixture
def service(tmp_path: Path) -> Service:
    svc = make_service(tmp_path)
    fill(svc)  # cpu web-2 ends in a spike: one open event
    return svc


def _tools(server: Any) -> tuple[set[str], Any]:
    async def names() -> set[str]:
        async with Client(server) as client:
            return {t.name for t in (await client.list_tools()).tools}

    return asyncio.run(names()), server


def test_write_tools_are_offered_only_when_the_config_allows(service: Service) -> None:
    assert _tools(mcp_server(service))[0] == READ_TOOLS  # mcp.write defaults to false
    service.config = service.config.model_copy(update={"mcp": Mcp(write=True)})
    assert _tools(mcp_server(service))[0] == READ_TOOLS | {"give_feedback", "mute"}


def test_an_agent_gives_a_verdict_and_mutes_as_the_api_would(service: Service) -> None:
    service.config = service.config.model_copy(update={"mcp": Mcp(write=True)})
    event_id = service.store.events(state="firing")[0][0]["id"]

    async def write() -> list[Any]:
        async with Client(mcp_server(service)) as client:
            return [
                await client.call_tool("give_feedback", {"event_id": event_id, "verdict": "not_an_incident",
                                                         "note": "a planned load test", "author": "agent-7"}),
                await client.call_tool("give_feedback", {"event_id": "nosuchevent", "verdict": "incident"}),
                await client.call_tool("give_feedback", {"event_id": event_id, "verdict": "maybe"}),
                await client.call_tool("mute", {"matchers": '{instance="web-2"}', "duration": "2h", "comment": "upgrade"}),
                await client.call_tool("mute", {"matchers": '{instance=~"("}', "duration": "2h"}),
                await client.call_tool("explain_anomaly", {"event_id": event_id}),
            ]

    given, unknown, bad, muted, bad_mute, explained = asyncio.run(write())
    assert not given.is_error, _text(given)
    verdict = given.structured_content["verdict"]
    assert (verdict["verdict"], verdict["author"], verdict["note"]) == ("not_an_incident", "agent-7", "a planned load test")
    assert verdict["teaches"]  # the series learned what no longer alerts
    stored = event_feedback(service.store, event_id).verdict
    assert stored is not None and stored.verdict == "not_an_incident" and stored.author == "agent-7"
    assert service.engine.queries["cpu"].accepted  # the engine's series was taught, as through the API
    assert unknown.is_error and "no event with id 'nosuchevent'" in _text(unknown)
    assert bad.is_error and "verdict: Input should be 'not_an_incident' or 'incident'" in _text(bad)
    assert not muted.is_error, _text(muted)
    (mute,) = service.mutes.list()
    assert (mute["matchers"], mute["comment"], mute["author"]) == ('{instance="web-2"}', "upgrade", "mcp")
    assert mute["id"] == muted.structured_content["id"]
    assert bad_mute.is_error and "\n" not in _text(bad_mute)
    assert explained.structured_content["feedback"]["verdict"]["verdict"] == "not_an_incident"


def test_one_event_by_id_in_the_api(service: Service) -> None:
    client = TestClient(create_app(service), base_url=LOCAL)
    listed = client.get("/api/v1/anomalies").json()["items"][0]
    assert client.get(f"/api/v1/anomalies/{listed['id']}").json() == listed
    missing = client.get("/api/v1/anomalies/0123456789abcdef0123")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no event with id '0123456789abcdef0123'; list them at /api/v1/anomalies"


def test_mcp_can_be_switched_off(service: Service) -> None:
    on = TestClient(create_app(service), base_url=LOCAL)
    assert "/mcp" in on.get("/api/v1").json()["endpoints"]
    assert "/mcp" not in on.get("/openapi.json").json()["paths"]  # JSON-RPC, not a REST operation
    service.config = service.config.model_copy(update={"mcp": Mcp(enabled=False)})
    off = TestClient(create_app(service), base_url=LOCAL)
    assert off.post("/mcp", json={}).status_code == 404
    assert "/mcp" not in off.get("/api/v1").json()["endpoints"]
