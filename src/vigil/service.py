"""The live service: config -> sources, queries, engine, store, API; and `run` to serve it.

`build_service` turns a validated `Config` into the running parts (raising ConfigError
for what only shows when they are built: a detector parameter, a secret that cannot be
read). `serve` starts the engine, the notification sender (when receivers are configured)
and the HTTP server together and stops them cleanly on SIGTERM or SIGINT, saving state on
the way out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn

from vigil.config import Config
from vigil.engine import Engine, Query
from vigil.errors import ConfigError
from vigil.exporter import Metrics
from vigil.sources.base import Source
from vigil.sources.prometheus import PrometheusSource
from vigil.sources.replay import ReplaySource
from vigil.sources.system import SystemSource
from vigil.store import Store

if TYPE_CHECKING:
    from vigil.notify import Outbox, Sender

__all__ = ["Service", "build_service", "build_sources", "serve"]

log = logging.getLogger("vigil")


@dataclass
class Service:
    config: Config
    engine: Engine
    store: Store
    metrics: Metrics
    outbox: Outbox | None = None
    sender: Sender | None = None


def build_sources(config: Config) -> list[tuple[Source, dict[str, Any] | None, str]]:
    """(source, detection override, config location) for every configured query."""
    out: list[tuple[Source, dict[str, Any] | None, str]] = []
    if config.host_enabled:
        out.append((SystemSource("host", config.host.interval), config.host.detection, "host"))
    p = config.prometheus
    if p is not None:
        auth: tuple[str, str, str] | tuple[str, str] | None = None
        if p.basic_auth is not None:
            auth = ("basic", p.basic_auth.username, p.basic_auth.password.get())
        elif p.bearer_token is not None:
            auth = ("bearer", p.bearer_token.get())
        for i, q in enumerate(p.queries):
            source = PrometheusSource(
                q.name, p.url, q.query, q.step, lookback=p.lookback, auth=auth, timeout=p.timeout,
                max_series=q.max_series or config.limits.max_series_per_query, counter=q.counter, delay=p.delay,
            )
            out.append((source, q.detection, f"prometheus.queries[{i}]"))
    for i, r in enumerate(config.replay):
        out.append((ReplaySource(r.name, r.path, r.value_column, r.speed, r.loop), r.detection, f"replay[{i}]"))
    if not out:
        raise ConfigError("no source is configured: enable host, or add prometheus queries or replay files")
    return out


def build_service(config: Config, clock: Callable[[], float] = time.time) -> Service:
    queries = [
        Query(source, config.detection_for(override), config.limits, where)
        for source, override, where in build_sources(config)
    ]
    store = Store(config.data_dir)
    metrics = Metrics()
    engine = Engine(config, queries, store, metrics, clock=clock)
    service = Service(config=config, engine=engine, store=store, metrics=metrics)
    if config.notify.receivers:
        from vigil.notify import Outbox, Route, Sender, base_url, build_targets

        targets = build_targets(config.notify)
        service.outbox = Outbox(
            store, [Route.of(r) for r in config.notify.receivers], clock=clock, max_age=config.notify.max_event_age
        )
        service.sender = Sender(
            service.outbox, targets, config.notify, metrics, base_url(config), open_events=engine.open_event_ids,
            clock=clock,
        )
    return service


async def serve(service: Service) -> None:
    """Run the engine and the API until SIGTERM/SIGINT; save state before returning."""
    from vigil.api import create_app

    cfg = service.config.server
    service.engine.restore()
    await service.engine.validate()
    app = create_app(service)
    server = uvicorn.Server(
        uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                       timeout_graceful_shutdown=2, lifespan="off")
    )
    stop = asyncio.Event()
    engine_task = asyncio.create_task(service.engine.run(stop))
    sender_task = asyncio.create_task(service.sender.run(stop)) if service.sender else None
    log.info("vigil serving on http://%s:%d with %d queries", cfg.host, cfg.port, len(service.engine.queries))
    try:
        await server.serve()
    finally:
        stop.set()
        try:
            await engine_task
        finally:
            if sender_task is not None:
                await sender_task
            service.store.close()
    if not server.started:
        raise ConfigError(f"server.listen {cfg.listen}: could not listen there (in use, or not allowed)")
