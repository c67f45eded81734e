"""Verdicts from the page, in headless Chromium, against a real `vigil run` with an injected spike.

One CSV file is replayed (one sample a minute, 6,000 times faster): the value jumps from
about 40 to 95 for three samples at row 300, which opens an event that stays open (see
tests/http/test_page_live.py). The test signs as a person, marks the event from the
events view and from the series view, undoes a verdict, and reads what the API and the
store's list of verdicts got.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from test_page_live import write_csv

from support.chromium import screenshot
from support.processes import VigilProcess
from support.servers import wait_until


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("page-feedback")
    write_csv(root / "cpu.csv", "cpu_utilization", seed=0, spike=True)
    config = {
        "data_dir": "data",
        "host": {"enabled": False},
        "detection": {
            "detector": "ewma", "params": {"ewma": {"warmup": 5}}, "calibration_min_samples": 10,
            "min_rel_deviation": 0.3, "resolve_after": 1000,
        },
        "replay": [{"name": "web1_cpu", "path": str(root / "cpu.csv"), "value_column": "cpu_utilization",
                    "speed": 6000}],
    }
    with VigilProcess(root / "vigil", config) as vigil:
        vigil.start()
        items = wait_until(lambda: vigil.get("/api/v1/anomalies").json()["items"], 30, 0.2, "the spike's event")
        yield {"vigil": vigil, "event": items[0]}
        vigil.stop()
    assert "Traceback" not in vigil.log()


def _feedback(vigil: VigilProcess, event_id: str) -> dict[str, Any]:
    response = vigil.get(f"/api/v1/anomalies/{event_id}/feedback")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def test_marking_an_event_from_the_events_view_reaches_the_store(live: dict[str, Any], page: Page) -> None:
    vigil, event = live["vigil"], live["event"]
    page.goto(f"{vigil.url}/#/events")
    row = page.locator(f"table.events tbody tr[data-id='{event['id']}']")
    expect(row).to_contain_text("Firing")
    page.fill("#author", "carol")
    row.get_by_label("Note for the verdict").fill("load test from the release team")
    row.get_by_role("button", name="Not an incident").click()
    expect(row.locator(".badge.verdict-not_an_incident")).to_have_text("Not an incident")
    expect(row).to_contain_text("by carol")
    expect(row).to_contain_text("load test from the release team")
    expect(row).to_contain_text("no longer alert on this series")
    screenshot(page, "events-verdict")
    verdict = _feedback(vigil, event["id"])["verdict"]
    assert (verdict["verdict"], verdict["author"], verdict["note"]) == (
        "not_an_incident", "carol", "load test from the release team",
    )
    listed = vigil.get("/api/v1/feedback").json()["items"]
    assert listed[0]["event_id"] == event["id"] and listed[0]["in_force"]

    row.get_by_role("button", name="Undo").click()
    expect(row.get_by_role("button", name="Not an incident")).to_be_visible()
    answer = _feedback(vigil, event["id"])
    assert answer["verdict"] is None
    assert answer["history"][0]["undone_by"] == "carol"


def test_marking_an_event_from_the_series_view(live: dict[str, Any], page: Page) -> None:
    vigil, event = live["vigil"], live["event"]
    page.goto(f"{vigil.url}/#/series/{event['series_id']}")
    row = page.locator(f"table.events tbody tr[data-id='{event['id']}']")
    row.get_by_role("button", name="Incident", exact=True).click()
    expect(row.locator(".badge.verdict-incident")).to_have_text("Incident")
    expect(row).to_contain_text("by anonymous")
    assert _feedback(vigil, event["id"])["verdict"]["verdict"] == "incident"
    screenshot(page, "series-verdict")
