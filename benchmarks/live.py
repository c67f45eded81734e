"""Cost of the live engine per series: CPU per tick, /metrics, snapshots, and memory.

A synthetic source yields one sample per series per tick, column-wise as the Prometheus
source does (`Samples`: what a query_range of one step gives). For each size, in its own
process pinned to one core, after the warm-up ticks: the engine's tick (ingest: detectors,
calibration, decision, series table, events), one /metrics render per tick with the default
export (a 15 s scrape interval) and its gzip, and one state snapshot. The CPU share at a
15 s interval is (tick + samples + render + snapshot / 4) / 15 s, the snapshot being taken
every 60 s. Memory is the process's peak RSS, and member by member the bytes per series
of every part of the state, and of the Python objects kept per series.

    python benchmarks/live.py             # 10,000, 100,000 and 1,000,000 series; writes BENCHMARKS.md
    python benchmarks/live.py --quick     # 1,000 and 10,000 series, prints only
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
WARMUP_TICKS = {1_000_000: 5}  # else 60: a million series' state is all allocated at the first tick
MEASURED_TICKS = {1_000_000: 5}  # else 20
TARGET_RSS_PER_SERIES = 4096  # bytes, the interpreter and its libraries included


class SyntheticSource:
    """`n` series of noisy levels, one sample each per fetch, as one `Samples`."""

    def __init__(self, n: int, seed: int = 0) -> None:
        from vigil.labels import series_key

        self.name = "synthetic"
        self.interval = INTERVAL
        self._rng = np.random.default_rng(seed)
        self._level = self._rng.uniform(10, 1000, n)
        self._labels = [
            {"__name__": "requests_per_second", "instance": f"host-{i // 100}", "route": f"/api/{i % 100}"}
            for i in range(n)
        ]
        self._keys = [series_key(lab) for lab in self._labels]
        self._offsets = np.arange(n + 1)

    async def fetch(self, now: float) -> object:
        from vigil.sources.base import Samples

        values = self._level * (1 + 0.05 * self._rng.standard_normal(self._level.size))
        return Samples(self._keys, self._labels, self._offsets, np.full(values.size, now), values)

    async def close(self) -> None:
        return None


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def state_bytes(query: object, n: int) -> list[tuple[str, float]]:
    """Bytes per series of each part of a query's state (arrays as allocated, spare rows included)."""
    p, t = query.pipeline, query.table  # type: ignore[attr-defined]
    parts = [("series table", t.state)]
    for (name, _), det, cal in zip(p.members, p.detector_states, p.calibration_states, strict=True):
        parts += [(f"detector {name}", det), (f"calibration of {name}", cal)]
    parts += [("decision", p.decision_state), ("cadence", p.cadence_state), ("hold", p.hold_state),
              ("range", p.range_state)]
    out = [(name, sum(a.nbytes for a in st.arrays.values()) / n) for name, st in parts]
    return [*out, ("accepted deviations (a flag; the rows that have one apart)", p.accepted.flag.nbytes / n)]


def python_bytes(query: object, n: int) -> float:
    """Bytes per series of the Python objects a query keeps per series (keys, labels, index, label texts)."""
    seen: set[int] = set()

    def size(x: object) -> int:
        if id(x) in seen:
            return 0
        seen.add(id(x))
        inner = 0
        if isinstance(x, dict):
            inner = sum(size(k) + size(v) for k, v in x.items())
        elif isinstance(x, list | tuple):
            inner = sum(size(v) for v in x)
        return sys.getsizeof(x) + inner

    t = query.table  # type: ignore[attr-defined]
    total = size(t.keys) + size(t._packed) + size(t.index) + size(query._labels_cache)  # type: ignore[attr-defined]
    return total / n


