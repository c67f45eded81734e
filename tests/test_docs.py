"""The docs say what the code does: detectors.md lists every parameter with its default, reliability.md names tests that exist."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from vigil.detection.calibration import RecordCalibration
from vigil.detection.decision import DecisionConfig
from vigil.detection.detectors import DETECTORS
from vigil.detection.tail import TailCalibration

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "detectors.md"


def documented(section: str) -> dict[str, str]:
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/detectors.md has no section '## {section}'"
    return dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", match.group(1), re.M))


def in_code(obj: Any) -> dict[str, str]:
    if dataclasses.is_dataclass(obj):
        return {f.name: repr(f.default) for f in dataclasses.fields(obj)}
    return {k: repr(p.default) for k, p in inspect.signature(obj).parameters.items()}


@pytest.mark.parametrize(
    ("section", "obj"),
    [*((f"`{name}`", cls) for name, cls in sorted(DETECTORS.items())),
     ("Calibration", TailCalibration), ("Record calibration", RecordCalibration), ("Decision", DecisionConfig)],
)
def test_parameter_tables_match_the_code(section: str, obj: Any) -> None:
    assert documented(section) == in_code(obj)


def test_configuration_doc_shows_the_generated_example() -> None:
    from vigil.config import example_config

    text = (DOC.parent / "configuration.md").read_text()
    block = text.split("<!-- example:start -->\n```yaml\n", 1)[1].split("```\n<!-- example:end -->", 1)[0]
    assert block == example_config()


def test_every_test_docs_reliability_names_exists() -> None:
    """docs/reliability.md backs each fault with tests: each file and test function it names is there."""
    text = (ROOT / "docs" / "reliability.md").read_text()
    named = re.findall(r"(tests/[\w/]+\.py)(?:::(\w+))?", text)
    assert len(named) > 40
    for path, name in named:
        source = (ROOT / path).read_text()
        assert not name or re.search(rf"^(async )?def {name}\(", source, re.M), f"{path}::{name} does not exist"
