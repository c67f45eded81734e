"""NAB's scoring rules on cases small enough to work out by hand from shared/nab/SCORING.md.

Each expected number is written out from the formulas, never taken from the scorer:

- probationary period of a file of n points: min(floor(0.15 n), 750);
- S(y) = 2 / (1 + exp(5 y)) - 1, and -1 for y > 3; note S(y) = tanh(-5 y / 2);
- inside a window [l, r] of width w: y = -(r - i + 1) / w, worth A_tp S(y) / S(-1);
- after a window: A_fp S(|r - i| / (w - 1)); before any window: -A_fp; a missed window: -A_fn;
- normalised = 100 (raw - null) / (perfect - null), null = -A_fn per window, perfect = A_tp per window.

Most cases use one file of 100 points (probation 15) with one window at indices 40..49
(w = 10, r = 49): then null = -1 and perfect = 1 on the standard profile, so
normalised = 100 (raw + 1) / 2 = 50 (raw + 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.bench.nab_scorer import prepare, probation, scaled_sigmoid, score_corpus

S_MINUS_1 = 2 / (1 + math.exp(-5)) - 1  # S(-1) = tanh(2.5) = 0.98661...
N = 100
WINDOW = (40, 49)


def detections(n: int, *at: int) -> np.ndarray:
    """0/1 scores: 1 at the given indices."""
    s = np.zeros(n)
    s[list(at)] = 1.0
    return s


def score_one_file(*at: int, profile: str = "standard", windows: list[tuple[int, int]] | None = None,
                   n: int = N) -> tuple[float, float]:
    """(raw, normalised) of detections at `at` in one file, at threshold 0.5."""
    files = [prepare(n, [WINDOW] if windows is None else windows)]
    r = score_corpus(files, [detections(n, *at)], profile, threshold=0.5)
    return r.raw, r.normalised


def test_probationary_period_is_15_percent_capped_at_750() -> None:
    assert probation(100) == 15  # floor(15.0)
    assert probation(4032) == 604  # floor(604.8)
    assert probation(22695) == 750  # floor(3404.25) > 750


def test_scaled_sigmoid_values() -> None:
    assert float(scaled_sigmoid(0.0)) == 0.0  # 2 / (1 + 1) - 1
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(math.tanh(2.5))
    assert float(scaled_sigmoid(3.0)) == pytest.approx(-math.tanh(7.5))  # y = 3 is not yet cut off
    assert float(scaled_sigmoid(3.01)) == -1.0


def test_detection_at_the_start_of_a_window_is_worth_exactly_a_tp() -> None:
    # i = 40: y = -(49 - 40 + 1) / 10 = -1, worth 1 * S(-1) / S(-1) = 1
    raw, normalised = score_one_file(40)
    assert raw == pytest.approx(1.0, abs=1e-12)
    assert normalised == pytest.approx(100.0)


def test_detection_at_the_end_of_a_window_is_worth_less() -> None:
    # i = 49: y = -(49 - 49 + 1) / 10 = -0.1; S(-0.1) = tanh(0.25) = 0.244919; / S(-1) = 0.248242
    worth = math.tanh(0.25) / S_MINUS_1
    assert worth == pytest.approx(0.248242, abs=1e-6)
    raw, normalised = score_one_file(49)
    assert raw == pytest.approx(worth)
    assert normalised == pytest.approx(50 * (worth + 1))  # 62.41


def test_only_the_best_detection_in_a_window_counts() -> None:
    # 45 (y = -0.5) and 40 (y = -1): only the one at 40 counts, worth 1
    raw, _ = score_one_file(45, 40)
    assert raw == pytest.approx(1.0)


def test_detection_just_after_a_window_is_cheap() -> None:
    # i = 50: S(|49 - 50| / (10 - 1)) = S(1/9) = tanh(-5/18) = -0.270847; times A_fp = 0.11
    # plus the missed window, -1: raw = -1 - 0.11 * 0.270847 = -1.029793
    raw, normalised = score_one_file(50)
    assert raw == pytest.approx(-1 + 0.11 * math.tanh(-5 / 18))
    assert raw == pytest.approx(-1.029793, abs=1e-6)
    assert normalised == pytest.approx(50 * (raw + 1))  # -1.49


def test_detection_far_after_a_window_costs_the_full_a_fp() -> None:
    # i = 99: |49 - 99| / 9 = 5.56 > 3, so S = -1: -0.11, plus the missed window
    raw, _ = score_one_file(99)
    assert raw == pytest.approx(-1.11)


def test_detection_before_any_window_costs_the_full_a_fp() -> None:
    # i = 20: past the probation (15), before the window: -A_fp
    raw, _ = score_one_file(20)
    assert raw == pytest.approx(-1.11)


def test_every_false_positive_counts() -> None:
    # 20, 21 (before the window) and 99 (far after): 3 * -0.11, plus the missed window
    raw, _ = score_one_file(20, 21, 99)
    assert raw == pytest.approx(-1 - 3 * 0.11)


def test_missed_window_costs_a_fn() -> None:
    raw, normalised = score_one_file()
    assert raw == -1.0
    assert normalised == 0.0


def test_detections_in_the_probationary_period_are_ignored() -> None:
    # index 10 < 15 would cost -0.11 anywhere else
    raw, _ = score_one_file(10)
    assert raw == -1.0


def test_windows_ending_in_the_probationary_period_are_not_counted() -> None:
    # windows 2..8 (ends before 15) and 40..49: only the second counts, so null = -1, perfect = 1
    windows = [(2, 8), (40, 49)]
    assert prepare(N, windows).n_windows == 1
    raw, normalised = score_one_file(40, windows=windows)
    assert raw == pytest.approx(1.0)
    assert normalised == pytest.approx(100.0)
    assert score_one_file(windows=windows) == (-1.0, 0.0)


def test_window_starting_in_the_probationary_period_keeps_its_full_width() -> None:
    # window 10..29 (w = 20) starts before 15; a detection at 15 has y = -(29 - 15 + 1) / 20 = -0.75
    worth = math.tanh(2.5 * 0.75) / S_MINUS_1
    raw, _ = score_one_file(15, windows=[(10, 29)])
    assert raw == pytest.approx(worth)


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        # raw = 0.248242 (end of window 1) - 0.11 (far after it) - 1 (window 2 missed) = -0.861758
        # null = -2, perfect = 2: 100 * (-0.861758 + 2) / 4 = 28.456
        pytest.param("standard", 28.456, id="standard"),
        # A_fp = 0.22: raw = 0.248242 - 0.22 - 1 = -0.971758; 100 * 1.028242 / 4 = 25.706
        pytest.param("reward_low_FP_rate", 25.706, id="low-FP"),
        # A_fn = 2: raw = 0.248242 - 0.11 - 2 = -1.861758; null = -4, perfect = 2: 100 * 2.138242 / 6 = 35.637
        pytest.param("reward_low_FN_rate", 35.637, id="low-FN"),
    ],
)
def test_each_profile_weighs_the_same_detections_differently(profile: str, expected: float) -> None:
    # 200 points (probation 30), windows 40..49 and 120..139; detections at 49 and 99
    # (|49 - 99| / 9 = 5.56 > 3: the full A_fp)
    _, normalised = score_one_file(49, 99, profile=profile, windows=[(40, 49), (120, 139)], n=200)
    assert normalised == pytest.approx(expected, abs=1e-3)


def test_sweep_picks_the_best_threshold() -> None:
    # scores: 0.8 at 40 (window start, +1), 0.9 at 70 (|49 - 70| / 9 = 2.33: S = tanh(-35/6) = -0.999983,
    # so -0.109998), 0.5 at 20 (before the window, -0.11). Totals by threshold:
    #   0.9: {70}          -1 - 0.109998        = -1.109998
    #   0.8: {70, 40}       1 - 0.109998        =  0.890002  <- best
    #   0.5: {70, 40, 20}   1 - 0.109998 - 0.11 =  0.780002
    #   0.0: every point, far worse; never firing: -1
    s = np.zeros(N)
    s[[40, 70, 20]] = [0.8, 0.9, 0.5]
    r = score_corpus([prepare(N, [WINDOW])], [s], "standard")
    assert r.threshold == 0.8
    assert r.raw == pytest.approx(1 + 0.11 * math.tanh(-35 / 6))
    assert r.normalised == pytest.approx(50 * (0.890002 + 1), abs=1e-4)  # 94.5001
    assert (r.tp, r.fn, r.fp) == (1, 0, 1)


def test_sweep_never_fires_when_every_threshold_loses() -> None:
    # the only high scores are false positives: every threshold scores below -1, so never fire: 0
    s = np.zeros(N)
    s[[20, 99]] = [0.7, 0.9]
    r = score_corpus([prepare(N, [WINDOW])], [s], "standard")
    assert math.isinf(r.threshold)
    assert (r.raw, r.normalised) == (-1.0, 0.0)


def test_nan_scores_are_never_detections() -> None:
    s = np.full(N, np.nan)
    r = score_corpus([prepare(N, [WINDOW])], [s], "standard")
    assert (r.normalised, r.fp) == (0.0, 0)


@pytest.mark.parametrize("profile", ["standard", "reward_low_FP_rate", "reward_low_FN_rate"])
def test_normalisation_null_is_0_and_perfect_is_100(profile: str) -> None:
    # two files; perfect = a detection at the first point of every window and nowhere else
    windows = [[(40, 49)], [(120, 139), (160, 179)]]
    files = [prepare(100, windows[0]), prepare(200, windows[1])]
    perfect = [detections(100, 40), detections(200, 120, 160)]
    null = [np.zeros(100), np.zeros(200)]
    assert score_corpus(files, perfect, profile, threshold=0.5).normalised == pytest.approx(100.0)
    assert score_corpus(files, null, profile, threshold=0.5).normalised == 0.0
    assert score_corpus(files, perfect, profile).normalised == pytest.approx(100.0)  # swept
    assert score_corpus(files, null, profile).normalised == 0.0  # swept: 0 everywhere = fire everywhere loses
