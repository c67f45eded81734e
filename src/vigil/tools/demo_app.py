"""A demo web service with realistic Prometheus metrics and anomalies on demand.

It gives Vigil something to watch: a Prometheus server scrapes its ``/metrics``, and a
person or a test injects an anomaly with ``POST /inject`` and sees Vigil find it. The
traffic and the injections are simulated (`vigil.tools.demo_simulation`); this module
serves them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from vigil.http.server import after_uvicorn
from vigil.tools.demo_injections import InjectionRequest
from vigil.tools.demo_simulation import Simulation

__all__ = ["create_app", "serve"]

log = logging.getLogger(__name__)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        kind, where = err.get("type"), tuple(err.get("loc", ()))
        if kind == "json_invalid":
            at = f" at character {where[1]}" if len(where) > 1 else ""
            parts.append(f"the body is not valid JSON{at}")
            continue
        if kind == "missing" and where == ("body",):
            parts.append('a JSON body is required, such as {"kind": "spike"}')
            continue
        loc = ".".join(str(p) for p in where if p != "body")
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if kind in ("literal_error", "float_parsing", "float_type", "extra_forbidden"):
            msg += f" (got {err.get('input')!r})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "invalid injection: " + "; ".join(parts)


def create_app(
    seed: int = 0,
    day_seconds: float = 86400.0,
    tick: float = 0.25,
    clock: Callable[[], float] = time.time,
    *,
    max_catchup: float = 60.0,
) -> FastAPI:
    """Build the demo app; its `Simulation` is ``app.state.simulation``.

    The background traffic task runs while the app's lifespan does (under uvicorn, or
    inside ``with TestClient(app)``); scrapes and injections catch the ticks up anyway.

    >>> app = create_app(seed=1, day_seconds=60.0, clock=lambda: 0.0)
    >>> sorted({r.path for r in app.routes if not r.path.startswith(("/docs", "/openapi", "/redoc"))})
    ['/', '/healthz', '/inject', '/metrics']
    """
    sim = Simulation(seed, day_seconds, tick, clock, max_catchup)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(sim)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_traffic(sim), name="demo-traffic")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="Vigil demo app",
        summary="A simulated web service with Prometheus metrics and anomalies on demand.",
        lifespan=lifespan,
    )
    app.state.simulation = sim
    app.state.registry = registry

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": _validation_message(exc), "detail": _jsonable_errors(exc)},
            status_code=422,
        )

    @app.get("/")
    async def index() -> dict[str, Any]:
        return {
            "app": "vigil demo app",
            "about": "a simulated web service for trying Vigil: realistic Prometheus metrics "
            "with a daily shape, and anomalies injected on demand",
            "seed": sim.seed,
            "day_seconds": sim.day_seconds,
            "tick": sim.tick,
            "endpoints": {
                "GET /metrics": "Prometheus metrics",
                "POST /inject": 'start an anomaly: {"kind": "spike"|"shift"|"latency"|"errors", '
                '"magnitude": number, "duration": seconds or null (shift only)}',
                "GET /inject": "active injections",
                "DELETE /inject": "end every injection",
                "GET /healthz": "liveness",
                "GET /docs": "OpenAPI page",
            },
            "metrics": [
                "demo_http_requests_total",
                "demo_http_request_duration_seconds",
                "demo_cpu_utilization",
                "demo_queue_depth",
                "demo_inflight_requests",
            ],
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    @app.post("/inject", status_code=201)
    async def inject(body: InjectionRequest) -> JSONResponse:
        now = sim.clock()
        try:
            inj = sim.inject(body, now)
        except OverflowError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        log.info("demo app: injected %s of magnitude %s", inj.kind, inj.magnitude)
        return JSONResponse(inj.to_json(now), status_code=201)

    @app.get("/inject")
    async def list_injections() -> dict[str, Any]:
        now = sim.clock()
        return {"now": now, "active": [i.to_json(now) for i in sim.active(now)]}

    @app.delete("/inject")
    async def clear_injections() -> dict[str, int]:
        return {"cleared": sim.clear()}

    return app


def _jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        item = {k: v for k, v in err.items() if k in ("type", "loc", "msg")}
        item["msg"] = str(item.get("msg", "")).removeprefix("Value error, ")
        out.append(item)
    return out


async def _traffic(sim: Simulation) -> None:
    """Advance the simulation every tick until cancelled; one failure never stops it."""
    while True:
        try:
            sim.advance()
        except Exception:  # the loop must go on; the log says what broke
            log.exception("demo app: simulating traffic failed")
        await asyncio.sleep(sim.tick)


def serve(
    host: str = "127.0.0.1",
    port: int = 9100,
    seed: int = 0,
    day_seconds: float = 86400.0,
    tick: float = 0.25,
) -> None:
    """Run the demo app with uvicorn until SIGINT or SIGTERM, then return normally.

    Parameters
    ----------
    host, port
        Where to listen (loopback by default).
    seed
        Seed of the simulated traffic and noise (a non-negative integer).
    day_seconds
        Period of the daily shape, in seconds.
    tick
        Seconds between simulated traffic steps.

    Uvicorn shuts down gracefully on either signal and then re-raises it to the handler
    that was in place before it started. Here that handler is a no-op while uvicorn runs,
    so Ctrl-C prints no traceback and SIGTERM does not kill the process: the call returns
    and the caller exits with its own status. Off the main thread no signal is handled.
    """
    app = create_app(seed=seed, day_seconds=day_seconds, tick=tick)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        ws="none",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    with after_uvicorn():
        server.run()
