"""The HTTP app: the routers of each area behind one guard (body size, Host, rate, token).

`create_app(parts)` builds the FastAPI app from the running parts (`Parts`). Every
endpoint but /healthz and /readyz answers only requests whose Host header names this
server: a loopback name, the host of `server.listen`, or one of `server.allowed_hosts`
(so a web page cannot read a loopback API through DNS rebinding). Every endpoint but the
probes and the page (``/`` and its files under ``/static/``, which hold no data) needs a
bearer token when any is configured (`server.token`, or one of `server.tokens`, whose
name the request then carries in ``request.state.token_name``); request bodies are capped; each client gets a token
bucket of `rate_limit` requests per second. Invalid parameters get a 4xx whose `detail`
says what was wrong. The OpenAPI document is at /openapi.json (the interactive docs pages
are off: they load scripts from a CDN), a JSON index of the endpoints at /api/v1. The MCP
server (`mcp_app`, on unless ``mcp.enabled`` is false) answers at /mcp behind the same
guard; it speaks JSON-RPC, so it is not in the OpenAPI document. The app's lifespan runs it.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.routing import Route

from vigil import __version__
from vigil.config import Server
from vigil.engine import Engine
from vigil.http.events import events_router
from vigil.http.feedback import feedback_router
from vigil.http.health import OPEN, health_router
from vigil.http.models import GUARDED
from vigil.http.mutes import mutes_router
from vigil.http.page import page_router
from vigil.http.parts import Parts
from vigil.http.series import series_router

if TYPE_CHECKING:
    from vigil.http.mcp_app import McpEndpoint

__all__ = ["create_app"]

_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
PACE = 0.005  # seconds between the starts of two requests while a tick takes in samples

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class _Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)


def _host_name(host: str) -> str:
    """A Host header or an allowed host as compared: ``Vigil.Example:8080`` -> ``vigil.example``, ``[::1]:80`` -> ``::1``."""
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return host.partition(":")[0].rstrip(".").lower()


def _answered_hosts(cfg: Server) -> frozenset[str] | None:
    """The host names the API answers to; None: any."""
    names = {_host_name(h) for h in (*_LOOPBACK, cfg.host, *cfg.allowed_hosts)}
    return None if "*" in names else frozenset(names)


def _wrong_host(request: Request, answered: frozenset[str] | None) -> Response | None:
    given = request.headers.get("host", "")
    if answered is None or _host_name(given) in answered:
        return None
    shown = repr(given if len(given) <= 80 else given[:80] + "...")
    detail = f"Host {shown} is not a name of this server; add it to server.allowed_hosts in the config ('*' for any)"
    return JSONResponse({"detail": detail}, 421)


def _body_too_large(length: str | None, limit: int) -> bool:
    """Whether a Content-Length is over `limit` bytes or not a plain number (``²``, a 5,000-digit one)."""
    if length is None:
        return False
    return not (length.isascii() and length.isdigit()) or len(length) > 18 or int(length) > limit


_MAX_CLIENTS = 10_000  # token buckets kept before the full ones are forgotten


def _forget_full_buckets(buckets: dict[str, _Bucket], now: float, rate: float) -> None:
    """Drop the buckets that have refilled (a new one starts full anyway): many clients cost no memory."""
    for client in [c for c, b in buckets.items() if b.tokens + (now - b.at) * rate >= 2 * rate]:
        del buckets[client]


def _guard(cfg: Server, engine: Engine) -> Callable[[Request, Handler], Awaitable[Response]]:
    """The middleware every request goes through: body size, then Host, rate and token; while
    a tick takes in samples, requests start at most one per `PACE` seconds, so that however
    many clients load the API, the tick gets most of the interpreter and keeps its pace."""
    tokens = [(f"Bearer {text}".encode(), name) for text, name in cfg.bearer_tokens().items()]
    answered = _answered_hosts(cfg)
    buckets: dict[str, _Bucket] = {}
    pace = asyncio.Lock()

    async def guard(request: Request, call_next: Handler) -> Response:
        if _body_too_large(request.headers.get("content-length"), cfg.max_request_bytes):
            return JSONResponse({"detail": f"request body over {cfg.max_request_bytes} bytes"}, 413)
        path = request.url.path
        if path in OPEN:
            return await call_next(request)
        refused = _wrong_host(request, answered)
        if refused is not None:
            return refused
        client = request.client.host if request.client else "?"
        now = time.monotonic()
        if len(buckets) >= _MAX_CLIENTS and client not in buckets:
            _forget_full_buckets(buckets, now, cfg.rate_limit)
        b = buckets.setdefault(client, _Bucket(tokens=2 * cfg.rate_limit))
        b.tokens = min(2 * cfg.rate_limit, b.tokens + (now - b.at) * cfg.rate_limit)
        b.at = now
        if b.tokens < 1:
            return JSONResponse({"detail": "too many requests; slow down"}, 429, headers={"Retry-After": "1"})
        b.tokens -= 1
        page = path == "/" or path.startswith("/static/")  # no data in them; the page asks for the token
        request.state.token_name = None
        if tokens and not page:
            given = request.headers.get("authorization", "").encode()
            known = [name for bearer, name in tokens if hmac.compare_digest(given, bearer)]
            if not known:
                return JSONResponse(
                    {"detail": "missing or wrong bearer token"}, 401, headers={"WWW-Authenticate": "Bearer"}
                )
            request.state.token_name = known[0]
        if engine.busy:
            async with pace:
                await asyncio.sleep(PACE)
        return await call_next(request)

    return guard


def _lifespan(mcp: McpEndpoint | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if mcp is None:
            yield
            return
        async with mcp.lifespan():
            yield

    return lifespan


def create_app(parts: Parts) -> FastAPI:
    """The API, the page and the MCP server over `parts`."""
    mcp = None
    if parts.config.mcp.enabled:
        from vigil.http.mcp_app import McpEndpoint  # the SDK is loaded by a server, not by every `vigil` command

        mcp = McpEndpoint(parts)
    app = FastAPI(
        title="Vigil", version=__version__, docs_url=None, redoc_url=None, lifespan=_lifespan(mcp),
        description="Real-time anomaly detection for metrics: per-series health, events and bands.",
    )
    app.middleware("http")(_guard(parts.config.server, parts.engine))
    app.include_router(health_router(parts))  # its probes are not guarded: it says which refusals each route has
    for router in (series_router(parts), events_router(parts), feedback_router(parts), mutes_router(parts),
                   page_router(mcp is not None)):
        app.include_router(router, responses=GUARDED)
    if mcp is not None:
        # POST only: stateless, it has no stream for a GET to hold open (the spec lets it answer 405) and no session to DELETE
        app.router.routes.append(Route(mcp.path, mcp.asgi, methods=["POST"], include_in_schema=False))
    return app