def run_size(n: int, shards: int = 1) -> dict[str, object]:
    """One process watching `n` series, or with `shards` > 1 the first of that many replicas
    each taking in the `n` series and keeping its own share (`vigil.sharding`)."""
    from vigil.config import Config, Detection, Limits
    from vigil.engine import Engine, Query
    from vigil.metrics import Metrics
    from vigil.outputs.exporter import Exposition
    from vigil.outputs.store import Store
    from vigil.sharding import Shard

    base = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        limits = Limits(max_series_per_query=n)
        config = Config(data_dir=Path(tmp), limits=limits)
        source = SyntheticSource(n)
        query = Query(source, Detection(), limits, "benchmark", shard=Shard(0, shards) if shards > 1 else None)
        store = Store(Path(tmp))
        metrics = Metrics()
        clock = [1_700_000_000.0]
        engine = Engine(config, [query], store, metrics, clock=lambda: clock[0])

        def ticks(count: int) -> tuple[float, float, float]:
            cpu = fetch = 0.0
            for _ in range(count):
                clock[0] += INTERVAL
                f0 = time.process_time()
                samples = asyncio.run(source.fetch(clock[0]))
                fetch += time.process_time() - f0
                c0 = time.process_time()
                query.ingest(samples, clock[0])  # type: ignore[arg-type]
                cpu += time.process_time() - c0
            return cpu / count, fetch / count, rss_mib()

        ticks(WARMUP_TICKS.get(n, 60))
        tick_cpu, fetch_cpu, after_ticks = ticks(MEASURED_TICKS.get(n, 20))
        exposition = Exposition(metrics, engine.queries.values)
        exposition.body()  # the first scrape makes each series' label text, kept while the series lives
        render_cpu = gzip_cpu = 0.0
        for _ in range(3):  # the first scrape after a tick renders, and gzips once for every scraper
            query.version += 1
            r0 = time.process_time()
            text = exposition.body()
            g0 = time.process_time()
            zipped = exposition.body(gzip=True)
            render_cpu += (g0 - r0) / 3
            gzip_cpu += (time.process_time() - g0) / 3
        s0 = time.process_time()
        engine.snapshot()
        snapshot_cpu = time.process_time() - s0
        held = len(query.table)
        parts = state_bytes(query, held)
        objects = python_bytes(query, held)
        store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    share = (tick_cpu + fetch_cpu + render_cpu + gzip_cpu + snapshot_cpu / 4) / INTERVAL
    return {
        "series": n, "shards": shards, "held": held, "tick": tick_cpu, "samples": fetch_cpu, "render": render_cpu, "gzip": gzip_cpu,
        "plain_per_series": len(text) / held, "gzip_per_series": len(zipped) / held, "snapshot": snapshot_cpu,
        "share": share, "rss_mib": peak, "base_mib": base, "after_ticks_mib": after_ticks,
        "parts": parts, "objects": objects,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 and 10,000 series; print, do not write")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--shards", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
        print(json.dumps(run_size(args.child, args.shards)))
        return
    lines = [
        "| series (replica) | tick s | samples s | /metrics render s | gzip s | /metrics bytes per series (gzip) |"
        " snapshot s | CPU share at 15 s | peak RSS MiB | RSS per series | target |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    results = []
    runs = [(1_000, 1), (10_000, 1), (10_000, 4)] if args.quick else [(10_000, 1), (100_000, 1), (1_000_000, 1), (1_000_000, 8)]
    for n, shards in runs:
        r = run_child(__file__, str(n), "--shards", str(shards))
        if shards == 1:
            results.append(r)
        per_series = r["rss_mib"] * 2**20 / r["held"]
        verdict = ""
        if shards > 1:
            verdict = f"one of {shards} replicas, holding {r['held']:,}"
        elif n == 100_000:
            ok = r["share"] < 0.15 and r["rss_mib"] <= 400
            verdict = f"{'meets' if ok else 'MISSES'} < 15 % of a core and <= 400 MiB"
        elif n == 1_000_000:
            verdict = f"{'meets' if r['rss_mib'] <= 4096 else 'MISSES'} <= 4 GiB"
        lines.append(
            f"| {n:,}{'' if shards == 1 else f' (1 of {shards})'} | {r['tick']:.3f} | {r['samples']:.3f} | {r['render']:.3f} | {r['gzip']:.3f} |"
            f" {r['plain_per_series']:.0f} ({r['gzip_per_series']:.0f}) | {r['snapshot']:.2f} |"
            f" {100 * r['share']:.1f} % | {r['rss_mib']:.0f} | {per_series:,.0f} B | {verdict} |"
        )
        print(lines[-1], flush=True)
    largest = results[-1]
    n = largest["held"]
    members = [
        f"Memory member by member at {n:,} series (bytes per series; arrays as allocated, with the spare"
        " rows a growing table keeps):",
        "",
        "| part | bytes per series |",
        "| --- | ---: |",
        *(f"| {name} | {b:,.0f} |" for name, b in largest["parts"]),
        f"| Python objects per series (key, index entry, labels, /metrics label text) | {largest['objects']:,.0f} |",
        f"| the interpreter and its libraries, before any series (MiB) | {largest['base_mib']:.0f} |",
    ]
    print("\n".join(members))
    body = header("Live engine cost per series (benchmarks/live.py)") + "\n" + "\n".join(lines) + "\n"
    body += (
        "\nOne core per size, after 60 warm-up ticks (5 at 1,000,000); means over 20 ticks (5 at 1,000,000)."
        " `tick` is the engine's CPU time to take in one sample of every series (detectors, calibration,"
        " decision, series table, events); `samples` is the synthetic source making its column-wise"
        " `Samples`; `/metrics render` is the first scrape after a tick with the default export plus"
        " self-monitoring (the text is kept until the next tick), `gzip` compressing it (level 1, once for"
        " every scraper); bytes per series are that text's size over the input series;"
        " `snapshot` writes all state (every 60 s by default). A replica takes in every series and"
        " keeps its own shard's: its tick includes finding which series are its own, and its bytes per"
        " series are over the series it holds. CPU share at 15 s = (tick + samples +"
        " render + gzip + snapshot / 4) / 15 s. RSS per series is the peak RSS over the series,"
        f" the interpreter included; the issue's target is {TARGET_RSS_PER_SERIES:,} B.\n\n"
    )
    body += "\n".join(members) + "\n"
    finish("live", body, args.quick)


if __name__ == "__main__":
    main()
