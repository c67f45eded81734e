"""Feedback through a real `vigil run`: a verdict given over HTTP, with a named token, is put back at the next start.

A CSV file is replayed (one sample a minute, 6,000 times faster): about 40, then 95 for
three samples at row 300, which opens an event. A person marks it ``not_an_incident``
with a named token (`server.tokens`); after a restart, `vigil run` says it put back what
the verdict taught, and the verdict can be undone. Whether a taught series alerts is
tested through the engine (tests/outputs/test_feedback.py): a replay started again jumps
in time, and the detector's band is wide open after the jump whatever the verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np

from support.processes import VigilProcess
from support.servers import free_port, wait_until

TOKEN = "alices-token-7d1e"  # noqa: S105 - this test's own token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def write_csv(path: Path) -> float:
    """360 samples a minute apart around 40 (sd 1.5), 95 for three from row 300; returns the last value."""
    values = 40 + np.random.default_rng(3).normal(0, 1.5, 360)
    values[300:303] = 95.0
    lines = ["timestamp,cpu_utilization"] + [f"{1_700_000_000 + 60 * i},{v:.3f}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return float(round(values[-1], 3))


def _replayed(vigil: VigilProcess, last: float) -> bool:
    items = httpx.get(f"{vigil.url}/api/v1/series", headers=AUTH, timeout=5).json()["items"]
    return bool(items) and abs(items[0]["value"] - last) < 1e-3 and items[0]["last_sample_at"] is not None


def _events(vigil: VigilProcess) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(f"{vigil.url}/api/v1/anomalies", headers=AUTH, timeout=5).json()["items"]
    return items


def _run(root: Path, config: dict[str, Any], port: int, last: float) -> VigilProcess:
    vigil = VigilProcess(root, config, port=port)
    vigil.start()
    wait_until(lambda: _replayed(vigil, last), 30, 0.1, "the file replayed to its last row")
    return vigil


def test_a_verdict_given_over_http_is_put_back_at_the_next_start_and_can_be_undone(tmp_path: Path) -> None:
    last = write_csv(tmp_path / "cpu.csv")
    config = {
        "data_dir": "data",
        "host": {"enabled": False},
        "server": {"tokens": [{"name": "alice", "token": {"value": TOKEN}}]},
        "detection": {"detector": "ewma", "params": {"ewma": {"warmup": 5}}, "calibration_min_samples": 10,
                      "min_rel_deviation": 0.3, "resolve_after": 5},
        "replay": [{"name": "web1_cpu", "path": str(tmp_path / "cpu.csv"), "value_column": "cpu_utilization",
                    "speed": 6000}],
    }
    port = free_port()
    with _run(tmp_path / "vigil", config, port, last) as first:
        (event,) = wait_until(lambda: _events(first), 10, 0.1, "the spike's event")
        url = f"{first.url}/api/v1/anomalies/{event['id']}/feedback"
        given = httpx.post(url, json={"verdict": "not_an_incident", "note": "load test"}, headers=AUTH, timeout=5)
        assert given.status_code == 200, given.text
        assert given.json()["verdict"]["author"] == "alice"
        first.stop()
    with _run(tmp_path / "vigil", config, port, last) as second:
        assert "1 series keep what feedback taught them" in second.log()
        held = httpx.get(url, headers=AUTH, timeout=5).json()["verdict"]
        assert (held["verdict"], held["note"], held["in_force"]) == ("not_an_incident", "load test", True)
        undone = httpx.delete(url, headers=AUTH, timeout=5)
        assert undone.status_code == 200 and undone.json()["verdict"] is None
        assert undone.json()["history"][0]["undone_by"] == "alice"
        metrics = httpx.get(f"{second.url}/metrics", headers=AUTH, timeout=5).text
        assert 'vigil_feedback_total{verdict="undone"} 1.0' in metrics
        second.stop()
    for run in (first, second):
        assert "Traceback" not in run.log()
