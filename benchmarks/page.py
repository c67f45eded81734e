"""Load time of the page's overview with 10,000 series, in Debian's headless Chromium.

`vigil run` reads the series from the real Prometheus (tests/many_series.py: a scrape
target with the series, scraped every second, queried by Vigil at a 15 s step). Each run
opens the overview in a fresh browser context and takes the time from navigation to its
first page of rows drawn (the page's `vigil:rows` performance mark, set in the frame after
the rows are in the document). The API calls the overview makes are timed on their own.

    python benchmarks/page.py            # 10,000 series, 7 runs; writes the table into BENCHMARKS.md
    python benchmarks/page.py --quick    # 1,000 series, 3 runs; prints only

Needs what the browser tests need: scripts/setup --test (Prometheus, Chromium, playwright).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from report import finish, header  # noqa: E402


def api_ms(url: str, params: dict[str, str | int], times: int = 10) -> float:
    """Median wall time of one GET, in ms (the client is on the same machine)."""
    took = []
    with httpx.Client(timeout=30) as client:
        for _ in range(times):
            began = time.perf_counter()
            client.get(url, params=params).raise_for_status()
            took.append((time.perf_counter() - began) * 1000)
    return statistics.median(took)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 series and 3 runs; print, do not write")
    ap.add_argument("--series", type=int, default=None, help="how many series (default 10,000; 1,000 with --quick)")
    ap.add_argument("--runs", type=int, default=None, help="page loads measured (default 7; 3 with --quick)")
    args = ap.parse_args()
    n = args.series or (1_000 if args.quick else 10_000)
    runs = args.runs or (3 if args.quick else 7)

    from chromium import launch
    from many_series import PAGE_ROWS, many_series, overview_load
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, many_series(Path(tmp), n) as vigil, sync_playwright() as p:
        browser = launch(p)
        version = browser.version
        overview_load(browser, vigil.url)  # the first load after start: not counted
        loads = []
        for _ in range(runs):
            ms, rows, count = overview_load(browser, vigil.url)
            if rows != PAGE_ROWS or f"of {n:,} series" not in count:
                sys.exit(f"the overview showed {rows} rows ({count!r}), not {PAGE_ROWS} of {n:,}")
            loads.append(ms)
            print(f"overview drawn in {ms:.0f} ms", flush=True)
        browser.close()
        page = {"limit": PAGE_ROWS, "offset": 0, "sparkline": 60}
        summary = api_ms(f"{vigil.url}/api/v1/summary", {})
        first = api_ms(f"{vigil.url}/api/v1/series", page)
        searched = api_ms(f"{vigil.url}/api/v1/series", {**page, "search": "host=host-42"})
    lines = [
        "| series | runs | overview drawn, median ms | min ms | max ms | /api/v1/summary ms |"
        " /api/v1/series (first page) ms | /api/v1/series?search= ms | target |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        f"| {n:,} | {runs} | {statistics.median(loads):.0f} | {min(loads):.0f} | {max(loads):.0f} | {summary:.0f} |"
        f" {first:.0f} | {searched:.0f} | {'meets' if statistics.median(loads) < 1000 else 'MISSES'} < 1 s |",
    ]
    body = header("The page's overview with many series (benchmarks/page.py)") + "\n" + "\n".join(lines) + "\n"
    body += (
        f"\nDebian's Chromium {version}, headless, on the same machine as `vigil run`"
        f" and Prometheus; {n:,} series of one query read at a 15 s step, each with 60 points of history (full"
        " sparklines). `overview drawn` is the time from"
        f" navigation to the first page of {PAGE_ROWS} rows drawn with their sparklines (the page's `vigil:rows`"
        " mark), in a fresh browser context each run, after one load not counted; it includes loading the"
        " page (four files: the HTML, two scripts, a style sheet) and its two API calls (the health summary and"
        " one page of series). The API does"
        " the filtering, sorting and paging, so the browser only ever gets one page. API times are medians of"
        " 10 requests each.\n"
    )
    finish("page", body, args.quick)


if __name__ == "__main__":
    main()
