"""A headless Chromium per test module, and a fresh page (context) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from chromium import launch


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # module scope: Playwright's own event loop is gone before tests elsewhere call asyncio.run
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"the page's scripts failed: {errors}"
