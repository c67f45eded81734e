"""Our event scorer counts what the reference, ``shared/tools/event_score.py``, counts, on cmd and on NAB.

The default detector runs over each corpus; its alerts (1 where an event opened, else 0) and
its anomaly score are written as score files in NAB's results naming, and the reference
scores them in a subprocess. Caught, missed and false alerts must be the same numbers: for
the alerts at threshold 1, and for the score at the shipped threshold and at the
reference's own best one; our oracle, which tries every threshold, must do at least as well.
The reference's curve function, loaded from the same file, also scores the score at a
dozen thresholds in this process (a subprocess per threshold would read the corpus again).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vigil.bench.events import EventLayout, count_events, event_curve, layout, oracle
from vigil.bench.labelled import LabelledCorpus, load_labelled
from vigil.bench.nab_run import BenchRun, run_detector
from vigil.config import Detection

pytestmark = [pytest.mark.nab, pytest.mark.cmd]

FIXED = re.compile(r"^\[fixed \S+\]\s+event: TP=(\d+) FN=(\d+) FP=(\d+)", re.M)
CORPUS_LINE = re.compile(r"^corpus: (\d+) files .*?, (\d+) scored points, (\d+) events", re.M)


@pytest.fixture(scope="module", params=["cmd", "nab"])
def scored(request: pytest.FixtureRequest) -> tuple[LabelledCorpus, BenchRun, EventLayout]:
    corpus = load_labelled(request.getfixturevalue(f"{request.param}_dir"))
    return corpus, run_detector(corpus.files, "default"), layout(corpus.index)


def write_scores(corpus: LabelledCorpus, values: list[np.ndarray], out: Path) -> Path:
    """One file per data file, ``out/<category>/default_<file>``: the data file's timestamps and the values."""
    for f, v in zip(corpus.files, values, strict=True):
        path = out / f.category / f"default_{f.stem}"
        path.parent.mkdir(parents=True, exist_ok=True)
        stamps = f.texts[0]
        assert len(stamps) == len(f)
        path.write_text("timestamp,anomaly_score\n" + "".join(
            f"{t},{x!r}\n" for t, x in zip(stamps, v.tolist(), strict=True)))
    return out


def reference(script: Path, scores: Path, corpus: Path, threshold: float, tmp: Path) -> tuple[str, dict]:
    out = tmp / "reference.json"
    done = subprocess.run(
        [sys.executable, str(script), str(scores), "--data", str(corpus), "--threshold", repr(threshold),
         "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(out.read_text())


def fixed_counts(stdout: str) -> tuple[int, int, int]:
    match = FIXED.search(stdout)
    assert match, stdout
    tp, fn, fp = map(int, match.groups())
    return tp, fn, fp


def test_the_alerts_count_the_same(scored: tuple[LabelledCorpus, BenchRun, EventLayout], event_score_py: Path,
                                   tmp_path: Path) -> None:
    corpus, run, lay = scored
    alerts = [a.astype(np.float64) for a in run.alerts]
    stdout, numbers = reference(event_score_py, write_scores(corpus, alerts, tmp_path / "alerts"), corpus.root,
                                1.0, tmp_path)
    ours = count_events(lay, run.alerts)
    assert fixed_counts(stdout) == (ours.caught, ours.missed, ours.false_alerts)
    assert numbers["fixed"]["event_f1"] == pytest.approx(ours.f1, abs=1e-12)
    files, points, events = map(int, CORPUS_LINE.search(stdout).groups())  # type: ignore[union-attr]
    assert (files, points, events) == (len(corpus.files), sum(ix.n - ix.scored_from for ix in corpus.index),
                                       ours.events)
    assert "WARNING" not in stdout
    assert ours.caught > 0 and ours.false_alerts > 0  # a comparison of something


def test_the_score_counts_the_same_at_the_shipped_threshold_and_at_the_reference_best(
    scored: tuple[LabelledCorpus, BenchRun, EventLayout], event_score_py: Path, tmp_path: Path,
) -> None:
    corpus, run, lay = scored
    threshold = Detection().threshold
    stdout, numbers = reference(event_score_py, write_scores(corpus, run.scores, tmp_path / "scores"), corpus.root,
                                threshold, tmp_path)
    ref = numbers["event"]
    caught, false = event_curve(lay, run.scores, [threshold, ref["threshold"]])
    assert fixed_counts(stdout) == (caught[0], lay.events - caught[0], false[0])
    assert (ref["tp"], ref["fn"], ref["fp"]) == (caught[1], lay.events - caught[1], false[1])
    assert oracle(lay, run.scores).f1 >= ref["f1"] - 1e-12


def test_the_score_counts_the_same_along_the_curve(scored: tuple[LabelledCorpus, BenchRun, EventLayout],
                                                    event_score_py: Path) -> None:
    corpus, run, lay = scored
    spec = importlib.util.spec_from_file_location("event_score_reference", event_score_py)
    assert spec is not None and spec.loader is not None
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    series = [
        ref.Series(s[ix.scored_from :], [(a - ix.scored_from, b - ix.scored_from) for a, b in ix.windows],
                   5, 0, round(3600 / ix.interval_s))
        for s, ix in zip(run.scores, corpus.index, strict=True)
    ]
    scored_values = np.concatenate([s[ix.scored_from :] for s, ix in zip(run.scores, corpus.index, strict=True)])
    th = np.concatenate([np.quantile(scored_values, [0.5, 0.9, 0.99, 0.999, 0.9999]),
                         [0.9999, 0.99995, 0.99996, 0.99998, 0.99999, 0.999999, 1.0, np.inf]])
    theirs = ref.event_curve(series, th)
    caught, false = event_curve(lay, run.scores, th)
    assert theirs["tp"].tolist() == caught.tolist()
    assert theirs["fn"].tolist() == (lay.events - caught).tolist()
    assert theirs["fp"].tolist() == false.tolist()
    assert len(set(false.tolist())) > 5  # the thresholds reach from many false alerts to none
