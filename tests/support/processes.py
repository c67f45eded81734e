"""Vigil's own commands as real processes for integration tests: `vigil run`, `vigil demo-app`.

Each runs as ``python -m vigil ...`` with its output in a log file; `stop` sends SIGTERM and
reports how long the process took to exit, `kill` sends SIGKILL. Nothing here is a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from support.servers import free_port, wait_until

__all__ = ["DemoApp", "VigilProcess"]


class _Process:
    def __init__(self, directory: Path, name: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vigil", *args], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.directory, env=env,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait; returns the exit status (-9 when it had not exited after `timeout` and was killed)."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        self.process = None
        return status

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class DemoApp(_Process):
    def __init__(self, directory: Path, seed: int = 1, day_seconds: float = 3600.0) -> None:
        super().__init__(directory, "demo-app")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._spawn(["demo-app", "--listen", f"127.0.0.1:{self.port}", "--seed", str(seed),
                     "--day-seconds", str(day_seconds)])
        wait_until(self._up, 20, 0.05, f"demo app at {self.url}")

    def _up(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"demo app exited:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def inject(self, kind: str, magnitude: float, duration: float | None) -> None:
        r = httpx.post(f"{self.url}/inject", json={"kind": kind, "magnitude": magnitude, "duration": duration})
        r.raise_for_status()


class VigilProcess(_Process):
    """`vigil run --config FILE` with `config` (a dict) written as YAML into `directory`."""

    def __init__(self, directory: Path, config: dict[str, Any], port: int | None = None) -> None:
        super().__init__(directory, "vigil")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {**config, "server": {**config.get("server", {}), "listen": f"127.0.0.1:{self.port}"}}
        self.config_path = self.directory / "vigil.yml"
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self, wait: float = 30.0, args: Sequence[str] = ()) -> None:
        self.launch(args)
        self.wait_up(wait)

    def launch(self, args: Sequence[str] = ()) -> None:
        """Spawn ``vigil run --config FILE *args`` without waiting; start several, then `wait_up` each."""
        self._spawn(["run", "--config", str(self.config_path), *args])

    def wait_up(self, wait: float = 30.0) -> None:
        wait_until(self._up, wait, 0.05, f"vigil at {self.url}")

    def _up(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"vigil exited:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=5)
