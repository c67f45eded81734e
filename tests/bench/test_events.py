"""The event scorer: hand-counted cases of every rule, and the curve and the oracle against a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.bench.events import EventScore, count_events, event_curve, layout, oracle, refire_rows
from vigil.bench.nab_corpus import FileIndex


def alerts_at(n: int, *rows: int | range) -> np.ndarray:
    a = np.zeros(n, dtype=bool)
    for r in rows:
        a[r if isinstance(r, range) else [r]] = True
    return a


def score_one(ix: FileIndex, a: np.ndarray) -> EventScore:
    return count_events(layout([ix]), [a])


# One file of 100 rows at 5-minute steps (R = 12 rows), one window: rows 50 to 55.
WINDOW = FileIndex(100, 0, 300.0, [(50, 55)])


@pytest.mark.parametrize(
    ("rows", "caught", "false"),
    [
        pytest.param((50,), 1, 0, id="at-the-window-start"),
        pytest.param((45,), 1, 0, id="W-rows-early"),
        pytest.param((44,), 0, 1, id="just-before-W"),
        pytest.param((53,), 1, 0, id="inside"),
        pytest.param((55,), 1, 0, id="at-the-last-row"),
        pytest.param((56,), 0, 1, id="just-after-the-end"),
        pytest.param((47, 52, 58), 1, 1, id="two-in-one-window-count-once"),
        pytest.param((range(40, 48),), 1, 1, id="run-into-the-extended-window"),
        pytest.param((range(54, 61),), 1, 1, id="run-out-of-the-window"),
        pytest.param((range(38, 62),), 1, 2, id="run-across-the-window-one-false-alert-each-side"),
        pytest.param((range(30, 70),), 1, 4, id="run-across-the-window-re-fires-on-each-side"),
    ],
)
def test_one_window_caught_and_false_alerts(rows: tuple[int | range, ...], caught: int, false: int) -> None:
    s = score_one(WINDOW, alerts_at(100, *rows))
    assert (s.caught, s.missed, s.false_alerts) == (caught, 1 - caught, false)


@pytest.mark.parametrize(("length", "false"), [(1, 1), (12, 1), (13, 2), (24, 2), (25, 3), (30, 3)])
def test_a_run_longer_than_an_hour_re_fires_every_hour(length: int, false: int) -> None:
    s = score_one(FileIndex(100, 0, 300.0, []), alerts_at(100, range(10, 10 + length)))
    assert s.false_alerts == false


def test_at_hourly_steps_every_alerting_row_is_a_false_alert() -> None:
    s = score_one(FileIndex(100, 0, 3600.0, []), alerts_at(100, range(10, 14), 20))
    assert s.false_alerts == 5


def test_gaps_between_alerts_split_runs() -> None:
    s = score_one(FileIndex(100, 0, 300.0, []), alerts_at(100, 10, 12, range(14, 16)))
    assert s.false_alerts == 3


def test_a_file_without_a_window_has_only_false_alerts() -> None:
    lay = layout([WINDOW, FileIndex(288, 0, 300.0, [])])
    s = count_events(lay, [alerts_at(100, 52), alerts_at(288, 7, 100)])
    assert (s.caught, s.events, s.false_alerts) == (1, 1, 2)
    assert s.precision == pytest.approx(1 / 3) and s.recall == 1.0 and s.f1 == pytest.approx(0.5)
    assert s.series_days == pytest.approx((100 + 288) * 300 / 86400)
    assert s.per_day == pytest.approx(2 / s.series_days)


def test_a_corpus_without_events_or_alerts_scores_zero_not_nan() -> None:
    s = score_one(FileIndex(50, 0, 60.0, []), alerts_at(50))
    assert (s.precision, s.recall, s.f1, s.per_day) == (0.0, 0.0, 0.0, 0.0)


def test_rows_before_scored_from_are_ignored() -> None:
    ix = FileIndex(100, 30, 300.0, [(10, 20), (28, 40), (33, 35), (80, 80)])
    # (10, 20) ends before row 30: not an event. (28, 40) counts from row 30. (33, 35) extends back to row 30 only.
    lay = layout([ix])
    assert lay.events == 3
    for rows in ((5,), (15,), (25,), (29,)):  # history: neither caught nor false
        s = count_events(lay, [alerts_at(100, *rows)])
        assert (s.caught, s.false_alerts) == (0, 0), rows
    s = count_events(lay, [alerts_at(100, 30)])
    assert (s.caught, s.false_alerts) == (2, 0)
    s = count_events(lay, [alerts_at(100, range(0, 100))])
    assert (s.caught, s.false_alerts) == (3, math.ceil(34 / 12) + math.ceil(19 / 12))
    assert s.series_days == pytest.approx(70 * 300 / 86400)


def test_windows_of_one_file_do_not_reach_into_the_next() -> None:
    lay = layout([FileIndex(10, 0, 300.0, []), FileIndex(10, 0, 300.0, [(2, 3)])])
    s = count_events(lay, [alerts_at(10, 9), alerts_at(10)])
    assert (s.caught, s.false_alerts) == (0, 1)
    s = count_events(lay, [alerts_at(10, range(5, 10)), alerts_at(10, range(0, 6))])
    assert (s.caught, s.false_alerts) == (1, 2)  # a run does not continue across files


def test_refire_rows_is_an_hour_of_rows_at_least_one() -> None:
    assert [refire_rows(s) for s in (1, 60, 300, 600, 1800, 3600, 7200)] == [3600, 60, 12, 6, 2, 1, 1]


def test_wrong_lengths_are_refused() -> None:
    lay = layout([WINDOW])
    with pytest.raises(ValueError, match="index says 100 rows"):
        count_events(lay, [np.zeros(99, bool)])
    with pytest.raises(ValueError, match="2 files of values"):
        count_events(lay, [np.zeros(100, bool)] * 2)


def loop_counts(index: list[FileIndex], alerts: list[np.ndarray], early: int = 5) -> tuple[int, int]:
    """The rules, one row at a time."""
    caught = false = 0
    for ix, a in zip(index, alerts, strict=True):
        b = ix.scored_from
        extended = [(max(s - early, b), e) for s, e in ix.windows if e >= b]
        caught += sum(bool(a[lo : hi + 1].any()) for lo, hi in extended)
        r = max(1, round(3600 / ix.interval_s))
        run = 0
        for i in range(b, ix.n + 1):
            if i < ix.n and a[i] and not any(lo <= i <= hi for lo, hi in extended):
                run += 1
                continue
            false += -(-run // r)
            run = 0
    return caught, false


def random_corpus(rng: np.random.Generator) -> tuple[list[FileIndex], list[np.ndarray]]:
    index, scores = [], []
    for _ in range(int(rng.integers(1, 5))):
        n = int(rng.integers(5, 120))
        windows, at = [], int(rng.integers(0, 10))
        while at < n - 1 and rng.random() < 0.7:
            end = min(n - 1, at + int(rng.integers(0, 8)))
            windows.append((at, end))
            at = end + int(rng.integers(1, 15))
        step = float(rng.choice([60.0, 300.0, 600.0, 1800.0, 3600.0]))
        index.append(FileIndex(n, int(rng.integers(0, n)), step, windows))
        s = np.round(rng.random(n), 1)
        s[rng.random(n) < 0.05] = np.nan
        scores.append(s)
    return index, scores


def test_counts_curve_and_oracle_agree_with_a_plain_loop() -> None:
    rng = np.random.default_rng(7)
    for trial in range(300):
        index, scores = random_corpus(rng)
        lay = layout(index)
        values = np.unique(np.concatenate(scores))
        th = np.append(values[np.isfinite(values)], [np.inf, 0.05, 0.55])
        caught, false = event_curve(lay, scores, th)
        best = -1.0
        for t, c, f in zip(th.tolist(), caught.tolist(), false.tolist(), strict=True):
            alerts = [s >= t for s in scores]
            assert loop_counts(index, alerts) == (c, f), (trial, t)
            got = count_events(lay, alerts)
            assert (got.caught, got.false_alerts) == (c, f), (trial, t)
            best = max(best, got.f1)
        assert oracle(lay, scores).f1 == pytest.approx(best), trial


def test_the_oracle_takes_the_highest_of_tied_thresholds_and_says_its_threshold() -> None:
    lay = layout([FileIndex(40, 0, 3600.0, [(20, 22)])])
    s = np.zeros(40)
    s[21], s[5] = 0.9, 0.4
    best = oracle(lay, [s])
    assert (best.threshold, best.caught, best.false_alerts, best.f1) == (0.9, 1, 0, 1.0)
    best = oracle(lay, [np.zeros(40)])  # nothing stands out: catching the event costs 32 false alerts
    assert best.threshold == 0.0 and best.caught == 1 and best.false_alerts == 32
    empty = oracle(layout([FileIndex(40, 0, 3600.0, [])]), [s])
    assert (empty.threshold, empty.f1) == (np.inf, 0.0)


def test_an_empty_part_scores_nothing() -> None:
    lay = layout([])
    assert (lay.first.tolist(), lay.events, lay.series_days) == ([], 0, 0.0)
    assert count_events(lay, []) == EventScore(0, 0, 0, 0.0)
    assert oracle(lay, []) == EventScore(0, 0, 0, 0.0, np.inf)
