"""Serving the live service: the engine, the notifier and the HTTP server until SIGTERM or SIGINT.

`serve` binds ``server.listen`` first, so an address it cannot listen on stops the start
with a ConfigError naming that key, before anything runs or "serving on" is logged. It
then restores the saved state and what people's feedback taught the series, checks every query with its source, runs the engine, the
notification sender (when receivers are configured) and the HTTP server together, and
stops them cleanly on SIGTERM or SIGINT, saving state on the way out.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

import uvicorn

from vigil.config import Server
from vigil.errors import ConfigError
from vigil.http import create_app
from vigil.http.protocol import ReadDeadline
from vigil.outputs.feedback import teach_all
from vigil.service.build import Service

__all__ = ["serve"]

log = logging.getLogger("vigil")


async def serve(service: Service) -> None:
    """Run the engine and the API until SIGTERM/SIGINT; save state before returning."""
    sockets = listening_sockets(service.config.server)
    try:
        await _serve(service, sockets)
    finally:
        for sock in sockets:
            sock.close()


async def _serve(service: Service, sockets: list[socket.socket]) -> None:
    cfg = service.config.server
    service.engine.restore()
    taught = teach_all(service.store, service.engine)
    if taught:
        log.info("%d series keep what feedback taught them (events marked not an incident)", taught)
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
        await server.serve(sockets)
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


def listening_sockets(server: Server) -> list[socket.socket]:
    """Sockets bound to `server.port` on every address `server.host` resolves to, as asyncio binds.

    ConfigError naming ``server.listen`` if the port is out of range, the host does not
    resolve, or no address can be bound (in use, not of this machine, not allowed).
    """
    try:
        if not 1 <= server.port <= 65535:
            raise ValueError("the port is not one from 1 to 65535")
        infos = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        return _bind_all(list(dict.fromkeys(infos)))
    except (OSError, ValueError) as exc:  # ValueError: also a host name IDNA cannot encode
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"server.listen is {server.listen!r}; cannot listen there ({reason.lower()}); "
            "write a free port on an address of this machine, such as 127.0.0.1:8080"
        ) from exc


def _bind_all(infos: list[tuple[int, int, int, str, Any]]) -> list[socket.socket]:
    """One bound socket per address; an address family this machine lacks is skipped, as asyncio does."""
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    raise
                sockets.pop().close()
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise OSError(errno.EADDRNOTAVAIL, "no address of this machine has that name")
    return sockets
