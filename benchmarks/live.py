"""Cost of the live engine per tick for 10,000 and 100,000 synthetic series, exporter included.

A synthetic source yields one sample per series per tick (what a Prometheus query_range of
one step gives). For each size, in its own process pinned to one core, after a warm-up of
60 ticks: the engine's tick (ingest: detectors, calibration, decision, series table,
events), one /metrics render per tick (a 15 s scrape interval), and one state snapshot.
The CPU share at a 15 s interval is (tick + render + snapshot / 4) / 15 s, the snapshot
being taken every 60 s.

    python benchmarks/live.py            # writes the table into BENCHMARKS.md
    python benchmarks/live.py --quick    # 1,000 and 10,000 series, prints only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import finish, header, run_child  # noqa: E402

INTERVAL = 15.0
WARMUP_TICKS = 60
MEASURED_TICKS = 20


class SyntheticSource:
    """`n` series of noisy levels, one sample each per fetch."""

    def __init__(self, n: int, seed: int = 0) -> None:
        from vigil.sources.base import SeriesBatch

        self.name = "synthetic"
        self.interval = INTERVAL
        self._batch = SeriesBatch
        self._rng = np.random.default_rng(seed)
        self._level = self._rng.uniform(10, 1000, n)
        self._labels = [
            {"__name__": "requests_per_second", "instance": f"host-{i // 100}", "route": f"/api/{i % 100}"}
            for i in range(n)
        ]

    async def fetch(self, now: float) -> list:
        values = self._level * (1 + 0.05 * self._rng.standard_normal(self._level.size))
        t = np.array([now])
        return [self._batch(lab, t, np.array([v])) for lab, v in zip(self._labels, values.tolist(), strict=True)]

    async def close(self) -> None:
        return None


def run_size(n: int) -> dict[str, float]:
    from vigil.config import Config, Detection, Limits
    from vigil.engine import Engine, Query
    from vigil.metrics import Metrics
    from vigil.outputs.exporter import iter_render
    from vigil.outputs.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        limits = Limits(max_series_per_query=n)
        config = Config(data_dir=Path(tmp), limits=limits)
        source = SyntheticSource(n)
        query = Query(source, Detection(), limits, "benchmark")
        store = Store(Path(tmp))
        metrics = Metrics()
        clock = [1_700_000_000.0]
        engine = Engine(config, [query], store, metrics, clock=lambda: clock[0])

        async def ticks(count: int) -> tuple[float, float, float, float]:
            wall = cpu = fetch_wall = 0.0
            for _ in range(count):
                clock[0] += INTERVAL
                f0 = time.perf_counter()
                batches = await source.fetch(clock[0])
                fetch_wall += time.perf_counter() - f0
                w0, c0 = time.perf_counter(), time.process_time()
                await asyncio.to_thread(query.ingest, batches, clock[0])
                wall += time.perf_counter() - w0
                cpu += time.process_time() - c0
            return wall / count, cpu / count, fetch_wall / count, 0.0

        asyncio.run(ticks(WARMUP_TICKS))
        tick_wall, tick_cpu, fetch_wall, _ = asyncio.run(ticks(MEASURED_TICKS))
        r0 = time.process_time()
        for _ in range(3):  # as /metrics streams it: chunk by chunk
            size = sum(len(chunk) for chunk in iter_render(metrics, engine.queries.values()))
        render_cpu = (time.process_time() - r0) / 3
        s0 = time.process_time()
        engine.snapshot()
        snapshot_cpu = time.process_time() - s0
        store.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    share = (tick_cpu + fetch_wall + render_cpu + snapshot_cpu / 4) / INTERVAL
    return {
        "series": n, "tick_wall": tick_wall, "tick_cpu": tick_cpu, "batches": fetch_wall, "render": render_cpu,
        "metrics_mib": size / 2**20, "snapshot": snapshot_cpu, "share": share, "rss_mib": rss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 and 10,000 series; print, do not write")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
        print(json.dumps(run_size(args.child)))
        return
    lines = [
        "| series | tick (engine) s | building batches s | /metrics render s | /metrics MiB | snapshot s |"
        " CPU share at 15 s | peak RSS MiB | target |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for n in ((1_000, 10_000) if args.quick else (10_000, 100_000)):
        r = run_child(__file__, str(n))
        verdict = ""
        if n == 100_000:
            ok = r["share"] < 1.0 and r["rss_mib"] < 2048
            verdict = f"{'meets' if ok else 'MISSES'} < 1 core and < 2 GiB"
        lines.append(
            f"| {n:,} | {r['tick_cpu']:.3f} | {r['batches']:.3f} | {r['render']:.3f} | {r['metrics_mib']:.1f} |"
            f" {r['snapshot']:.2f} | {100 * r['share']:.1f} % | {r['rss_mib']:.0f} | {verdict} |"
        )
        print(lines[-1], flush=True)
    body = header("Live engine cost per tick (benchmarks/live.py)") + "\n" + "\n".join(lines) + "\n"
    body += (
        "\nOne core per size, after 60 warm-up ticks; means over 20 ticks. `tick` is the engine's CPU time to take"
        " in one sample of every series (detectors, calibration, decision, series table, events); `building"
        " batches` is the synthetic source making the per-series batches (what parsing a Prometheus answer"
        " costs at least); `/metrics render` is one scrape of the seven per-series families plus"
        " self-monitoring; `snapshot` writes all state to SQLite (every 60 s by default). CPU share at 15 s ="
        " (tick + batches + render + snapshot / 4) / 15 s.\n"
    )
    finish("live", body, args.quick)


if __name__ == "__main__":
    main()
