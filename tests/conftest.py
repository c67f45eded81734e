from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.disks import small_disk

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--nab",
        default=os.environ.get("VIGIL_NAB", str(ROOT.parent / "shared" / "nab")),
        help="folder of the NAB corpus (data/, labels/); default $VIGIL_NAB or ../shared/nab",
    )
    parser.addoption(
        "--cmd",
        default=os.environ.get("VIGIL_CMD", str(ROOT.parent / "shared" / "cmd")),
        help="folder of the cloud monitoring corpus (data/, labels/index.json); default $VIGIL_CMD or ../shared/cmd",
    )
    parser.addoption(
        "--event-score",
        default=os.environ.get("VIGIL_EVENT_SCORE"),
        help="the reference event scorer event_score.py; default $VIGIL_EVENT_SCORE or <cmd>/../tools/event_score.py",
    )


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell must not change results: drop VIGIL_* and proxy variables."""
    for key in list(os.environ):
        if key.startswith("VIGIL_") or key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def nab_dir(pytestconfig: pytest.Config) -> Path:
    path = Path(pytestconfig.getoption("--nab"))
    if not (path / "data").is_dir() or not (path / "labels" / "combined_windows.json").is_file():
        pytest.fail(f"NAB corpus not found at {path}: pass --nab DIR or set VIGIL_NAB")
    return path


@pytest.fixture(scope="session")
def cmd_dir(pytestconfig: pytest.Config) -> Path:
    path = Path(pytestconfig.getoption("--cmd"))
    if not (path / "data").is_dir() or not (path / "labels" / "index.json").is_file():
        pytest.fail(f"cloud monitoring corpus not found at {path}: pass --cmd DIR or set VIGIL_CMD")
    return path


@pytest.fixture(scope="session")
def event_score_py(pytestconfig: pytest.Config) -> Path:
    given = pytestconfig.getoption("--event-score")
    path = Path(given) if given else Path(pytestconfig.getoption("--cmd")).parent / "tools" / "event_score.py"
    if not path.is_file():
        pytest.fail(f"reference event scorer not found at {path}: pass --event-score FILE or set VIGIL_EVENT_SCORE")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium (tests/chromium.py), one per test module.

    Module scope: Playwright's own event loop is gone before tests elsewhere call asyncio.run.
    """
    from playwright.sync_api import sync_playwright

    from support.chromium import launch

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context and page (UTC, en-US); the test fails if the page's scripts throw."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"the page's scripts failed: {errors}"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (`support.disks.small_disk`): root is needed to mount it, as CI has."""
    with small_disk(tmp_path / "disk") as disk:
        yield disk
