from __future__ import annotations

import numpy as np
import pytest

from vigil.calibration import BandCalibration, TailCalibration
from vigil.errors import ConfigError


@pytest.mark.parametrize("threshold", [0.999, 0.9999])
def test_power_law_noise_is_flagged_at_about_the_nominal_rate(threshold: float) -> None:
    rng = np.random.default_rng(11)
    raw = rng.pareto(1.5, size=(20, 20_000))  # the tail the Hill estimate assumes
    cal = TailCalibration(threshold=threshold)
    score, _ = cal.update(cal.new_state(20), np.arange(20), raw)
    rate = np.mean(score[:, 1000:] >= threshold)
    # incidents are learned at a third of the weight, which makes the tail a little lighter
    assert (1 - threshold) / 3 < rate < 5 * (1 - threshold)


@pytest.mark.parametrize("noise", ["laplace", "normal"])
def test_lighter_tails_are_flagged_less_than_the_nominal_rate(noise: str) -> None:
    rng = np.random.default_rng(14)
    raw = np.abs(getattr(rng, noise)(size=(20, 20_000)))
    cal = TailCalibration(threshold=0.999)
    score, _ = cal.update(cal.new_state(20), np.arange(20), raw)
    assert np.mean(score[:, 1000:] >= 0.999) < 1e-3


@pytest.mark.parametrize(
    ("noise", "most"),
    [pytest.param("normal", 1.0, id="normal"), pytest.param("standard_t", 30.0, id="student-t-3")],
)
def test_false_alarm_rate_stays_bounded_whatever_the_tail(noise: str, most: float) -> None:
    rng = np.random.default_rng(12)
    z = rng.normal(size=(20, 20_000)) if noise == "normal" else rng.standard_t(3, size=(20, 20_000))
    cal = TailCalibration(threshold=0.9999)
    score, _ = cal.update(cal.new_state(20), np.arange(20), np.abs(z) / 3)
    assert np.mean(score[:, 1000:] >= 0.9999) < most * 1e-4


def test_six_sigma_on_gaussian_noise_crosses_the_threshold() -> None:
    rng = np.random.default_rng(13)
    raw = np.abs(rng.normal(size=(50, 3000))) / 3
    raw[:, -1] = 6 / 3
    cal = TailCalibration(threshold=0.9999)
    score, _ = cal.update(cal.new_state(50), np.arange(50), raw)
    assert (score[:, -1] >= 0.9999).all()


def test_scores_are_probabilities_and_edge_is_where_score_meets_threshold() -> None:
    rng = np.random.default_rng(4)
    raw = rng.exponential(size=(3, 2000))
    cal = TailCalibration(threshold=0.999)
    score, edge = cal.update(cal.new_state(3), np.arange(3), raw)
    ok = ~np.isnan(score)
    assert ((score[ok] >= 0) & (score[ok] <= 1)).all()
    assert ((score >= 0.999) == (raw >= edge))[ok].mean() > 0.999  # equal up to rounding at the edge


def test_one_outlier_moves_the_edge_less_than_a_lasting_change_which_becomes_normal() -> None:
    rng = np.random.default_rng(8)
    calm = np.abs(rng.normal(size=(1, 2000)))
    cal = TailCalibration()
    st = cal.new_state(1)
    _, edge_before = cal.update(st, np.array([0]), calm)
    cal.update(st, np.array([0]), np.full((1, 1), 50.0))
    _, edge_after_one = cal.update(st, np.array([0]), calm[:, :1])
    assert edge_after_one[0, 0] < 1.5 * edge_before[0, -1]
    mixed = np.where(rng.random((1, 3000)) < 0.05, 50.0, np.abs(rng.normal(size=(1, 3000))))
    score, edge_after_many = cal.update(st, np.array([0]), mixed)
    assert edge_after_many[0, -1] > 3 * edge_before[0, -1]
    assert np.mean(score[0, -500:][mixed[0, -500:] == 50.0] >= 0.9999) == 0  # a recurring value is no anomaly


def test_constant_raw_scores_need_a_real_change_to_cross() -> None:
    cal = TailCalibration()
    score, edge = cal.update(cal.new_state(1), np.array([0]), np.zeros((1, 100)))
    assert np.nanmax(score) <= 0.5
    assert edge[0, -1] > 1e-3
    st = cal.new_state(1)
    cal.update(st, np.array([0]), np.zeros((1, 100)))
    tiny, _ = cal.update(st, np.array([0]), np.array([[1e-4]]))  # below the floor: no change
    big, _ = cal.update(st, np.array([0]), np.array([[1.0]]))
    assert tiny[0, 0] < 0.9999 <= big[0, 0]


def test_nan_raw_is_no_opinion_and_not_learned() -> None:
    cal = TailCalibration(min_samples=3)
    st = cal.new_state(1)
    score, _ = cal.update(st, np.array([0]), np.array([[0.1, np.nan, 0.2, 0.1, np.nan]]))
    assert np.isnan(score[0, 1]) and np.isnan(score[0, 4])
    assert st["n"][0] == 3


def test_band_calibration_crosses_threshold_exactly_at_band_edge() -> None:
    cal = BandCalibration(threshold=0.99)
    score, _ = cal.update(cal.new_state(1), np.array([0]), np.array([[0.0, 0.999, 1.0, 1.001, np.nan]]))
    assert score[0, 0] == 0
    assert score[0, 1] < 0.99 <= score[0, 2] < score[0, 3]
    assert np.isnan(score[0, 4])


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1])
def test_threshold_must_be_a_probability(bad: float) -> None:
    with pytest.raises(ConfigError, match="threshold is"):
        TailCalibration(threshold=bad)
