"""`vigil run`, `check-config` and `healthcheck` as a user runs them: real processes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from support.processes import VigilProcess
from support.servers import PrometheusServer, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def vigil(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


def test_run_with_no_arguments_serves_host_metrics_and_health_within_ten_seconds(tmp_path: Path) -> None:
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "vigil", "run"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        def host_series() -> set[str]:
            text = httpx.get("http://127.0.0.1:8080/metrics", timeout=1).text
            metrics = {s.labels["metric"] for f in text_string_to_metric_families(text)
                       if f.name == "vigil_anomaly_score" for s in f.samples}  # exported by default
            return metrics if {"memory_used_percent", "disk_used_percent", "load1"} <= metrics else set()

        metrics = wait_until(host_series, 10, 0.1, "host series at /metrics")
        health = httpx.get("http://127.0.0.1:8080/check_health", timeout=2)
        took = time.monotonic() - began
        assert health.status_code in (200, 503)
        assert health.json()["series"] >= len(metrics)
        assert (tmp_path / "vigil-data" / "vigil.db").exists()
        print(f"host series and /check_health served {took:.1f} s after start")
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0, out
    assert b"Traceback" not in out


@pytest.mark.parametrize(
    ("config", "says"),
    [
        pytest.param("server: [oops", "not valid YAML at line 1", id="not-yaml"),
        pytest.param("detection: {detector: ewmaa}", "detector is 'ewmaa'; write one of", id="unknown-detector"),
        pytest.param("snapshot_every: 15", "snapshot_every is 15; write a duration", id="bare-number-duration"),
        pytest.param("detection: {params: {level: {spam: 1}}}", "level: unknown parameter(s) spam", id="unknown-param"),
        pytest.param("prometheus: {url: 'http://x', queries: []}", "prometheus.queries", id="no-queries"),
        pytest.param("hots: {}", "hots is not a known key", id="unknown-key"),
    ],
)
def test_bad_config_is_one_clear_error_and_exit_2(tmp_path: Path, config: str, says: str) -> None:
    (tmp_path / "vigil.yml").write_text(config)
    for command in (["run", "--config", "vigil.yml"], ["check-config", "vigil.yml"]):
        result = vigil(*command, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ")
        assert says in result.stderr
        assert "Traceback" not in result.stderr + result.stdout


LAUGHS = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10)
)  # aliases of aliases: 9**10 strings once expanded


@pytest.mark.parametrize(
    ("content", "says"),
    [
        pytest.param(b"\xff\xd8\xff\xe0\x00\x10JFIF" * 64, "vigil.yml: not UTF-8 text (byte 0 is 0xff)", id="binary-file"),
        pytest.param(b"a: &a [*a]\n", "vigil.yml: line 1, column 8: the alias *a is inside the value &a names", id="recursive-alias"),
        pytest.param(
            b"server: {listen: 127.0.0.1:99999}\n",
            "vigil.yml: server.listen is '127.0.0.1:99999'; the port 99999 is not one from 1 to 65535",
            id="port-over-65535",
        ),
        pytest.param(
            b"server: {listen: 'nosuchhost.invalid:8080'}\n",
            "vigil.yml: server.listen is 'nosuchhost.invalid:8080'; the host nosuchhost.invalid does not resolve",
            id="host-unresolvable",
        ),
        pytest.param(LAUGHS.encode(), "vigil.yml: line 5, column 35: the file holds more than 50,000 values", id="billion-laughs"),
        pytest.param(
            b"prometheus: {url: 'http://vigil:hunter2@prom:notaport', queries: [{name: a, query: up}]}\n",
            "vigil.yml: prometheus.url is 'http://vigil:***@prom:notaport'; the port 'notaport' is not a number",
            id="password-in-a-bad-url",
        ),
    ],
)
def test_a_hostile_config_file_stops_run_at_once_with_one_line(tmp_path: Path, content: bytes, says: str) -> None:
    (tmp_path / "vigil.yml").write_bytes(content)
    began = time.monotonic()
    result = vigil("run", "--config", "vigil.yml", cwd=tmp_path, timeout=30)
    took = time.monotonic() - began
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {says}") and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == "" and "hunter2" not in result.stderr
    assert took < 15, f"{took:.1f} s"  # the interpreter's start is most of it


def test_a_port_in_use_stops_run_with_one_line_naming_the_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = vigil("run", "--listen", f"127.0.0.1:{port}", cwd=tmp_path, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: server.listen is '127.0.0.1:{port}'; cannot listen there (address already in use); "
        "write a free port on an address of this machine, such as 127.0.0.1:8080\n"
    )


def test_promql_syntax_error_stops_the_start_with_prometheus_own_text(tmp_path: Path) -> None:
    with PrometheusServer(tmp_path / "prom") as prom:
        config = {
            "host": {"enabled": False},
            "prometheus": {"url": prom.url, "queries": [{"name": "broken", "query": "rate(http_requests_total[5m"}]},
            "server": {"listen": f"127.0.0.1:{free_port()}"},
        }
        (tmp_path / "vigil.yml").write_text(yaml.safe_dump(config))
        result = vigil("run", "--config", "vigil.yml", cwd=tmp_path)
        online = vigil("check-config", "--online", "vigil.yml", cwd=tmp_path)
    for r in (result, online):
        assert r.returncode == 2, r.stderr
        assert "broken" in r.stderr and "parse error" in r.stderr
        assert "Traceback" not in r.stderr


def test_prometheus_refusing_connections_keeps_vigil_up_and_not_ready(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config: dict[str, Any] = {
        "data_dir": "data",
        "host": {"enabled": False},
        "prometheus": {"url": dead, "timeout": "1s", "queries": [{"name": "cpu", "query": "up", "step": "1s"}]},
    }
    with VigilProcess(tmp_path, config) as v:
        v.start()
        wait_until(lambda: v.get("/readyz").status_code == 503 and v.get("/readyz").json()["reasons"].get("cpu"),
                   15, 0.2, "readyz to say why")
        reason = v.get("/readyz").json()["reasons"]["cpu"]
        assert dead in reason and ("refused" in reason.lower() or "connect" in reason.lower())
        assert v.get("/healthz").status_code == 200
        assert v.get("/check_health").status_code == 200
        wait_until(lambda: "vigil_source_errors_total{" in v.get("/metrics").text, 10, 0.2, "errors counted")
        assert v.stop() == 0  # stopped by itself on SIGTERM
    log = v.log()
    assert "Traceback" not in log
    assert "query cpu:" in log and "retrying" in log


def test_check_config_accepts_the_documented_example(tmp_path: Path) -> None:
    printed = vigil("example-config", cwd=tmp_path)
    assert printed.returncode == 0
    (tmp_path / "vigil.yml").write_text(printed.stdout)
    assert vigil("check-config", "vigil.yml", cwd=tmp_path).returncode == 0
    example = ROOT / "examples" / "vigil.yml"
    checked = vigil("check-config", str(example), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_healthcheck_reports_this_host_with_an_exit_code_per_status(tmp_path: Path) -> None:
    result = vigil("healthcheck", "--json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert result.returncode == {"ok": 0, "warning": 1, "critical": 2}[report["status"]]
    names = {i["name"] for i in report["items"]}
    assert {"cpu", "memory"} <= names and any(n.startswith("disk:") for n in names)
    strict = vigil("healthcheck", "--memory-warning", "0", "--memory-critical", "0", cwd=tmp_path)
    assert strict.returncode == 2 and "memory" in strict.stdout
