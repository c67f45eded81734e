"""The NAB bench runner: honest streaming, determinism, alerts where events open, the results layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from vigil.backtest.run import run_backtest
from vigil.bench.nab_corpus import DataFile
from vigil.bench.nab_run import (
    ALERT_GRID,
    BenchRun,
    bench_names,
    detection,
    epoch_seconds,
    prepare_corpus,
    replay_alerts,
    resolve_names,
    run_detector,
    score_run,
    sweep_alerts,
    write_results,
)
from vigil.bench.nab_scorer import score_corpus
from vigil.config import Detection
from vigil.engine import build_query_pipeline
from vigil.errors import ConfigError
from vigil.sources.csv import CsvSeries

START = np.datetime64("2024-01-01T00:00:00", "us")


def labelled(name: str, n: int, seed: int, spike: int, shift: int) -> DataFile:
    """Noise on a daily cycle (5-minute steps), a spike and a level shift, each in a window."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    x = 50 + 10 * np.sin(2 * np.pi * i / 288) + rng.normal(0, 1, n)
    x[spike] += 25
    x[shift:] += 15
    times = START + i * np.timedelta64(300, "s")
    return DataFile(name, times, x, [(spike - 10, spike + 10), (shift - 10, shift + 30)])


FILES = [labelled("cat/a.csv", 1500, 1, spike=900, shift=1200), labelled("cat/b.csv", 1100, 2, spike=700, shift=950)]


def changed_after(f: DataFile, i: int, seed: int = 9) -> DataFile:
    """The same file with every value after index `i` replaced by something else."""
    x = f.values.copy()
    x[i + 1 :] = np.random.default_rng(seed).normal(500, 100, x.size - i - 1)
    return DataFile(f.name, f.timestamps, x, f.windows)


@pytest.mark.parametrize("name", ["default", "ewma", "zscore", "seed-ewma"])
@pytest.mark.parametrize("cut", [899, 1000])
def test_no_look_ahead_scores_and_alerts_up_to_i_ignore_the_points_after(name: str, cut: int) -> None:
    before = run_detector(FILES, name)
    after = run_detector([changed_after(FILES[0], cut), FILES[1]], name)
    np.testing.assert_array_equal(before.scores[0][: cut + 1], after.scores[0][: cut + 1])
    np.testing.assert_array_equal(before.alerts[0][: cut + 1], after.alerts[0][: cut + 1])
    assert not np.array_equal(before.scores[0][cut + 1 :], after.scores[0][cut + 1 :])  # the change was seen
    # and the other file, a row of the same pipeline, is untouched
    np.testing.assert_array_equal(before.scores[1], after.scores[1])
    np.testing.assert_array_equal(before.alerts[1], after.alerts[1])


@pytest.mark.parametrize("name", ["default", "iforest"])
def test_a_file_scores_the_same_alone_in_any_block_size(name: str) -> None:
    together = run_detector(FILES, name, block=4096)
    for k, f in enumerate(FILES):
        alone = run_detector([f], name, block=97)
        np.testing.assert_array_equal(alone.scores[0], together.scores[k])
        np.testing.assert_array_equal(alone.alerts[0], together.alerts[k])


@pytest.mark.parametrize("name", ["default", "iforest", "seed-iforest"])
def test_two_runs_give_identical_scores(name: str) -> None:
    a = run_detector(FILES, name)
    b = run_detector(FILES, name)
    for x, y in zip(a.scores + a.alerts, b.scores + b.alerts, strict=True):
        np.testing.assert_array_equal(x, y)
    assert np.any(np.concatenate(a.scores) > 0)  # iforest fitted and scored something


def test_alerts_are_where_vigil_run_opens_an_event() -> None:
    run = run_detector(FILES, "default")
    for f, alerts in zip(FILES, run.alerts, strict=True):
        series = CsvSeries(t=epoch_seconds(f.timestamps), values=f.values, columns=("value",))
        bt = run_backtest(series, build_query_pipeline(Detection(), "test"))
        starts = sorted(e.started_at for e in bt.events)
        np.testing.assert_array_equal(bt.t[alerts], starts)
        np.testing.assert_array_equal(run.scores[FILES.index(f)], np.nan_to_num(bt.score, nan=0.0))


def test_no_opinion_is_written_as_0() -> None:
    run = run_detector(FILES, "zscore")  # min_samples 30: no opinion on the first 30 points
    for s in run.scores:
        assert np.isfinite(s).all()
        assert (s[:30] == 0.0).all() and (s[30:] > 0).any()


def test_default_follows_the_shipped_detection_settings() -> None:
    assert detection("default") == Detection()
    assert detection("zscore") == Detection(detector="zscore")
    seed = detection("seed-ewma")
    assert (seed.detector, seed.params, seed.calibrate) == ("ewma", {"ewma": {"span": 10, "k": 1.0}}, False)
    for name in bench_names():  # every entry builds, with parameters its detector takes
        build_query_pipeline(detection(name), name)


def test_unknown_names_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"detector is 'ewmaa'; write one of default, .*seed-iforest, or all"):
        resolve_names(["ewmaa"])
    assert resolve_names(["all", "default"]) == bench_names()


def test_results_layout_and_columns(tmp_path: Path) -> None:
    run = BenchRun("demo", [np.linspace(0, 1, len(f)) for f in FILES],
                   [np.arange(len(f)) == 5 for f in FILES], seconds=1.0)
    root = write_results(run, FILES, tmp_path)
    assert root == tmp_path / "demo"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.csv")) == [
        "demo/cat/demo_a.csv", "demo/cat/demo_b.csv",
    ]
    with (root / "cat" / "demo_a.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    f = FILES[0]
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label", "alert"]
    assert len(rows) == len(f)
    assert rows[0]["timestamp"] == "2024-01-01 00:00:00" and rows[1]["timestamp"] == "2024-01-01 00:05:00"
    np.testing.assert_array_equal([float(r["value"]) for r in rows], f.values)
    np.testing.assert_array_equal([float(r["anomaly_score"]) for r in rows], run.scores[0])  # exact round trip
    label = np.array([int(r["label"]) for r in rows])
    inside = np.zeros(len(f), dtype=int)
    for a, b in f.windows:
        inside[a : b + 1] = 1
    np.testing.assert_array_equal(label, inside)
    assert [i for i, r in enumerate(rows) if r["alert"] == "1"] == [5]


@pytest.mark.parametrize("threshold", [0.99, 0.999, 0.99999])
def test_replaying_the_decision_equals_a_whole_run_at_that_threshold(threshold: float) -> None:
    shipped = run_detector(FILES, "default", block=300)
    whole = run_detector(FILES, "default", settings=Detection(threshold=threshold), block=300)
    for replayed, direct in zip(replay_alerts(shipped, threshold), whole.alerts, strict=True):
        np.testing.assert_array_equal(replayed, direct)


def test_the_alert_sweep_does_at_least_as_well_as_the_shipped_threshold() -> None:
    run = run_detector(FILES, "default", block=300)
    prepared = prepare_corpus(FILES)
    scored = score_run(run, prepared)
    assert scored.alerts_swept is not None
    grid = (*ALERT_GRID, Detection().threshold)
    best = sweep_alerts(run, prepared, grid)
    for p in best:
        assert best[p].normalised >= scored.shipped[p].normalised
        assert best[p].threshold in grid
    assert scored.alerts_swept["standard"].normalised == max(
        score_corpus(prepared, [a.astype(float) for a in replay_alerts(run, t)], "standard", threshold=1.0).normalised
        for t in ALERT_GRID
    )
