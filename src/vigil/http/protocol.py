"""The HTTP/1.1 protocol Vigil serves with: uvicorn's h11 one, with a deadline on reading each request.

uvicorn closes a connection left idle between requests (`timeout_keep_alive`), but not one
that opens and then sends its request slowly or never finishes it: each would be held for
ever, and enough of them use up the process's file descriptors (slowloris). `ReadDeadline`
gives each request `read_timeout` seconds from its first byte (the first request: from the
connection's opening) to arrive whole, headers and body. Past that the connection is
closed, after a 408 whose body says why when part of a request had come and no answer had
started.

Pass the class as uvicorn's protocol: ``uvicorn.Config(app, http=ReadDeadline)``; a
subclass that sets `read_timeout` gives another deadline.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["READ_TIMEOUT", "ReadDeadline"]

READ_TIMEOUT = 10.0
_READING = (h11.IDLE, h11.SEND_BODY)  # the client's states while its request is still coming


class ReadDeadline(H11Protocol):
    """h11 as uvicorn runs it, closing a connection whose request takes over `read_timeout` seconds to arrive."""

    read_timeout: float = READ_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state in _READING:
            self._start_clock()
        super().data_received(data)
        if self.conn.their_state not in _READING:
            self._stop_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def _start_clock(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _stop_clock(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        partial, _ = self.conn.trailing_data
        if self.conn.their_state is h11.IDLE and partial:  # h11 cannot answer a request it has not parsed
            self.transport.write(_timeout_response(self.read_timeout))
        self.transport.close()


def _timeout_response(seconds: float) -> bytes:
    body = f"request not received whole within {seconds:g} s; send the request line, headers and body at once\n"
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode()
