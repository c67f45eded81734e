"""The whole `vigil run` reading Prometheus: its memory and CPU per watched series, alone and sharded.

`vigil run` (its own process, as deployed) reads `n` series from the stand-in for
Prometheus's HTTP API of `api_load.py`, at a 15 s step. Once every series is in and a few
ticks have passed, for 60 s (4 ticks), with Prometheus's own scraper's request for
/metrics every 15 s: the process's CPU time over the window (from /proc: fetching and
parsing the answers, detection, /metrics, snapshots, the server), its peak RSS (VmHWM),
and the gzip /metrics it serves. Sharded, the process is one of N replicas (`shard: 0/N`):
it reads every series and keeps its own share, which is what each replica of the sharded
setup pays.

    python benchmarks/service.py             # 10,000 and 100,000 series; 100,000 as 1 of 4; writes BENCHMARKS.md
    python benchmarks/service.py --quick     # 2,000 series, alone and as 1 of 2; prints only
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from api_load import STEP, _serve_prometheus  # noqa: E402
from report import finish, header  # noqa: E402

from support.processes import VigilProcess  # noqa: E402
from support.servers import free_port, wait_until  # noqa: E402

WINDOW = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _rss_mib(pid: int, field: str) -> float:
    """VmHWM (the peak) or VmRSS (now) of the process, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def measure(n: int, shards: int) -> dict[str, float]:
    port = free_port()
    fake = multiprocessing.Process(target=_serve_prometheus, args=(port, n), daemon=True)
    fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config: dict[str, object] = {
                "host": {"enabled": False},
                "limits": {"max_series_per_query": max(n, 10_000)},
                "prometheus": {"url": f"http://127.0.0.1:{port}", "lookback": "15m", "timeout": "60s",
                               "queries": [{"name": "api", "query": "api_requests", "step": f"{STEP:g}s"}]},
            }
            if shards > 1:
                config["shard"] = f"0/{shards}"
            with VigilProcess(Path(tmp), config) as vigil:
                vigil.start(wait=120)
                assert vigil.process is not None
                pid = vigil.process.pid
                held = lambda: vigil.get("/api/v1/summary").json()["series"]  # noqa: E731
                wait_until(lambda: held() > 0.9 * n / shards, timeout=900, interval=1.0)
                time.sleep(3 * STEP)  # a few ticks of new points after the first fetch
                scrape = {"Accept-Encoding": "gzip"}
                cpu0, began = _cpu_seconds(pid), time.time()
                sizes = []
                while time.time() - began < WINDOW:
                    r = httpx.get(f"{vigil.url}/metrics", headers=scrape, timeout=60)
                    sizes.append(len(r.content) if r.headers.get("content-encoding") != "gzip" else int(
                        r.headers.get("content-length", len(r.content))))
                    time.sleep(max(0.0, STEP - (time.time() - began) % STEP))
                cpu = _cpu_seconds(pid) - cpu0
                elapsed = time.time() - began
                series = held()
                peak, now = _rss_mib(pid, "VmHWM"), _rss_mib(pid, "VmRSS")
    finally:
        fake.kill()
    return {"n": n, "shards": shards, "held": series, "share": cpu / elapsed, "rss": peak, "rss_now": now,
            "scrape": sum(sizes) / len(sizes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2,000 series, alone and as 1 of 2; print, do not write")
    args = ap.parse_args()
    runs = [(2_000, 1), (2_000, 2)] if args.quick else [(10_000, 1), (100_000, 1), (100_000, 4)]
    lines = [
        "| series read | replica | series held | CPU share (one core) | peak RSS MiB | RSS MiB after |"
        " peak RSS per series held | gzip /metrics per series held |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, shards in runs:
        r = measure(n, shards)
        lines.append(
            f"| {n:,} | {'alone' if shards == 1 else f'1 of {shards}'} | {r['held']:,} | {100 * r['share']:.1f} % |"
            f" {r['rss']:.0f} | {r['rss_now']:.0f} | {r['rss'] * 2**20 / r['held']:,.0f} B | {r['scrape'] / r['held']:.1f} B |"
        )
        print(lines[-1], flush=True)
    body = header("The whole service per watched series (benchmarks/service.py)") + "\n" + "\n".join(lines) + "\n"
    body += (
        "\n`vigil run` reading the series from a stand-in for Prometheus's query API (`api_load.py`'s) at a"
        " 15 s step, the default export, a gzip scrape of /metrics every 15 s. CPU share is the process's"
        f" CPU time over {WINDOW:g} s (fetch and parse, detection, /metrics, snapshots, the server) over"
        " the window; peak RSS is its VmHWM (the catch-up over the 15 min lookback at start included), RSS after its VmRSS at the end. A replica (`shard: 0/N`) reads every series and keeps its own"
        " share: the CPU of reading the others is paid by each replica.\n"
    )
    finish("service", body, args.quick)


if __name__ == "__main__":
    main()
