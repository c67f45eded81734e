"""The live service: config -> sources, queries, engine, store, API; and `run` to serve it.

`build_service` turns a validated `Config` into the running parts (raising ConfigError
for what only shows when they are built: a detector parameter, a secret that cannot be
read, an ``auto/N`` shard on a hostname without an ordinal). `serve` starts the engine, the notification sender (when receivers are configured)
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
from vigil.sharding import Shard, parse_shard
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
    shard: Shard | None = None


def build_sources(config: Config, shard: Shard | None = None) -> list[tuple[Source, dict[str, Any] | None, str]]:
    """(source, detection override, config location) for every configured query.

    With a `shard`, Prometheus sources keep bookkeeping (and their series cap) only for
    the series it owns; the engine drops the others where they enter.
    """
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
            owns = None if shard is None else _owns(shard, q.name)
            source = PrometheusSource(
                q.name, p.url, q.query, q.step, lookback=p.lookback, auth=auth, timeout=p.timeout,
                max_series=q.max_series or config.limits.max_series_per_query, counter=q.counter, delay=p.delay,
                owns=owns,
            )
            out.append((source, q.detection, f"prometheus.queries[{i}]"))
    for i, r in enumerate(config.replay):
        out.append((ReplaySource(r.name, r.path, r.value_column, r.speed, r.loop), r.detection, f"replay[{i}]"))
    if not out:
        raise ConfigError("no source is configured: enable host, or add prometheus queries or replay files")
    return out


def _owns(shard: Shard, query: str) -> Callable[[str], bool]:
    return lambda key: shard.owns_key(query, key)


def build_service(config: Config, clock: Callable[[], float] = time.time, hostname: str | None = None) -> Service:
    """The running parts of `config`; `hostname` (default: this machine's) resolves ``shard: auto/N``."""
    shard = None if config.shard is None else parse_shard(config.shard, "shard", hostname)
    queries = [  # the host query is never split: each replica watches its own machine
        Query(source, config.detection_for(override), config.limits, where, shard=shard, split=where != "host")
        for source, override, where in build_sources(config, shard)
    ]
    store = Store(config.data_dir)
    metrics = Metrics(shard=shard)
    engine = Engine(config, queries, store, metrics, clock=clock)
    service = Service(config=config, engine=engine, store=store, metrics=metrics, shard=shard)
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
    sharded = f", shard {service.shard.text}" if service.shard is not None else ""
    log.info(
        "vigil serving on http://%s:%d with %d queries%s", cfg.host, cfg.port, len(service.engine.queries), sharded
    )
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
