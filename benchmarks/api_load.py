"""The API under load: the page's request with 20 concurrent clients, and the ticks meanwhile.

`vigil run` (its own process, as deployed) reads `n` series from a stand-in for
Prometheus's HTTP API (a child process answering /api/v1/query and /api/v1/query_range
with the series on the step grid, values drawn anew each call). Once every series is in
and a few ticks have passed, 20 clients (this process, asyncio) send the overview page's
request, `/api/v1/series?limit=50&sparkline=60`, back to back for `--seconds`. The table
gives the latency percentiles, and the ticks of the same window from Vigil's own
`vigil_tick_duration_seconds`: how many ran against how many were due, and their mean and
slowest-bucket duration.

    python benchmarks/api_load.py            # 10,000 and 100,000 series; writes BENCHMARKS.md
    python benchmarks/api_load.py --quick    # 1,000 series, 30 s; prints only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from report import finish, header  # noqa: E402

from support.processes import VigilProcess  # noqa: E402
from support.servers import free_port, wait_until  # noqa: E402

STEP = 15.0
CLIENTS = 20
REQUEST = {"limit": 50, "sparkline": 60}
LOOKBACK = "15m"  # the first fetch: 60 points per series, full sparklines


def _serve_prometheus(port: int, n: int) -> None:
    """A stand-in for Prometheus's query API with `n` gauges (runs in a child process)."""
    names = [f'{{"__name__":"api_requests","host":"host-{i // 100}","route":"/api/{i % 100}"}}' for i in range(n)]
    level = np.random.default_rng(0).uniform(10, 1000, n)
    rng = np.random.default_rng(1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            if self.path.startswith("/api/v1/query_range"):
                start, end, step = (float(form[k][0]) for k in ("start", "end", "step"))
                times = np.arange(math.ceil(start / step) * step, end + step / 2, step)
                values = level[:, None] * (1 + 0.05 * rng.standard_normal((n, times.size)))
                stamps = [f"[{t:.3f}," for t in times.tolist()]
                result = ",".join(
                    '{"metric":' + name + ',"values":[' + ",".join(f'{a}"{v:.3f}"]' for a, v in zip(stamps, row, strict=True)) + "]}"
                    for name, row in zip(names, values.tolist(), strict=True)
                )
                body = f'{{"status":"success","data":{{"resultType":"matrix","result":[{result}]}}}}'
            else:  # the instant query: every series once, as Prometheus answers it
                result = ",".join('{"metric":' + name + ',"value":[0,"1"]}' for name in names)
                body = f'{{"status":"success","data":{{"resultType":"vector","result":[{result}]}}}}'
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _ticks(metrics: str) -> tuple[float, float, dict[float, float]]:
    """count, sum and cumulative buckets of vigil_tick_duration_seconds, over every query."""
    count = total = 0.0
    buckets: dict[float, float] = {}
    for line in metrics.splitlines():
        if line.startswith("vigil_tick_duration_seconds_count"):
            count += float(line.rsplit(" ", 1)[1])
        elif line.startswith("vigil_tick_duration_seconds_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("vigil_tick_duration_seconds_bucket"):
            le = re.search(r'le="([^"]+)"', line)
            if le:
                edge = math.inf if le.group(1) == "+Inf" else float(le.group(1))
                buckets[edge] = buckets.get(edge, 0.0) + float(line.rsplit(" ", 1)[1])
    return count, total, buckets


async def _client(host: str, port: int, target: bytes, end: float, took: list[float]) -> None:
    """One keep-alive connection sending the request back to back until `end`: a bare HTTP/1.1
    client, so that the clients cost little of the machine they share with Vigil."""
    reader, writer = await asyncio.open_connection(host, port)
    request = b"GET " + target + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
    try:
        while time.perf_counter() < end:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            if status != b"200":
                raise RuntimeError(f"the page's request answered {status.decode()}")
            took.append((time.perf_counter() - began) * 1000)
    finally:
        writer.close()


async def _load(url: str, seconds: float) -> list[float]:
    """Latencies (ms) of the page's request from CLIENTS clients sending back to back for `seconds`."""
    took: list[float] = []
    address = httpx.URL(url)
    target = str(httpx.URL("/api/v1/series", params=REQUEST)).encode()
    end = time.perf_counter() + seconds
    await asyncio.gather(*(_client(address.host, address.port or 80, target, end, took) for _ in range(CLIENTS)))
    return took


def measure(n: int, seconds: float) -> dict[str, float]:
    port = free_port()
    fake = multiprocessing.Process(target=_serve_prometheus, args=(port, n), daemon=True)
    fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = {
                "host": {"enabled": False},
                "server": {"rate_limit": 1e6},  # every client is 127.0.0.1
                "limits": {"max_series_per_query": max(n, 10_000)},
                "prometheus": {"url": f"http://127.0.0.1:{port}", "lookback": LOOKBACK, "timeout": "60s",
                               "queries": [{"name": "api", "query": "api_requests", "step": f"{STEP:g}s"}]},
            }
            with VigilProcess(Path(tmp), config) as vigil:
                vigil.start(wait=120)
                wait_until(lambda: vigil.get("/api/v1/summary").json()["series"] == n, timeout=600, interval=1.0)
                time.sleep(3 * STEP)  # a few ticks of new points after the first fetch
                count0, sum0, buckets0 = _ticks(httpx.get(f"{vigil.url}/metrics", timeout=120).text)
                began = time.time()
                took = asyncio.run(_load(vigil.url, seconds))
                elapsed = time.time() - began
                count1, sum1, buckets1 = _ticks(httpx.get(f"{vigil.url}/metrics", timeout=120).text)
    finally:
        fake.kill()
    ticks = count1 - count0
    slowest = min((edge for edge in buckets1 if buckets1[edge] - buckets0.get(edge, 0.0) >= ticks), default=math.inf)
    cuts = statistics.quantiles(took, n=100)
    return {
        "series": n, "requests": len(took), "rps": len(took) / elapsed, "p50": cuts[49], "p99": cuts[98],
        "max": max(took), "ticks": ticks, "due": elapsed / STEP,
        "tick_mean": (sum1 - sum0) / ticks if ticks else math.nan, "tick_max_le": slowest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 series for 30 s; print only")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients send (default 60)")
    parser.add_argument("--series", type=int, action="append", help="only these sizes (repeatable); print only")
    args = parser.parse_args()
    sizes, seconds = ([1_000], 30.0) if args.quick else (args.series or [10_000, 100_000], args.seconds)
    args.quick = args.quick or bool(args.series)
    targets = {10_000: 200.0, 100_000: 500.0}
    rows = []
    for n in sizes:
        r = measure(n, seconds)
        print(json.dumps(r), flush=True)
        target = targets.get(n)
        verdict = "" if target is None else (
            f"{'meets' if r['p99'] < target else 'misses'} p99 < {target:g} ms"
        )
        rows.append(
            f"| {n:,} | {r['requests']:,} | {r['rps']:.0f} | {r['p50']:.0f} | {r['p99']:.0f} | {r['max']:.0f} "
            f"| {r['ticks']:.0f} / {r['due']:.0f} | {r['tick_mean']:.2f} | {r['tick_max_le']:g} | {verdict} |"
        )
    body = "\n".join([
        header("The API under load (benchmarks/api_load.py)"),
        "",
        "| series | requests | requests/s | p50 ms | p99 ms | max ms | ticks run / due | tick mean s "
        "| slowest tick under s | target |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *rows,
        "",
        f"{CLIENTS} clients on the same machine send the overview page's request "
        "(`/api/v1/series?limit=50&sparkline=60`) back to back for "
        f"{seconds:g} s to `vigil run` (its own process) reading the series from a stand-in for Prometheus's "
        f"query API at a {STEP:g} s step. Ticks are Vigil's own `vigil_tick_duration_seconds` over the same "
        "window: how many ran against how many were due (window / step), their mean, and the histogram "
        "bucket under which the slowest fell.",
    ])
    finish("api-load", body, args.quick)


if __name__ == "__main__":
    main()
