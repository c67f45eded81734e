"""The overview with 10,000 series: one page of rows, the right total, its load time measured.

The load time (navigation to the first page of rows drawn) is recorded, not asserted: it
depends on the machine. benchmarks/page.py measures it properly for BENCHMARKS.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from support.chromium import ARTIFACTS, screenshot
from support.many_series import PAGE_ROWS, many_series, overview_load

N = 10_000


def test_overview_of_10000_series_draws_one_page_and_pages_through_the_api(
    tmp_path: Path, browser: Browser, page: Page, record_property: Callable[[str, object], None]
) -> None:
    with many_series(tmp_path, N) as vigil:
        ms, rows, count = overview_load(browser, vigil.url)
        assert rows == PAGE_ROWS
        assert count == f"Showing 1–{PAGE_ROWS} of {N:,} series"
        record_property("overview_load_ms", round(ms))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "overview-10000.json").write_text(json.dumps({"series": N, "load_ms": round(ms)}))
        print(f"overview of {N:,} series: first page of rows drawn {ms:.0f} ms after navigation")

        page.goto(vigil.url)
        table_rows = page.locator("#series-table tbody tr[data-id]")
        expect(table_rows).to_have_count(PAGE_ROWS)
        page.click("button[data-key='next']")
        expect(page.locator("#series-count")).to_have_text(f"Showing 51–100 of {N:,} series")
        page.fill("#search", "host=host-42")  # 100 routes on that host
        expect(page.locator("#series-count")).to_have_text("Showing 1–50 of 100 series")
        for text in table_rows.all_inner_texts():
            assert "host=host-42" in text
        screenshot(page, "overview-10000")
