"""`server.listen` is bound before anything starts: an address Vigil cannot listen on is one ConfigError.

`vigil run` used to log "serving on" and then die in uvicorn: an OverflowError traceback for
a port over 65535, an uvicorn log line and exit code 3 for a host that does not resolve or
a port in use. The config now refuses the first two when it is read; `listening_sockets`
is the last line for whatever reaches `serve` anyway (a port taken since, a model built
in code without validation).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.servers import free_port
from vigil.config import Config, Server
from vigil.errors import ConfigError
from vigil.service import build_service, serve
from vigil.service.serve import listening_sockets

ADVICE = "write a free port on an address of this machine, such as 127.0.0.1:8080"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_free_port_is_bound_and_serves_once_listening() -> None:
    port = free_port()
    sockets = listening_sockets(Server(listen=f"127.0.0.1:{port}"))
    try:
        assert [s.getsockname() for s in sockets] == [("127.0.0.1", port)]
        sockets[0].listen()
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        for sock in sockets:
            sock.close()


def test_a_port_in_use_is_a_config_error_naming_server_listen(taken_port: int) -> None:
    with pytest.raises(ConfigError) as caught:
        listening_sockets(Server(listen=f"127.0.0.1:{taken_port}"))
    assert str(caught.value) == f"server.listen is '127.0.0.1:{taken_port}'; cannot listen there (address already in use); {ADVICE}"


@pytest.mark.parametrize(
    ("listen", "reason"),
    [
        pytest.param("127.0.0.1:99999", "the port is not one from 1 to 65535", id="port-over-65535"),
        pytest.param("127.0.0.1:0", "the port is not one from 1 to 65535", id="port-zero"),
        pytest.param("nosuchhost.invalid:8080", "", id="host-unresolvable"),  # the resolver's words vary by libc
    ],
)
def test_an_unchecked_server_model_cannot_reach_uvicorn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, listen: str, reason: str
) -> None:
    """A `Server` built without validation is refused by `serve` before "serving on", never an OverflowError."""
    config = Config(server=Server.model_construct(listen=listen), data_dir=tmp_path / "data")
    service = build_service(config)
    try:
        with caplog.at_level(logging.INFO, logger="vigil"), pytest.raises(ConfigError) as caught:
            asyncio.run(serve(service))
    finally:
        service.store.close()
    message = str(caught.value)
    assert message.startswith(f"server.listen is {listen!r}; cannot listen there ({reason}")
    assert message.endswith(f"); {ADVICE}") and len(message.splitlines()) == 1
    assert "serving on" not in caplog.text
