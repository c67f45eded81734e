from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--nab",
        default=os.environ.get("VIGIL_NAB", str(ROOT.parent / "shared" / "nab")),
        help="folder of the NAB corpus (data/, labels/); default $VIGIL_NAB or ../shared/nab",
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
