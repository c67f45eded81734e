"""Real servers for integration tests: Prometheus, a scrape target, ports and polling.

Import it from a test module as ``from support.servers import ...`` (``tests/`` is on
``sys.path`` because of ``tests/conftest.py``). Nothing here is a test.

- `free_port` and `wait_until`: a free loopback port; poll a predicate with a deadline.
- `MetricsTarget`: a threaded HTTP server on 127.0.0.1 that serves a settable exposition
  text at ``/metrics``, for Prometheus to scrape.
- `PrometheusServer`: writes a config (scrape_interval 1s, the given targets, optional
  rule files and Alertmanager) into a temporary folder and starts the real binary on
  127.0.0.1 at a free port. Historical data is loaded with `PrometheusServer.backfill`
  **before** `PrometheusServer.start`: ``promtool tsdb create-blocks-from openmetrics``
  writes blocks into the storage folder, and Prometheus only loads blocks written behind
  its back at start (a running server would pick them up at its next block reload,
  minutes later).
- `openmetrics`: renders samples as OpenMetrics text for `PrometheusServer.backfill`.
- `show_log_on_failure`: use in a fixture so that a failed test shows the server's log.

Prometheus 2.42 (Debian 12) answers ``/-/ready`` in about 0.2 s, but the first scraped
sample becomes queryable only about 5.5 s after start: poll for data with `wait_until`
(15 s or more), never sleep a fixed time.

The binaries are ``/usr/bin/prometheus`` and ``/usr/bin/promtool`` unless
``VIGIL_PROMETHEUS_BIN`` / ``VIGIL_PROMTOOL_BIN`` say otherwise (read when this module is
imported and again when a server is made, because ``tests/conftest.py`` clears
``VIGIL_*`` during each test). A missing binary fails the test; it is never skipped.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import pytest

__all__ = [
    "MetricsTarget",
    "PrometheusServer",
    "free_port",
    "openmetrics",
    "prometheus_binary",
    "promtool_binary",
    "show_log_on_failure",
    "wait_until",
]

T = TypeVar("T")

_INSTALL = "run scripts/setup --test as root, or apt-get install prometheus"
_ENV_PROMETHEUS = os.environ.get("VIGIL_PROMETHEUS_BIN")
_ENV_PROMTOOL = os.environ.get("VIGIL_PROMTOOL_BIN")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises `TimeoutError` naming ``what`` (or the predicate) and the last value or
    exception after ``timeout`` seconds. Exceptions before the deadline count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - an exception means "not yet"
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            name = what or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"waited {timeout:g} s for {name}; last: {last!r}")
        time.sleep(interval)


def _binary(env_name: str, at_import: str | None, default: str) -> str:
    path = os.environ.get(env_name) or at_import or default
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{path} not found or not executable: {_INSTALL}", pytrace=False)
    return path


def prometheus_binary() -> str:
    """Path of the Prometheus binary; fails the test when it is missing."""
    return _binary("VIGIL_PROMETHEUS_BIN", _ENV_PROMETHEUS, "/usr/bin/prometheus")


def promtool_binary() -> str:
    """Path of promtool (next to the Prometheus binary by default); fails when missing."""
    beside = str(Path(prometheus_binary()).with_name("promtool"))
    return _binary("VIGIL_PROMTOOL_BIN", _ENV_PROMTOOL, beside)


def openmetrics(
    families: Mapping[str, tuple[str, Iterable[tuple[Mapping[str, str], float, float]]]],
) -> str:
    """OpenMetrics text for backfilling: ``{name: (type, [(labels, t_seconds, value)])}``.

    For a counter give the family name without ``_total``; samples get the suffix.

    >>> print(openmetrics({"temp": ("gauge", [({"room": "a"}, 60, 21.5)])}), end="")
    # TYPE temp gauge
    temp{room="a"} 21.5 60
    # EOF
    """
    lines: list[str] = []
    for name, (kind, samples) in families.items():
        lines.append(f"# TYPE {name} {kind}")
        sample_name = f"{name}_total" if kind == "counter" else name
        for labels, t, value in sorted(samples, key=lambda s: (sorted(s[0].items()), s[1])):
            inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            shown = "NaN" if math.isnan(value) else repr(float(value)).replace("inf", "Inf")
            stamp = f"{float(t):.3f}".rstrip("0").rstrip(".")
            lines.append(f"{sample_name}{{{inner}}} {shown} {stamp}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class MetricsTarget:
    """A scrape target: serves `text` (Prometheus exposition format) at ``/metrics``.

    Use as a context manager; ``address`` is ``127.0.0.1:port``. Every request is
    counted in ``scrapes``.
    """

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.scrapes = 0
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = target.text.encode()
                target.scrapes += 1
                self.send_response(200 if self.path.startswith("/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def set(self, text: str) -> None:
        """Serve ``text`` from the next scrape on."""
        self.text = text

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class PrometheusServer:
    """The real Prometheus on 127.0.0.1 at a free port, in its own temporary folder.

    Parameters
    ----------
    directory
        An empty folder for the config, the storage (``data/``) and the log.
    targets
        ``host:port`` addresses scraped every second by job ``targets``.
    rule_files
        Rule files copied into ``directory`` and listed in the config.
    alertmanager
        ``host:port`` of an Alertmanager to send alerts to.
    extra_args
        More command-line flags.

    Use as a context manager: it starts on entry (unless already started), so call
    `backfill` on the object before the ``with``. On exit it is terminated (killed after
    ``stop_timeout`` seconds); if an exception passes through, the tail of its log is
    printed.
    """

    def __init__(
        self,
        directory: Path,
        targets: Sequence[str] = (),
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.binary = prometheus_binary()
        self.directory = Path(directory)
        self.storage = self.directory / "data"
        self.log_path = self.directory / "prometheus.log"
        self.config_path = self.directory / "prometheus.yml"
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.alertmanager = alertmanager
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.storage.mkdir(parents=True, exist_ok=True)

    # -- config and data -----------------------------------------------------------------

    def write_config(self) -> None:
        rules = []
        for i, source in enumerate(self.rule_files):
            copy = self.directory / f"rules-{i}-{Path(source).name}"
            copy.write_text(Path(source).read_text())
            rules.append(str(copy))
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "scrape_configs": [
                {"job_name": "targets", "static_configs": [{"targets": self.targets}]}
            ],
        }
        if rules:
            config["rule_files"] = rules
        if self.alertmanager:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]
            }
        self.config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML

    def backfill(self, text: str) -> None:
        """Write OpenMetrics ``text`` (see `openmetrics`) as blocks; call before `start`."""
        if self.process is not None:
            raise RuntimeError("backfill before start: Prometheus loads new blocks only at start")
        source = self.directory / f"backfill-{len(list(self.directory.glob('backfill-*')))}.om"
        source.write_text(text)
        result = subprocess.run(
            [
                promtool_binary(),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(source),
                str(self.storage),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"promtool create-blocks-from openmetrics {source} failed "
                f"({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )

    # -- process -------------------------------------------------------------------------

    def start(self, same_port: bool = False) -> None:
        """Start Prometheus and wait for ``/-/ready`` (a taken port is retried twice).

        ``same_port``: come back on the port of the previous start (a restart that clients
        configured with the URL must find again).
        """
        self.write_config()
        for attempt in range(3):
            if not (same_port and self.port):
                self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={self.config_path}",
                        f"--storage.tsdb.path={self.storage}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--web.enable-lifecycle",
                        "--web.enable-admin-api",
                        *self.extra_args,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            try:
                state = wait_until(
                    self._ready_or_exited,
                    self.ready_timeout,
                    0.05,
                    f"Prometheus at {self.url} to be ready",
                )
            except TimeoutError as exc:
                self.stop()
                raise RuntimeError(f"{exc}\n--- prometheus log ---\n{self.log_tail()}") from exc
            if state == "ready":
                return
            self.stop()
            if "address already in use" not in self.log_tail() or attempt == 2:
                raise RuntimeError(
                    f"Prometheus exited at start\n--- prometheus log ---\n{self.log_tail()}"
                )

    def _ready_or_exited(self) -> str:
        if self.process is None or self.process.poll() is not None:
            return "exited"
        try:
            ok = httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            ok = False
        return "ready" if ok else ""

    def stop(self) -> None:
        """Terminate the process, kill it after ``stop_timeout`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(self.stop_timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is not None:
            print(f"--- prometheus log ({self.log_path}) ---\n{self.log_tail()}", file=sys.stderr)

    # -- queries -------------------------------------------------------------------------

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result list of an instant query (for readiness polls in tests)."""
        params = {"query": promql} if at is None else {"query": promql, "time": str(at)}
        body = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=5).json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


@contextmanager
def show_log_on_failure(request: pytest.FixtureRequest, *servers: Any) -> Iterator[None]:
    """Around a test (in a function-scoped fixture): on failure, print each server's log tail.

    The tail goes straight to the terminal, because output of a fixture's teardown is not
    shown with the failed test.
    """
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        for server in servers:
            text = f"\n--- log of {server.url} ({server.log_path}) ---\n{server.log_tail()}"
            if reporter is not None:
                reporter.write_line(text)
            else:
                print(text, file=sys.__stderr__)
