from __future__ import annotations

import numpy as np
import pytest

from vigil.calibration import BandCalibration, TailCalibration
from vigil.errors import ConfigError


@pytest.mark.parametrize("threshold", [0.999, 0.9999])
def test_laplace_noise_is_flagged_at_about_the_nominal_rate(threshold: float) -> None:
    rng = np.random.default_rng(11)
    raw = np.abs(rng.laplace(size=(20, 20_000))) / 3  # 20 series of |z| / k
    cal = TailCalibration(threshold=threshold)
    score, _ = cal.update(cal.new_state(20), np.arange(20), raw)
    rate = np.mean(score[:, 1000:] >= threshold)
    assert (1 - threshold) / 3 < rate < 3 * (1 - threshold)


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


def test_an_incident_does_not_teach_calibration_that_incidents_are_normal() -> None:
    rng = np.random.default_rng(8)
    calm = np.abs(rng.normal(size=(1, 2000))) / 3
    cal = TailCalibration()
    st = cal.new_state(1)
    _, edge_before = cal.update(st, np.array([0]), calm)
    cal.update(st, np.array([0]), np.full((1, 100), 50.0))
    _, edge_after = cal.update(st, np.array([0]), calm[:, :1])
    assert edge_after[0, 0] < 1.5 * edge_before[0, -1]


def test_constant_raw_scores_need_a_real_change_to_cross() -> None:
    cal = TailCalibration()
    score, edge = cal.update(cal.new_state(1), np.array([0]), np.zeros((1, 100)))
    assert np.nanmax(score) <= 0.5
    assert edge[0, -1] > 0.05
    _, _ = cal.update(cal.new_state(1), np.array([0]), np.zeros((1, 1)))
    st = cal.new_state(1)
    cal.update(st, np.array([0]), np.zeros((1, 100)))
    small, _ = cal.update(st, np.array([0]), np.array([[0.01]]))
    big, _ = cal.update(st, np.array([0]), np.array([[1.0]]))
    assert small[0, 0] < 0.9999 <= big[0, 0]


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
