"""A source that hangs delays no other source's ticks: the real Prometheus, frozen with SIGSTOP.

`vigil run` watches a Prometheus query (step 1 s, 5 s request timeout) and this host (every
1 s). The real Prometheus scrapes a target every second. Frozen with SIGSTOP, Prometheus
still accepts connections (the kernel does) but answers nothing, so each fetch of the
Prometheus query hangs until its timeout, then backs off. The engine runs one tick loop
per query, so the host query keeps its pace meanwhile; before that, one hung fetch held
up every query behind it. Thawed with SIGCONT, the Prometheus query takes samples again.

Ticks are counted from `vigil_tick_duration_seconds_count` on /metrics (one per completed
tick) against the wall-clock window, with a generous margin: at least 70 % of those due.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.processes import VigilProcess
from support.servers import MetricsTarget, PrometheusServer, wait_until

HOST_INTERVAL = 1.0  # seconds
FROZEN = 14.0  # seconds Prometheus stays stopped: almost three of its query's 5 s timeouts


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with MetricsTarget('# TYPE app_load gauge\napp_load{route="a"} 1.5\n') as target:
        prom = PrometheusServer(tmp_path / "prom", targets=[target.address])
        with prom:
            wait_until(lambda: prom.query("app_load"), 30, 0.2, "Prometheus to have app_load")
            config = {
                "data_dir": "data",
                "host": {"enabled": True, "interval": f"{HOST_INTERVAL:g}s"},
                "prometheus": {
                    "url": prom.url, "timeout": "5s", "lookback": "1m", "delay": "0s",
                    "queries": [{"name": "app", "query": "app_load", "step": "1s"}],
                },
            }
            with VigilProcess(tmp_path / "vigil", config) as vigil:
                vigil.start()
                yield {"prom": prom, "vigil": vigil}
                assert vigil.alive(), vigil.log()[-3000:]
                vigil.stop()
            assert "Traceback" not in vigil.log(), vigil.log()[-5000:]


def _value(vigil: VigilProcess, sample: str, query: str) -> float:
    """The value of `sample` (e.g. ``vigil_samples_total``) for `query` on /metrics, summed over other labels."""
    total = 0.0
    for family in text_string_to_metric_families(vigil.get("/metrics").text):
        for s in family.samples:
            if s.name == sample and s.labels.get("query") == query:
                total += s.value
    return total


def _ticks(vigil: VigilProcess, query: str) -> float:
    return _value(vigil, "vigil_tick_duration_seconds_count", query)


def test_a_hung_prometheus_does_not_delay_the_host_ticks(stack: dict[str, Any]) -> None:
    prom, vigil = stack["prom"], stack["vigil"]
    assert prom.process is not None
    wait_until(lambda: _ticks(vigil, "app") >= 3 and _ticks(vigil, "host") >= 3, 30, 0.2, "both queries ticking")
    wait_until(lambda: vigil.get("/readyz").status_code == 200, 30, 0.2, "Vigil ready")

    host_before, app_before = _ticks(vigil, "host"), _ticks(vigil, "app")
    errors_before = _value(vigil, "vigil_source_errors_total", "app")
    prom.process.send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        while time.monotonic() - frozen_at < FROZEN:  # Vigil keeps serving the whole time
            assert vigil.get("/healthz").status_code == 200
            time.sleep(0.5)
        host_after, app_after = _ticks(vigil, "host"), _ticks(vigil, "app")
        window = time.monotonic() - frozen_at
        errors = _value(vigil, "vigil_source_errors_total", "app") - errors_before
        readyz = vigil.get("/readyz")
    finally:
        os.kill(prom.process.pid, signal.SIGCONT)

    # the Prometheus query really hung: at most the fetch already answered went through, then timeouts
    assert app_after - app_before <= 1, f"the Prometheus query ticked {app_after - app_before:g} times while frozen"
    assert errors >= 1, "no fetch of the Prometheus query timed out while it was frozen"
    assert readyz.status_code == 503 and "source failing" in readyz.json()["reasons"]["app"], readyz.text
    due = window / HOST_INTERVAL
    ticked = host_after - host_before
    print(f"host ticked {ticked:g} times in {window:.1f} s with Prometheus frozen ({due:.0f} due)")
    assert ticked >= 0.7 * due, f"the host query ticked {ticked:g} times in {window:.1f} s, {due:.0f} were due"

    thawed_samples = _value(vigil, "vigil_samples_total", "app")
    wait_until(lambda: _value(vigil, "vigil_samples_total", "app") > thawed_samples, 60, 0.5,
               "the Prometheus query to take samples again after SIGCONT")
    wait_until(lambda: vigil.get("/readyz").status_code == 200, 60, 0.5, "Vigil ready again")
    assert _ticks(vigil, "host") > host_after
    assert httpx.get(f"{prom.url}/-/ready", timeout=5).status_code == 200
