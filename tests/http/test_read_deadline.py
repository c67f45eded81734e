"""A real uvicorn server on a loopback port, with Vigil's protocol: requests that never arrive whole are cut off.

uvicorn alone holds a connection for ever when its request line, headers or body never
finish (slowloris). `ReadDeadline` closes it once the request has taken `read_timeout`
seconds, here lowered to half a second by a subclass so the tests run fast; each socket
has a 10 s timeout, so a server that never closes fails the test instead of hanging it.
The same server shows the Host check and that whole requests, and idle keep-alive
connections, are served as before.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from test_api import fill, make_service

from support.processes import VigilProcess
from support.servers import wait_until
from vigil.http.app import create_app
from vigil.http.protocol import READ_TIMEOUT, ReadDeadline

pytestmark = pytest.mark.timeout(60)

GUARD = 10.0  # seconds a socket waits for the server before the test fails


class HalfSecond(ReadDeadline):
    read_timeout = 0.5


TIMEOUT_BODY = b"request not received whole within 0.5 s; send the request line, headers and body at once\n"


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    service = make_service(tmp_path_factory.mktemp("live"))
    fill(service)
    # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only when the listening socket says TCP
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(service), log_level="warning", lifespan="off", ws="none", http=HalfSecond)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, 0.01, "uvicorn to start")
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        service.store.close()
    assert not thread.is_alive(), "uvicorn did not stop"


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=GUARD)


def until_closed(conn: socket.socket) -> bytes:
    """All the server sends until it closes the connection."""
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param(b"GET /api/v1/series HT", id="request-line"),
        pytest.param(b"GET /api/v1/series HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n", id="headers"),
    ],
)
def test_a_request_never_finished_gets_408_and_is_closed(port: int, partial: bytes) -> None:
    with connect(port) as conn:
        conn.sendall(partial)
        head, _, body = until_closed(conn).partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 408 Request Timeout", b"content-type: text/plain; charset=utf-8", b"connection: close",
        b"content-length: %d" % len(TIMEOUT_BODY),
    ]
    assert body == TIMEOUT_BODY


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(port: int) -> None:
    with connect(port) as conn:
        assert until_closed(conn) == b""


def test_a_body_trickled_for_ever_is_cut_off(port: int) -> None:
    """After the headers the client sends one byte of its 1,000 every 0.1 s: the connection is closed."""
    with connect(port) as conn:
        conn.sendall(b"POST /api/v1/anomalies HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n")
        received, closed, sent = b"", False, 0
        deadline = time.monotonic() + GUARD
        while not closed and sent < 1000 and time.monotonic() < deadline:
            readable, _, _ = select.select([conn], [], [], 0.1)
            if readable:
                chunk = conn.recv(65536)
                received += chunk
                closed = chunk == b""
            else:
                try:
                    conn.sendall(b"x")
                except OSError:  # reset: closed
                    closed = True
                sent += 1
        assert closed, f"still open after {sent} body bytes"
        assert received.startswith(b"HTTP/1.1 405 ")  # answered at once (GET only), then cut off


def test_a_whole_request_is_answered_and_an_idle_connection_takes_the_next(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GUARD)
    try:
        conn.request("GET", "/api/v1/series", headers={"Host": "localhost"})
        first = conn.getresponse()
        assert first.status == 200 and b'"total":4' in first.read()
        sock = conn.sock
        idle, _, _ = select.select([sock], [], [], 3 * HalfSecond.read_timeout)  # idle past the read deadline
        assert idle == [], "the server closed an idle keep-alive connection on the read deadline"
        conn.request("GET", "/healthz", headers={"Host": "localhost"})
        second = conn.getresponse()
        assert (second.status, second.read(), conn.sock) == (200, b'{"status":"ok"}', sock)  # the same connection
    finally:
        conn.close()


def test_the_live_server_refuses_another_host(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GUARD)
    try:
        conn.request("GET", "/api/v1/series", headers={"Host": "rebound.example:8080"})
        response = conn.getresponse()
        assert response.status == 421
        assert b"server.allowed_hosts" in response.read()
    finally:
        conn.close()


def test_vigil_run_closes_a_request_never_finished_after_its_default_deadline(tmp_path: Path) -> None:
    """The real `vigil run`: the protocol is wired in with its 10 s default (a socket waits up to twice that)."""
    with VigilProcess(tmp_path, {"data_dir": "data", "host": {"interval": "1s"}}) as vigil:
        vigil.start()
        with socket.create_connection(("127.0.0.1", vigil.port), timeout=2 * READ_TIMEOUT) as conn:
            conn.sendall(b"GET /api/v1/series HTTP/1.1\r\nHost: localhost\r\n")
            answer = until_closed(conn)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert answer.endswith(b"\r\n\r\nrequest not received whole within 10 s; send the request line, headers and "
                               b"body at once\n")
        assert vigil.get("/healthz").status_code == 200
        assert vigil.stop() == 0  # stopped by itself on SIGTERM
    assert "Traceback" not in vigil.log()
