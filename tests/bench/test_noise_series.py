"""The noise suite's generators: the same series for the same seed, and what each docstring says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.bench.noise import (
    DAY,
    FAMILIES,
    START,
    random_walk,
    rng_for,
    series,
    times,
)
from vigil.errors import ConfigError


def days_of(family: str, days: float, step: float, seed: int = 0) -> np.ndarray:
    return series(family, seed, int(days * DAY / step), step)


def at_hour(x: np.ndarray, step: float, hour: float) -> np.ndarray:
    """The samples of `x` taken at `hour` o'clock UTC."""
    return x[np.mod(times(x.size, step), DAY) == hour * 3600]


def test_the_suite_starts_on_a_monday_at_midnight_utc() -> None:
    start = np.datetime64(int(START), "s")
    assert str(start) == "2024-01-01T00:00:00"
    assert (start.astype("datetime64[D]").astype(np.int64) + 3) % 7 == 0  # 1970-01-01 was a Thursday
    assert times(3, 60.0).tolist() == [START, START + 60, START + 120]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_family_gives_the_same_series_for_the_same_seed_and_step(family: str) -> None:
    a = series(family, 7, 5000, 15.0)
    assert a.shape == (5000,) and a.dtype == np.float64 and np.isfinite(a).all()
    assert np.array_equal(a, series(family, 7, 5000, 15.0))
    assert not np.array_equal(a, series(family, 8, 5000, 15.0))
    assert not np.array_equal(a, series(family, 7, 5000, 60.0))


def test_families_draw_from_their_own_streams() -> None:
    assert rng_for("gaussian", 0, 15).random() != rng_for("student_t3", 0, 15).random()


@pytest.mark.parametrize(
    ("family", "seed", "step"),
    [
        pytest.param("nope", 0, 15.0, id="unknown-family"),
        pytest.param("gaussian", -1, 15.0, id="negative-seed"),
        pytest.param("gaussian", 0, 1.5, id="fractional-step"),
    ],
)
def test_a_bad_family_seed_or_step_is_refused(family: str, seed: int, step: float) -> None:
    with pytest.raises(ConfigError):
        rng_for(family, seed, step)


def test_gaussian_is_100_plus_noise_of_sd_5() -> None:
    x = days_of("gaussian", 14, 15.0)
    assert x.mean() == pytest.approx(100, abs=0.1)
    assert x.std() == pytest.approx(5, rel=0.02)


def test_student_t3_is_centred_on_100_with_heavy_tails() -> None:
    x = days_of("student_t3", 14, 15.0)
    assert np.median(x) == pytest.approx(100, abs=0.1)
    beyond = np.mean(np.abs(x - 100) > 5 * 5.841)  # t(3) is past 5.841 one time in 100, a Gaussian never
    assert beyond == pytest.approx(0.01, abs=0.002)


def test_poisson_0_2_is_mostly_zeros() -> None:
    x = days_of("poisson_0.2", 14, 15.0)
    assert (x == np.round(x)).all() and x.min() == 0
    assert np.mean(x == 0) == pytest.approx(math.exp(-0.2), abs=0.005)
    assert x.mean() == pytest.approx(0.2, abs=0.01)


def test_poisson_50_counts_average_50() -> None:
    x = days_of("poisson_50", 14, 15.0)
    assert (x == np.round(x)).all()
    assert x.mean() == pytest.approx(50, abs=0.1)
    assert x.var() == pytest.approx(50, rel=0.03)


def test_integer_gauge_starts_at_20_and_moves_by_one_now_and_then_around_20() -> None:
    x = days_of("integer_gauge", 56, 15.0)
    moves = np.diff(x)
    assert x[0] == 20 and (x == np.round(x)).all()
    assert set(np.unique(moves).tolist()) == {-1.0, 0.0, 1.0}
    assert np.mean(moves != 0) == pytest.approx(0.05, abs=0.003)
    assert x.mean() == pytest.approx(20, abs=1.5)
    assert x.min() >= 5 and x.max() <= 35


def test_daily_swings_20_around_50_over_the_day() -> None:
    step = 900.0
    x = days_of("daily", 70, step)
    assert x.mean() == pytest.approx(50, abs=0.1)
    assert at_hour(x, step, 6).mean() == pytest.approx(70, abs=0.5)
    assert at_hour(x, step, 18).mean() == pytest.approx(30, abs=0.5)
    residual = x - 50 - 20 * np.sin(2 * np.pi * np.mod(times(x.size, step), DAY) / DAY)
    assert residual.std() == pytest.approx(2, rel=0.03)


def test_weekly_has_alike_nights_and_a_lower_peak_on_weekends() -> None:
    step = 900.0
    per_day = int(DAY / step)
    x = days_of("weekly", 70, step).reshape(10, 7, per_day)  # ten weeks, Monday first
    weekdays, weekend = x[:, :5].ravel(), x[:, 5:].ravel()
    assert weekdays.mean() == pytest.approx(50, abs=0.2)
    assert weekend.mean() == pytest.approx(35, abs=0.2)
    noon = int(12 * 3600 / step)
    assert x[:, :5, noon].mean() == pytest.approx(70, abs=0.8)
    assert x[:, 5:, noon].mean() == pytest.approx(40, abs=0.8)
    assert x[:, :5, 0].mean() == pytest.approx(x[:, 5:, 0].mean(), abs=0.8)  # midnight: no step at the weekend


@pytest.mark.parametrize("step", [15.0, 3600.0])
def test_random_walk_starts_at_50_and_wanders_slowly_near_it(step: float) -> None:
    x = days_of("random_walk", 14 if step == 15 else 730, step)
    assert x[0] == 50
    assert ((x >= 0) & (x <= 100)).all()
    assert x.min() > 40 and x.max() < 60
    steps = np.diff(x)
    assert steps.std() == pytest.approx(0.05 * math.sqrt(step / 15), rel=0.05)


def test_random_walk_is_clipped_to_0_and_100() -> None:
    x = random_walk(500, 15e6, START, np.random.default_rng(0))  # a huge step: every move overshoots
    assert x.min() == 0 and x.max() == 100


@pytest.mark.parametrize(("step", "days"), [(15.0, 60), (60.0, 120), (3600.0, 730)])
def test_zero_blips_has_about_four_small_blips_a_day_at_any_step(step: float, days: int) -> None:
    x = days_of("zero_blips", days, step)
    assert set(np.unique(x).tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}
    assert np.count_nonzero(x) / days == pytest.approx(4, rel=0.1)


def test_counter_rate_is_a_counters_per_second_rate_averaging_5() -> None:
    step = 60.0
    x = days_of("counter_rate", 56, step)
    assert (x >= 0).all()
    assert np.allclose(x * step, np.round(x * step))  # whole counts per step over the step
    assert x.mean() == pytest.approx(5, abs=0.02)
    # λ is taken at the middle of each step: 8 per second around 06:00, 2 around 18:00
    assert at_hour(x, step, 6).mean() == pytest.approx(8, abs=0.1)
    assert at_hour(x, step, 18).mean() == pytest.approx(2, abs=0.1)
