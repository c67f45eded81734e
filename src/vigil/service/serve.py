"""Serving the live service: the engine, the notifier and the HTTP server until SIGTERM or SIGINT.

`serve` restores the saved state, checks every query with its source, then runs the
engine, the notification sender (when receivers are configured) and the HTTP server
together, and stops them cleanly on SIGTERM or SIGINT, saving state on the way out.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from vigil.errors import ConfigError
from vigil.http import create_app
from vigil.http.protocol import ReadDeadline
from vigil.service.build import Service

__all__ = ["serve"]

log = logging.getLogger("vigil")


async def serve(service: Service) -> None:
    """Run the engine and the API until SIGTERM/SIGINT; save state before returning."""
    cfg = service.config.server
    service.engine.restore()
    await service.engine.validate()
    app = create_app(service)
    server = uvicorn.Server(
        uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                       timeout_graceful_shutdown=2, lifespan="off", http=ReadDeadline)
    )
    stop = asyncio.Event()
    engine_task = asyncio.create_task(service.engine.run(stop))
    sender_task = asyncio.create_task(service.sender.run(stop)) if service.sender else None
    sharded = f", shard {service.shard.text}" if service.shard is not None else ""
    log.info(
        "vigil serving on http://%s:%d with %d queries%s", cfg.host, cfg.port, len(service.engine.queries), sharded
    )
    if cfg.host == "0.0.0.0" and not cfg.allowed_hosts:
        log.warning(
            "server.listen is %s but server.allowed_hosts is empty: requests that name this machine other than "
            "by localhost or %s get 421; list its names in server.allowed_hosts ('*' for any)", cfg.listen, cfg.host,
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
