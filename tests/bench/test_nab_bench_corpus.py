"""`vigil bench nab --detector default` on the real corpus: the layout, printed scores that are
our scorer's scores of the files it wrote, and the default's floor: above Numenta HTM."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vigil.bench.nab_corpus import DataFile, load_corpus, read_scores
from vigil.bench.nab_run import run_detector
from vigil.bench.nab_scorer import PROFILES, prepare, score_corpus
from vigil.cli import app

pytestmark = pytest.mark.nab


def test_bench_default_writes_every_file_and_prints_the_scores_of_what_it_wrote(nab_dir: Path,
                                                                                 tmp_path: Path) -> None:
    out = tmp_path / "results"
    r = CliRunner().invoke(app, ["bench", "nab", "--corpus", str(nab_dir), "--results-dir", str(out)])
    assert r.exit_code == 0, r.stderr
    files = load_corpus(nab_dir)
    written = sorted(p.relative_to(out / "default").as_posix() for p in out.rglob("*.csv"))
    assert written == sorted(f"{f.category}/default_{f.stem}" for f in files)
    assert len(written) == 58

    scores, alerts = [], []
    for f in files:
        path = out / "default" / f.category / f"default_{f.stem}"
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(f), path
        assert rows[0]["timestamp"] == f.texts[0][0] and rows[-1]["value"] == f.texts[1][-1]
        scores.append(read_scores(path, len(f)))
        alerts.append(np.array([float(row["alert"]) for row in rows]))

    prepared = [prepare(len(f), f.windows) for f in files]
    [line] = [line for line in r.stdout.splitlines() if line.split()[:1] == ["default"]]
    row = re.split(r"\s{2,}", line.strip())
    assert row[1:4] == [f"{score_corpus(prepared, scores, p).normalised:.1f}" for p in PROFILES]
    assert row[5:8] == [f"{score_corpus(prepared, alerts, p, threshold=1.0).normalised:.1f}" for p in PROFILES]


def test_no_look_ahead_on_corpus_files(nab_dir: Path) -> None:
    names = ("realAdExchange/exchange-2_cpc_results.csv", "realKnownCause/nyc_taxi.csv")  # 1,624 and 10,320 points
    files = sorted((f for f in load_corpus(nab_dir) if f.name in names), key=len)
    before = run_detector(files, "default")
    for k, cut in ((0, 800), (1, 8000)):
        f = files[k]
        x = f.values.copy()
        x[cut + 1 :] = x[cut + 1 :][::-1] * 3  # another future
        changed = list(files)
        changed[k] = DataFile(f.name, f.timestamps, x, f.windows)
        after = run_detector(changed, "default")
        np.testing.assert_array_equal(before.scores[k][: cut + 1], after.scores[k][: cut + 1])
        np.testing.assert_array_equal(before.alerts[k][: cut + 1], after.alerts[k][: cut + 1])
        assert not np.array_equal(before.scores[k], after.scores[k])
        np.testing.assert_array_equal(before.scores[1 - k], after.scores[1 - k])


# What the record calibration (NAB's operating point) keeps scoring on NAB v1.1, swept as NAB
# publishes. With issue 7's members it scored 71.8 / 64.0 / 76.6, above Numenta HTM (70.5);
# with the members issue 12 chose for the people on call (seasonal out, shift on a median) it
# scores 67.8 / 60.1 / 72.5, below Numenta HTM and CAD OSE (69.9), above the other published
# detectors (earthgecko Skyline 58.2). The floors catch a fall from there.
FLOOR = {"standard": 66.0, "reward_low_FP_rate": 58.0, "reward_low_FN_rate": 70.0}


def test_the_record_calibration_keeps_its_nab_score_and_the_default_pages_far_less(nab_dir: Path) -> None:
    files = load_corpus(nab_dir)
    prepared = [prepare(len(f), f.windows) for f in files]
    record = run_detector(files, "record")
    swept = {p: score_corpus(prepared, record.scores, p).normalised for p in PROFILES}
    assert all(swept[p] >= FLOOR[p] for p in PROFILES), swept
    default = run_detector(files, "default")
    paged = [int(sum(a.sum() for a in run.alerts)) for run in (default, record)]
    # the default spends a budget of one false alarm a month per series (NAB: 1,897 series-days)
    assert paged[0] * 2 < paged[1], paged
