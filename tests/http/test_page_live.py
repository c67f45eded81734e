"""The page in headless Chromium against a real `vigil run` fed with an injected anomaly.

Four CSV files are replayed (one sample a minute, 6,000 times faster: each file takes 3.6 s).
`web1_cpu` jumps from about 40 to 95 for three samples at row 300; the others stay calm.
Gates keep noise from opening events (`min_rel_deviation`), and `resolve_after` is longer
than what follows the spike, so the event is still firing when the page is looked at. A
real webhook receiver takes the notification. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from support.chromium import contrast, screenshot, text_colours
from support.processes import VigilProcess
from support.receivers import HookServer
from support.servers import free_port, wait_until

ROWS, SPIKE = 360, 300
FILES = {  # query -> value column
    "web1_cpu": "cpu_utilization",
    "web2_cpu": "cpu_utilization",
    "db_memory": "memory_used_percent",
    "api_latency": "latency_seconds",
}


def write_csv(path: Path, column: str, seed: int, spike: bool) -> float:
    """One sample a minute around 40; with `spike`, 95 for three rows from SPIKE. Returns the last value."""
    values = 40 + np.random.default_rng(seed).normal(0, 1.5, ROWS)
    if spike:
        values[SPIKE : SPIKE + 3] = 95.0
    lines = [f"timestamp,{column}"] + [f"{1_700_000_000 + 60 * i},{v:.3f}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return float(values[-1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("page")
    last = {}
    replay = []
    for i, (name, column) in enumerate(FILES.items()):
        last[name] = write_csv(root / f"{name}.csv", column, seed=i, spike=name == "web1_cpu")
        replay.append({"name": name, "path": str(root / f"{name}.csv"), "value_column": column, "speed": 6000})
    with HookServer() as hook:
        config = {
            "data_dir": "data",
            "host": {"enabled": False},
            "detection": {
                "detector": "ewma",
                "params": {"ewma": {"warmup": 5}},
                "calibration_min_samples": 10,
                "min_rel_deviation": 0.3,  # noise is about 4 %: only the spike passes
                "resolve_after": 1000,
            },
            "replay": replay,
            "notify": {"receivers": [{"name": "agent", "type": "webhook", "url": f"{hook.url}/events"}]},
            "maintenance": [{"name": "new-year", "matchers": '{query="db_memory"}', "cron": "0 0 1 1 *",
                             "duration": "1h"}],
        }
        with VigilProcess(root / "vigil", config) as vigil:
            vigil.start()
            ids = {}
            for name, value in last.items():  # every file replayed to its end
                ids[name] = wait_until(lambda name=name, value=value: _replayed(vigil, name, value), 30, 0.2,
                                       f"{name} replayed to its last row")
            events = wait_until(lambda: _delivered(vigil), 30, 0.2, "the spike's event, sent to the receiver")
            yield {"vigil": vigil, "ids": ids, "event": events[0], "hook": hook}
            vigil.stop()
        assert "Traceback" not in vigil.log()


def _replayed(vigil: VigilProcess, query: str, last: float) -> str | None:
    (item,) = vigil.get("/api/v1/series", query=query).json()["items"]
    return str(item["id"]) if item["value"] == pytest.approx(last, abs=1e-3) else None


def _delivered(vigil: VigilProcess) -> list[dict[str, Any]]:
    items = vigil.get("/api/v1/anomalies").json()["items"]
    return [e for e in items if e.get("delivery", {}).get("agent", {}).get("firing") == "sent"]


def _ts(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def rows(page: Page) -> Any:
    return page.locator("#series-table tbody tr[data-id]")


def test_the_anomalous_series_is_listed_first(live: dict[str, Any], page: Page) -> None:
    page.goto(live["vigil"].url)
    expect(rows(page)).to_have_count(4)
    first = rows(page).first
    assert first.get_attribute("data-id") == live["ids"]["web1_cpu"]
    expect(first.locator(".badge")).to_have_text("Anomalous")
    assert first.locator("svg.spark circle.marker").count() >= 1, "the small chart marks the anomaly"
    assert rows(page).nth(1).locator("svg.spark circle.marker").count() == 0
    expect(page.locator(".card", has_text="Anomalous now").locator(".card-value")).to_have_text("1")
    expect(page.locator(".card", has_text="Sources")).to_contain_text("all ok")
    screenshot(page, "overview")


def test_the_series_chart_has_a_marker_at_the_anomaly(live: dict[str, Any], page: Page) -> None:
    vigil, sid, event = live["vigil"], live["ids"]["web1_cpu"], live["event"]
    page.goto(f"{vigil.url}/#/series/{sid}?range=all")
    chart = page.locator("figure svg.chart").first
    expect(chart.locator("circle.marker").first).to_be_attached()
    points = vigil.get(f"/api/v1/series/{sid}").json()["points"]
    t0, t1 = points["t"][0], points["t"][-1]
    started = _ts(event["started_at"])  # the first sample over the threshold: the spike's first row
    area = chart.locator("rect.plot-area").bounding_box()
    assert area is not None
    want = area["x"] + (started - t0) / (t1 - t0) * area["width"]
    centres = []
    for box in (m.bounding_box() for m in chart.locator("circle.marker").all()):
        assert box is not None
        centres.append(box["x"] + box["width"] / 2)
    assert min(abs(c - want) for c in centres) < 1.5, f"no marker at x={want:.1f} (the spike); markers at {centres}"
    assert min(centres) > want - 1.5, "a marker before the anomaly started"
    assert 0.25 < (want - area["x"]) / area["width"] < 0.75, "the spike is drawn mid-chart, not at an edge"
    expect(page.locator("table.events tbody tr")).to_have_count(1)
    expect(page.locator("table.events tbody tr")).to_contain_text("cpu_utilization is 95.0")
    expect(page.locator("table.events .deliver.sent")).to_have_text("firing sent")
    screenshot(page, "series")


def test_numbers_read_as_in_alerts_and_the_score_chart_reads_rarity(live: dict[str, Any], page: Page) -> None:
    vigil, sid, event = live["vigil"], live["ids"]["web1_cpu"], live["event"]
    (item,) = vigil.get("/api/v1/series", query="web1_cpu").json()["items"]
    page.goto(vigil.url)
    row = rows(page).first
    cells = row.locator("td")
    expect(cells.nth(2)).to_have_text(item["value_text"])  # State, Query, Value, Expected (band), Score
    expect(cells.nth(3)).to_have_text(item["band_text"])
    number = r"-?(0|\d\.\d\d|\d\d\.\d|\d{3,4}|\d\.\d\de-?\d+)"  # 3 significant digits (4 from 1000 to 9999)
    assert re.fullmatch(rf"{number} \({number} to {number}\)", item["band_text"]), item["band_text"]
    assert re.fullmatch(number, item["value_text"]), item["value_text"]
    # the event is held open after its 3 samples: the row shows its peak score, not the latest (0)
    expect(cells.nth(4)).not_to_have_text("0.000")
    assert item["score"] == event["peak_score"]
    page.goto(f"{vigil.url}/#/series/{sid}?range=all")
    score_chart = page.locator("figure svg.chart").nth(1)
    expect(score_chart.locator("text", has_text="threshold 1 in 25K")).to_have_count(1)
    ticks = [t for t in score_chart.locator("text.tick").all_text_contents() if t.startswith("1 in ")]
    assert len(ticks) >= 2 and "1 in 1" in ticks, f"a log axis of rarity: {ticks}"
    marker = score_chart.locator("circle.marker").first
    assert "1 in" in (marker.locator("title").text_content() or "")
    screenshot(page, "series-rarity")


def test_the_event_is_in_the_events_view_with_its_notification_state(live: dict[str, Any], page: Page) -> None:
    event = live["event"]
    page.goto(f"{live['vigil'].url}/#/events")
    row = page.locator(f"table.events tbody tr[data-id='{event['id']}']")
    expect(row).to_contain_text("Firing")
    expect(row).to_contain_text(event["summary"])
    expect(row.locator(".deliver.sent")).to_have_text("firing sent")
    expect(row).to_contain_text("agent:")
    screenshot(page, "events")
    page.select_option("#state", "resolved")
    expect(page.locator(".empty")).to_have_text("No events match these filters.")


def test_typing_in_the_filter_narrows_the_list(live: dict[str, Any], page: Page) -> None:
    page.goto(live["vigil"].url)
    expect(rows(page)).to_have_count(4)
    page.fill("#search", "cpu")
    expect(rows(page)).to_have_count(2)
    for text in rows(page).all_inner_texts():
        assert "cpu" in text
    expect(page.locator("#series-count")).to_have_text("Showing 1–2 of 2 series")
    page.select_option("#status", "anomalous")
    expect(rows(page)).to_have_count(1)
    assert rows(page).first.get_attribute("data-id") == live["ids"]["web1_cpu"]
    screenshot(page, "overview-filtered")
    page.fill("#search", "no such series")
    expect(page.locator("td.empty")).to_have_text("No series match these filters.")


def test_filters_live_in_the_address_so_a_view_can_be_linked(live: dict[str, Any], page: Page) -> None:
    page.goto(f"{live['vigil'].url}/#/?query=db_memory")
    expect(rows(page)).to_have_count(1)
    assert rows(page).first.get_attribute("data-id") == live["ids"]["db_memory"]
    expect(page.locator("#query")).to_have_value("db_memory")
    page.select_option("#query", "")
    expect(rows(page)).to_have_count(4)
    assert page.url.endswith("/#/")
    page.goto(f"{live['vigil'].url}/#/?page=3")  # past the end: the last page instead
    expect(rows(page)).to_have_count(4)


def _tab_to(page: Page, selector: str, key: str = "Tab", most: int = 40) -> None:
    for _ in range(most):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{key} never reached {selector}")


def _focus_is_visible(page: Page) -> bool:
    style = page.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                          " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }")
    return bool(style[0] != "none" and style[1] >= 2)


def test_keyboard_alone_reaches_a_series_and_the_events(live: dict[str, Any], page: Page) -> None:
    sid = live["ids"]["web1_cpu"]
    page.goto(live["vigil"].url)
    expect(rows(page)).to_have_count(4)
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    _tab_to(page, f"a[data-key='series-{sid}']")
    assert _focus_is_visible(page), "the focused link shows an outline"
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live['vigil'].url}/#/series/{sid}")
    expect(page.locator("figure svg.chart").first).to_be_attached()
    assert page.evaluate("document.activeElement.tagName") == "H1", "focus moves to the new view"
    _tab_to(page, "button[data-key='range-all']")
    page.keyboard.press("Enter")
    expect(page.locator("button[data-key='range-all']")).to_have_attribute("aria-pressed", "true")
    _tab_to(page, "nav a[data-nav='events']", key="Shift+Tab")
    assert _focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("table.events tbody tr")).to_have_count(1)
    expect(page.locator("nav a[data-nav='events']")).to_have_attribute("aria-current", "page")


@pytest.mark.parametrize("view", ["#/", "#/series/{sid}?range=all", "#/events"], ids=["overview", "series", "events"])
def test_text_colours_have_at_least_4_5_to_1_contrast(live: dict[str, Any], page: Page, view: str) -> None:
    page.goto(f"{live['vigil'].url}/{view.format(sid=live['ids']['web1_cpu'])}")
    page.wait_for_selector("table.list tbody tr")
    found = text_colours(page)
    assert len(found) > 20, "the page shows text"
    poor = [(f["text"], f["fg"], f["bg"], round(contrast(f["fg"], f["bg"]), 2)) for f in found
            if contrast(f["fg"], f["bg"]) < 4.5]
    assert not poor, f"text below 4.5:1: {poor}"


def test_a_mute_made_on_the_page_is_in_the_api_and_deleted_there(live: dict[str, Any], page: Page) -> None:
    vigil = live["vigil"]
    page.goto(f"{vigil.url}/#/mutes")
    page.evaluate("localStorage.setItem('vigil-author', 'ana')")  # as "Verdicts are signed as" sets it
    expect(page.locator("nav a[data-nav='mutes']")).to_have_attribute("aria-current", "page")
    expect(page.locator("table.list tbody tr", has_text="new-year")).to_contain_text("cron 0 0 1 1 *")
    page.fill("#mute-matchers", '{query="api_latency"}')
    page.select_option("#mute-duration", "2h")
    page.fill("#mute-comment", "deploying the API")
    page.click("#mute-add")
    expect(page.locator("#mute-said")).to_contain_text('Muted {query="api_latency"} until')
    (mute,) = vigil.get("/api/v1/mutes").json()["mutes"]
    assert (mute["matchers"], mute["comment"], mute["author"], mute["active"]) == (
        '{query="api_latency"}', "deploying the API", "ana", True)
    assert _ts(mute["ends_at"]) - _ts(mute["starts_at"]) == pytest.approx(7200, abs=1)
    row = page.locator(f"tr[data-id='{mute['id']}']")
    expect(row).to_contain_text("deploying the API")
    screenshot(page, "mutes")
    poor = [f["text"] for f in text_colours(page) if contrast(f["fg"], f["bg"]) < 4.5]
    assert not poor, f"text below 4.5:1: {poor}"

    page.fill("#mute-matchers", "{query=}")
    page.click("#mute-add")
    expect(page.locator("#mute-said")).to_contain_text("Vigil answered 400: matchers is '{query=}'")
    assert len(vigil.get("/api/v1/mutes").json()["mutes"]) == 1, "a refused mute is not made"

    row.locator("button", has_text="Delete").click()
    expect(page.locator("#mute-said")).to_contain_text("Deleted the mute")
    expect(page.locator(f"tr[data-id='{mute['id']}']")).to_have_count(0)
    assert vigil.get("/api/v1/mutes").json()["mutes"] == []


def test_token_then_empty_source_down_and_unreachable_states(tmp_path: Path, page: Page) -> None:
    closed = free_port()  # nothing listens there: the Prometheus source fails
    config = {
        "data_dir": "data",
        "host": {"enabled": False},
        "server": {"token": {"value": "page-token"}},
        "prometheus": {
            "url": f"http://127.0.0.1:{closed}", "timeout": "1s",
            "queries": [{"name": "api_requests", "query": "rate(http_requests_total[1m])", "step": "1s"}],
        },
    }
    with VigilProcess(tmp_path, config) as vigil:
        vigil.start()
        auth = {"Authorization": "Bearer page-token"}
        wait_until(lambda: httpx.get(f"{vigil.url}/api/v1/summary", headers=auth).json()["sources"]["api_requests"]
                   ["status"] == "failing", 20, 0.2, "the source to be failing")
        page.goto(vigil.url)
        page.get_by_label("This Vigil needs its API token").fill("page-token")
        page.keyboard.press("Enter")
        expect(page.locator("td.empty")).to_contain_text("No series yet — waiting for the first samples.")
        expect(page.locator(".source-problem")).to_contain_text("Source down: api_requests.")
        expect(page.locator(".card", has_text="Sources")).to_contain_text("1 of 1 not ok")
        screenshot(page, "empty-source-down")
        vigil.stop()
        banner = page.locator("#banner")
        expect(banner).to_be_visible(timeout=15_000)
        expect(banner).to_contain_text("Cannot reach Vigil")
        expect(page.locator("td.empty")).to_be_visible()  # the last data stays on screen
        screenshot(page, "unreachable")
        poor = [f for f in text_colours(page) if contrast(f["fg"], f["bg"]) < 4.5]
        assert not poor, f"text below 4.5:1: {poor}"
