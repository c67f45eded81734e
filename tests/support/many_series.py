"""`vigil run` watching many series read from the real Prometheus, and the overview's load time.

Used by tests/http/test_page_scale.py and benchmarks/page.py. A scrape target serves `n`
gauges ``page_requests_per_second{host, route}`` (100 routes per host) with new noise every
second; Prometheus scrapes it every second, and holds `history` earlier points of each at
15 s spacing (backfilled before it starts); Vigil queries it at a 15 s step, as a production
setup would, so each series arrives with that history and the sparklines are full. Nothing
here is a test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from playwright.sync_api import Browser

from support.processes import VigilProcess
from support.servers import MetricsTarget, PrometheusServer, wait_until

__all__ = ["PAGE_ROWS", "many_series", "overview_load"]

PAGE_ROWS = 50  # rows the overview shows per page (app.js PAGE_SIZE)
METRIC = "page_requests_per_second"
STEP = 15


def _exposition(labels: list[str], values: np.ndarray) -> str:
    lines = [f"{METRIC}{{{lab}}} {v:.3f}\n" for lab, v in zip(labels, values.tolist(), strict=True)]
    return f"# TYPE {METRIC} gauge\n" + "".join(lines)


def _history(labels: list[str], level: np.ndarray, points: int, rng: np.random.Generator) -> str:
    """OpenMetrics text of `points` samples per series up to a step ago, series by series."""
    last = int(time.time()) // STEP * STEP - STEP
    times = [last - STEP * k for k in range(points - 1, -1, -1)]
    values = level[:, None] * (1 + 0.05 * rng.standard_normal((level.size, points)))
    out = [f"# TYPE {METRIC} gauge\n"]
    for lab, row in zip(labels, values.tolist(), strict=True):
        out.extend(f"{METRIC}{{{lab}}} {v:.3f} {t}\n" for t, v in zip(times, row, strict=True))
    out.append("# EOF\n")
    return "".join(out)


@contextmanager
def many_series(directory: Path, n: int, history: int = 60) -> Iterator[VigilProcess]:
    """Prometheus with `n` series and a `vigil run` that has taken them all in."""
    rng = np.random.default_rng(0)
    level = rng.uniform(10, 1000, n)
    labels = [f'host="host-{i // 100}",route="/api/{i % 100}"' for i in range(n)]
    stop = threading.Event()
    with MetricsTarget(_exposition(labels, level)) as target:

        def churn() -> None:
            while not stop.wait(1.0):
                target.set(_exposition(labels, level * (1 + 0.05 * rng.standard_normal(n))))

        thread = threading.Thread(target=churn, daemon=True)
        thread.start()
        try:
            prom = PrometheusServer(directory / "prom", targets=[target.address])
            if history:  # with the labels the scrapes add, so that they continue the same series
                scraped = [f'{lab},instance="{target.address}",job="targets"' for lab in labels]
                prom.backfill(_history(scraped, level, history, rng))
            with prom:
                wait_until(lambda: prom.query(f"count({METRIC})")[0]["value"][1] == str(n), 60, 0.5,
                           f"Prometheus to hold the {n} series")
                config = {
                    "data_dir": "data",
                    "host": {"enabled": False},
                    "limits": {"max_series_per_query": n},
                    "prometheus": {
                        "url": prom.url, "lookback": f"{(history + 1) * STEP}s", "delay": "0s", "timeout": "30s",
                        "queries": [{"name": "requests", "query": METRIC, "step": f"{STEP}s"}],
                    },
                }
                with VigilProcess(directory / "vigil", config) as vigil:
                    vigil.start()
                    wait_until(lambda: vigil.get("/api/v1/summary").json()["series"] == n, 90, 0.5,
                               f"Vigil to hold the {n} series")
                    if "refused" in vigil.log():
                        raise RuntimeError(f"Vigil refused series: Prometheus holds more than {n}\n{vigil.log()}")
                    yield vigil
        finally:
            stop.set()
            thread.join(timeout=5)


def overview_load(browser: Browser, url: str) -> tuple[float, int, str]:
    """Open the overview in a fresh context: ms from navigation to its first page of rows drawn,
    how many rows, and the count line above them."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#series-table tbody tr[data-id]", timeout=30_000)
        # the mark is set in the frame after the rows are drawn; wait_for_function would need eval (CSP)
        marks = wait_until(lambda: page.evaluate("performance.getEntriesByName('vigil:rows').map((m) => m.startTime)"),
                           10, 0.01, "the overview's rows mark")
        ms = float(marks[0])
        rows = page.locator("#series-table tbody tr[data-id]").count()
        return ms, rows, page.inner_text("#series-count")
    finally:
        context.close()
