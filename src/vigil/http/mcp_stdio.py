"""`vigil mcp`: the MCP server of a running `vigil run`, over stdio, for agents that start their servers.

An agent host (Claude Desktop, an IDE, an agent framework) starts ``vigil mcp`` as a child
process and talks MCP on its stdin and stdout. Every tool list and tool call is passed to
the /mcp endpoint of the `vigil run` at `url`, with the bearer token, so the tools, their
answers and the ``mcp.write`` switch are that Vigil's own: one implementation, the live
series, bands and events. The endpoint is stateless, so a Vigil that restarts answers
the next call again; while it is unreachable each call is a tool error that says so.
Nothing but MCP is written to stdout; the start's error is one line on stderr.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INTERNAL_ERROR,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
)

from vigil import __version__
from vigil.config import Server as ServerConfig
from vigil.errors import VigilError

__all__ = ["local_url", "serve_stdio"]

_TIMEOUT = httpx2.Timeout(30.0, read=60.0)
_READ = 60.0  # seconds an answer may take


def local_url(server: ServerConfig) -> str:
    """Where a `vigil run` with this ``server`` config answers on this machine: ``http://<listen>``, loopback for any-address."""
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "[::]", "") else server.host  # noqa: S104 - compared, not bound
    return f"http://{host}:{server.port}"


class _Refusals:
    """The status of the last answer of Vigil that was a refusal (401, 421, ...), to say why a connection failed."""

    def __init__(self) -> None:
        self.last: int | None = None

    async def __call__(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self.last = response.status_code


def _reason(exc: BaseException, refusals: _Refusals) -> str:
    """One line on why talking to Vigil failed (the SDK's own error says little: the status, or the innermost cause)."""
    if refusals.last == 401:
        return "the token was refused: give server.token with --token-file, --token-env or --config"
    if refusals.last == 421:
        return "Vigil does not answer to that host name: use the one of server.listen or add it to server.allowed_hosts"
    if refusals.last == 404:
        return "no /mcp there: mcp.enabled is false in that Vigil's config, or it is not Vigil"
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split()) or type(exc).__name__
    if refusals.last is not None:
        text = f"HTTP {refusals.last}: {text}"
    return text if len(text) <= 200 else text[:200] + "..."


class _Remote:
    """The /mcp endpoint of a running Vigil, one short connection per request.

    The endpoint is stateless, so a connection costs one initialize and holds nothing; the
    SDK's HTTP transport does not survive a refused connection, so a new one per request
    is also what lets the bridge outlive a restart of Vigil.
    """

    def __init__(self, http: httpx2.AsyncClient, endpoint: str, refusals: _Refusals) -> None:
        self.http, self.endpoint, self.refusals = http, endpoint, refusals

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Client]:
        self.refusals.last = None
        transport = streamable_http_client(self.endpoint, http_client=self.http)
        async with Client(transport, mode="legacy", read_timeout_seconds=_READ, cache=None) as remote:
            yield remote

    def failure(self, exc: BaseException) -> str:
        return f"cannot reach Vigil at {self.endpoint} ({_reason(exc, self.refusals)})"


def _bridge(remote: _Remote, instructions: str | None) -> Server[Any]:
    async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
        try:
            async with remote.connect() as client:
                return await client.list_tools(cursor=params.cursor if params else None)
        except Exception as exc:  # noqa: BLE001 - whatever the SDK's transport raised (in task groups): told in one line
            raise MCPError(code=INTERNAL_ERROR, message=remote.failure(exc)) from None

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        try:
            async with remote.connect() as client:
                return await client.call_tool(params.name, params.arguments or {})
        except Exception as exc:  # noqa: BLE001 - Vigil is down or restarting: the agent is told, the bridge lives on
            return CallToolResult(content=[TextContent(type="text", text=remote.failure(exc))], is_error=True)

    return Server(
        "vigil", version=__version__, title="Vigil", instructions=instructions,
        on_list_tools=list_tools, on_call_tool=call_tool,
    )


async def serve_stdio(url: str, token: str | None) -> None:
    """Serve MCP on stdin/stdout, passing each request to `url`/mcp; VigilError if it cannot be reached at start."""
    endpoint = url.rstrip("/") + "/mcp"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    refusals = _Refusals()
    async with httpx2.AsyncClient(headers=headers, timeout=_TIMEOUT, event_hooks={"response": [refusals]}) as http:
        remote = _Remote(http, endpoint, refusals)
        try:
            async with remote.connect() as client:
                instructions = client.instructions
        except Exception as exc:  # noqa: BLE001 - whatever the SDK's transport raised: one line, no traceback
            raise VigilError(f"cannot use Vigil's MCP endpoint at {endpoint}: {_reason(exc, refusals)}") from None
        server = _bridge(remote, instructions)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
