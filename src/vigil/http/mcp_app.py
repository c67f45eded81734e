"""The MCP server of `vigil run`: the tools of `mcp_tools` on the official SDK, served at /mcp.

`mcp_server` registers the read tools always and the write tools (`give_feedback`,
`mute`) only when ``mcp.write`` is true.
`McpEndpoint` serves it over streamable HTTP, stateless (each POST stands alone, so a
restart of Vigil loses no session) with JSON answers, behind the API's guard in
`vigil.http.app` (Host allow-list, rate limit, bearer token, body size); the SDK's own Host
check is off, as the guard does it, and it still refuses a POST that is not JSON, so a
web page cannot post to it as a form. Its `lifespan` must run while it serves.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import ValidationError

from vigil import __version__
from vigil.http.mcp_tools import Tools
from vigil.http.parts import Parts

__all__ = ["MCP_PATH", "McpEndpoint", "mcp_server"]

MCP_PATH = "/mcp"


_INSTRUCTIONS = """\
Vigil watches metrics and learns each series' normal behaviour; an anomaly event opens when a \
series leaves its expected band. Start with list_anomalies (state=firing for what is wrong now) \
or summary; explain_anomaly says why one event fired; get_series shows a series' recent points \
and band; list_series finds series by label."""

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


class _Server(MCPServer):
    """The SDK's server, with arguments that fail a tool's schema refused in one line (pydantic's text is several)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            wrong = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.__cause__.errors()
            )
            raise ToolError(f"Error executing tool {name}: {wrong}") from exc.__cause__


def mcp_server(parts: Parts) -> MCPServer:
    """The MCP server over `parts`: read tools, and write tools when the config allows."""
    server: MCPServer = _Server(
        "vigil", title="Vigil", version=__version__, instructions=_INSTRUCTIONS, log_level="WARNING",
    )
    tools = Tools(parts)
    for read in (tools.list_anomalies, tools.explain_anomaly, tools.get_series, tools.list_series, tools.summary):
        server.add_tool(read, description=inspect.cleandoc(read.__doc__ or ""), annotations=_READ)
    if parts.config.mcp.write:
        for write in (tools.give_feedback, tools.mute):
            server.add_tool(write, description=inspect.cleandoc(write.__doc__ or ""), annotations=_WRITE)
    return server


class McpEndpoint:
    """/mcp: `asgi` answers requests at `path` while `lifespan` runs (the SDK's session manager)."""

    path = MCP_PATH

    def __init__(self, parts: Parts) -> None:
        server = mcp_server(parts)
        server.streamable_http_app(  # made for its session manager; its routes are not used: the API routes /mcp
            json_response=True, stateless_http=True, max_request_body_size=parts.config.server.max_request_bytes,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._manager = server.session_manager
        self.asgi = StreamableHTTPASGIApp(self._manager)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with self._manager.run():
            yield
