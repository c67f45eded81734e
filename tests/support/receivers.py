"""Real receivers for notification tests: a recording HTTP server, and Alertmanager.

Import them as ``from support.receivers import HookServer, AlertmanagerServer`` (``tests/`` is on
``sys.path``). Nothing here is a test.

`HookServer` is a threaded HTTP server on 127.0.0.1. Every POST is recorded (path,
headers, parsed JSON body, arrival time) and answered according to ``mode``:

- ``"ok"``: 200;
- an ``int``: that status (with ``retry_after`` as a Retry-After header when set);
- ``"hang"``: the request is read and never answered (the connection stays open until
  the server stops or ``hang_for`` seconds pass).

`stop` closes the port (the receiver is "down": connections are refused) and `start`
opens it again on the same port.

`AlertmanagerServer` runs the real Alertmanager binary (``/usr/bin/prometheus-alertmanager``
unless ``VIGIL_ALERTMANAGER_BIN`` says otherwise; a missing binary fails the test, it is
never skipped) on a free loopback port, routing everything to one webhook with
``group_wait: 0s`` and ``group_interval: 1s``. `amtool_binary` finds ``amtool`` beside it.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
import pytest

from support.servers import free_port, wait_until

__all__ = ["AlertmanagerServer", "HookServer", "Received", "alertmanager_binary", "amtool_binary"]

_ENV_ALERTMANAGER = os.environ.get("VIGIL_ALERTMANAGER_BIN")
_INSTALL = "run scripts/setup --test as root, or apt-get install prometheus-alertmanager"


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


def alertmanager_binary() -> str:
    path = os.environ.get("VIGIL_ALERTMANAGER_BIN") or _ENV_ALERTMANAGER or "/usr/bin/prometheus-alertmanager"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{path} not found or not executable: {_INSTALL}", pytrace=False)
    return path


def amtool_binary() -> str:
    path = str(Path(alertmanager_binary()).with_name("amtool"))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{path} not found or not executable: {_INSTALL}", pytrace=False)
    return path


class AlertmanagerServer:
    """The real Alertmanager on 127.0.0.1 at a free port, sending every alert to `webhook`."""

    def __init__(self, directory: Path, webhook: str, group_wait: str = "0s", group_interval: str = "1s") -> None:
        self.binary = alertmanager_binary()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path = self.directory / "alertmanager.yml"
        self.log_path = self.directory / "alertmanager.log"
        config = {
            "route": {"receiver": "hook", "group_by": ["alertname", "query"], "group_wait": group_wait,
                      "group_interval": group_interval, "repeat_interval": "1h"},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": webhook, "send_resolved": True}]}],
        }
        self.config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.config_path}", f"--storage.path={self.directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        wait_until(self._ready, 20, 0.05, f"Alertmanager at {self.url}")

    def _ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"Alertmanager exited:\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json()
        return result

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop()
        if exc_type is not None:
            print(f"--- alertmanager log ---\n{self.log_tail()}")
