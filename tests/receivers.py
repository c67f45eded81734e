"""A real HTTP receiver for notification tests: records what is posted, or misbehaves.

Import it as ``from receivers import HookServer`` (``tests/`` is on ``sys.path``). Nothing
here is a test.

`HookServer` is a threaded HTTP server on 127.0.0.1. Every POST is recorded (path,
headers, parsed JSON body, arrival time) and answered according to ``mode``:

- ``"ok"``: 200;
- an ``int``: that status (with ``retry_after`` as a Retry-After header when set);
- ``"hang"``: the request is read and never answered (the connection stays open until
  the server stops or ``hang_for`` seconds pass).

`stop` closes the port (the receiver is "down": connections are refused) and `start`
opens it again on the same port.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

__all__ = ["HookServer", "Received"]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class HookServer:
    """A recording HTTP receiver on 127.0.0.1 (port 0: a free one, kept across restarts)."""

    def __init__(self, port: int = 0, mode: str | int = "ok", hang_for: float = 60.0) -> None:
        self.port = port
        self.mode: str | int = mode
        self.hang_for = hang_for
        self.retry_after: str | None = None
        self.received: list[Received] = []
        self.hanging = 0  # requests held right now
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                mode = hook.mode
                with hook._lock:
                    hook.received.append(Received(self.path, dict(self.headers.items()), body, time.time()))
                if mode == "hang":
                    with hook._lock:
                        hook.hanging += 1
                    hook._release.wait(hook.hang_for)
                    with hook._lock:
                        hook.hanging -= 1
                    self.close_connection = True
                    return
                status = 200 if mode == "ok" else int(mode)
                reply = b'{"status":"ok"}' if status < 300 else b'{"error":"refused by the test receiver"}'
                self.send_response(status)
                if hook.retry_after is not None and status >= 400:
                    self.send_header("Retry-After", hook.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> Self:
        self._release.clear()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port; held requests are let go."""
        self._release.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def bodies(self, path: str | None = None) -> list[Any]:
        with self._lock:
            return [r.body for r in self.received if path is None or r.path == path]

    def keys(self) -> list[str]:
        """The Idempotency-Key header of every request, in arrival order."""
        with self._lock:
            return [r.headers.get("Idempotency-Key", "") for r in self.received]

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
