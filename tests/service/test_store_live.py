"""`vigil run` with its data_dir on a disk that fills up, and on a damaged store.

The disk is a real 2 MB tmpfs (root is needed to mount it; CI runs as root), filled with a
file while Vigil runs and emptied again. Detection must go on, `/readyz` must say why it
is not ready, and the incident that came while the disk was full must be stored once
there is room: nothing lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from support.disks import fill
from support.processes import VigilProcess
from support.receivers import HookServer
from support.servers import free_port, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpu_spike.csv"


def samples(v: VigilProcess, query: str) -> float:
    for line in v.get("/metrics").text.splitlines():
        if line.startswith(f'vigil_samples_total{{query="{query}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_full_disk_under_vigil_run_keeps_it_watching_says_why_and_loses_no_event(
    tmp_path: Path, tiny_disk: Path
) -> None:
    with HookServer() as hook:
        watch_through_a_full_disk(tmp_path, tiny_disk, hook)


def watch_through_a_full_disk(tmp_path: Path, tiny_disk: Path, hook: HookServer) -> None:
    config = {
        "data_dir": str(tiny_disk / "data"),
        "snapshot_every": "1s",
        "host": {"enabled": True, "interval": "1s"},
        # a file minute every 10 ms: the spike comes about 15 s after the start
        "replay": [{"name": "seed", "path": str(EXAMPLE), "speed": 6000, "detection": {"detector": "ewma"}}],
        "notify": {"receivers": [{"name": "hook", "type": "webhook", "url": f"{hook.url}/e", "queries": ["seed"]}]},
    }
    with VigilProcess(tmp_path, config) as v:
        v.start()
        wait_until(lambda: v.get("/readyz").status_code == 200, 20, 0.2, "ready")
        filler = fill(tiny_disk)
        reason = wait_until(lambda: v.get("/readyz").json()["reasons"].get("store"), 15, 0.2, "not ready: store")
        assert "full" in reason and "free space on the disk of data_dir" in reason
        assert v.get("/readyz").status_code == 503
        before = samples(v, "host")
        wait_until(lambda: samples(v, "seed") >= 1990, 40, 0.5, "the whole file replayed while the disk is full")
        assert samples(v, "host") >= before + 5  # detection went on
        assert v.get("/api/v1/anomalies", query="seed").json()["total"] == 0  # not stored yet ...

        filler.unlink()
        wait_until(lambda: v.get("/readyz").status_code == 200, 20, 0.2, "ready again once there is room")
        events = v.get("/api/v1/anomalies", query="seed").json()["items"]  # ... and not lost
        assert events and max(e["observed"] for e in events) > 80
        spike = max(events, key=lambda e: e["observed"])
        wait_until(lambda: any(spike["id"] in json.dumps(r.body) for r in hook.received), 20, 0.2, "the spike's notification")
        assert v.alive()
    assert "Traceback" not in v.log()
    said = [line.split(" ", 3)[3] for line in v.log().splitlines() if "disk is full" in line]
    assert said and len(said) == len(set(said))  # each part said it once, not at every retry


def test_vigil_run_on_a_damaged_store_stops_with_one_line_saying_what_to_do(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "vigil.db").write_bytes(os.urandom(64 * 1024))
    (tmp_path / "vigil.yml").write_text(f"data_dir: {data}\nserver:\n  listen: 127.0.0.1:{free_port()}\n")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "run", "--config", str(tmp_path / "vigil.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot open the store") and "damaged" in lines[-1]
    assert "move it aside" in lines[-1] and "Traceback" not in done.stderr
    assert time.monotonic() - began < 60
