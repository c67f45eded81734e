"""Our NAB scorer reproduces the published scores of two detectors from their raw outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.bench.nab_corpus import DataFile, load_corpus, read_scores
from vigil.bench.nab_scorer import PROFILES, prepare, score_corpus

pytestmark = pytest.mark.nab


@pytest.fixture(scope="module")
def files(nab_dir: Path) -> list[DataFile]:
    return load_corpus(nab_dir)


def test_corpus_has_58_files_and_116_windows(files: list[DataFile]) -> None:
    assert len(files) == 58
    assert sum(len(f.windows) for f in files) == 116
    assert sum(len(f) for f in files) == 365_558  # data rows (SCORING.md's 365,551 counts lines)


@pytest.mark.parametrize("detector", ["windowedGaussian", "contextOSE"])
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_published_score_is_reproduced(nab_dir: Path, files: list[DataFile], detector: str, profile: str) -> None:
    published = json.loads((nab_dir / "reference_results" / "published_scores.json").read_text())
    results = nab_dir / "reference_results" / detector
    scores = [read_scores(results / f.category / f"{detector}_{f.stem}", len(f)) for f in files]
    ours = score_corpus([prepare(len(f), f.windows) for f in files], scores, profile)
    assert ours.normalised == pytest.approx(published[detector][profile], abs=0.1)
