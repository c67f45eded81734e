"""The tail calibration: a raw score's rarity on the series' own history, against a budget per sample."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detection.cadence import Cadence
from vigil.detection.pipeline import build_pipeline
from vigil.detection.settings import DEFAULT_THRESHOLD
from vigil.detection.tail import TailCalibration
from vigil.errors import ConfigError

ROWS = 40


def hot_rate(raw: np.ndarray, budget: float, **kwargs: object) -> float:
    """The share of samples at or above the threshold, after the first 2,000 of each row."""
    cal = TailCalibration(**kwargs)  # type: ignore[arg-type]
    c = cal.update(cal.new_state(raw.shape[0]), np.arange(raw.shape[0]), raw, budget=np.full(raw.shape[0], budget))
    return float(np.mean(c.score[:, 2000:] >= DEFAULT_THRESHOLD))


@pytest.mark.parametrize(
    ("noise", "most"),
    [
        pytest.param(lambda rng, shape: np.abs(rng.normal(size=shape)), 1.0, id="gaussian"),
        pytest.param(lambda rng, shape: rng.exponential(size=shape), 2.0, id="exponential"),
        pytest.param(lambda rng, shape: np.abs(rng.standard_t(3, size=shape)), 3.0, id="student-t-3"),
        pytest.param(lambda rng, shape: rng.lognormal(0, 1, size=shape), 3.0, id="lognormal"),
        pytest.param(lambda rng, shape: rng.poisson(0.5, size=shape).astype(float), 2.0, id="poisson"),
    ],
)
def test_noise_is_hot_about_as_often_as_the_budget_allows(noise, most: float) -> None:  # type: ignore[no-untyped-def]
    """Rarer than the budget allows costs detections, more often costs pages: both within a factor."""
    budget = 2e-4
    rate = hot_rate(noise(np.random.default_rng(3), (ROWS, 20_000)), budget)
    assert rate <= most * budget, rate


def test_a_deviation_far_past_the_tail_is_hot_and_a_usual_one_is_not() -> None:
    rng = np.random.default_rng(4)
    raw = np.abs(rng.normal(size=(ROWS, 5000)))
    raw[:, -1] = 7.0  # about 1e-12 on Gaussian noise
    raw[:, -2] = 2.0  # one sample in twenty
    cal = TailCalibration()
    c = cal.update(cal.new_state(ROWS), np.arange(ROWS), raw, budget=np.full(ROWS, 1e-5))
    assert (c.score[:, -1] >= DEFAULT_THRESHOLD).all()
    assert (c.score[:, -2] < 0.5).all()


def test_the_budget_moves_the_edge_and_a_score_never_depends_on_the_threshold() -> None:
    raw = np.abs(np.random.default_rng(5).normal(size=(1, 3000)))
    edges = []
    for budget in (1e-3, 1e-6):
        cal = TailCalibration()
        edges.append(cal.update(cal.new_state(1), np.array([0]), raw, budget=np.array([budget])).edge_above[0, -1])
    assert edges[0] < edges[1]  # a smaller budget wants a rarer raw score
    scores = []
    for threshold in (0.99, DEFAULT_THRESHOLD):
        cal = TailCalibration(threshold=threshold)
        scores.append(cal.update(cal.new_state(1), np.array([0]), raw, budget=np.array([1e-4])).score)
    np.testing.assert_array_equal(*scores)


def test_values_a_discrete_series_has_shown_are_not_rare_and_the_next_one_up_is_not_impossible() -> None:
    """Counts tie: the gap between the values widens the tail, and what was seen n times has n / N."""
    rng = np.random.default_rng(6)
    raw = rng.poisson(0.3, size=(1, 20_000)).astype(float)
    raw[0, -1] = raw[0, :-1].max()  # as large as the largest seen: not an incident
    cal = TailCalibration()
    c = cal.update(cal.new_state(1), np.array([0]), raw, budget=np.array([1e-4]))
    assert c.score[0, -1] < DEFAULT_THRESHOLD
    assert float(np.mean(c.score[0, 2000:] >= DEFAULT_THRESHOLD)) < 1e-3


def test_an_incident_is_held_kept_apart_from_normal_behaviour_and_a_pattern_once_it_recurs() -> None:
    rng = np.random.default_rng(7)
    raw = np.abs(rng.normal(size=(1, 3000)))
    raw[0, 2000:2005] = 30.0  # a plateau of five samples
    raw[0, 2500] = 30.0  # the same again, after the hold: still news
    raw[0, 2800] = 29.0  # a third time, no larger: a pattern of this series now
    cal = TailCalibration(hold=20)
    st = cal.new_state(1)
    c = cal.update(st, np.array([0]), raw, budget=np.array([1e-5]))
    assert (c.score[0, 2000:2005] >= DEFAULT_THRESHOLD).all() and c.holding[0, 2000:2025].all()
    assert not c.holding[0, 2030:2500].any()
    assert c.score[0, 2500] >= DEFAULT_THRESHOLD
    assert c.score[0, 2800] < DEFAULT_THRESHOLD
    assert float(st["newer"][0, 0, 0]) < 30.0, "an incident's samples are not normal behaviour"
    assert sorted(st["incidents"][0, 0].ravel().tolist())[-2:] == [30.0, 30.0]


def test_a_side_with_few_samples_is_scored_on_the_other_and_nothing_divides_by_zero() -> None:
    raw = np.abs(np.random.default_rng(8).normal(size=(1, 50)))
    below = np.zeros((1, 50), dtype=bool)
    below[0, -1] = True  # the first sample ever below
    cal = TailCalibration(sided=True, min_samples=1)
    c = cal.update(cal.new_state(1), np.array([0]), raw, below, budget=np.array([1e-3]))
    assert np.isfinite(c.score[0, 8:]).all()  # from the 8th sample on, the first below on the tail above


def test_old_samples_are_forgotten_after_memory() -> None:
    rng = np.random.default_rng(9)
    raw = np.abs(rng.normal(size=(1, 1200)))
    raw[0, 100] = 40.0  # a burst, learned
    raw[0, 1199] = 40.0  # the same, 1,100 samples later
    short, long = TailCalibration(memory=400), TailCalibration(memory=4000)
    scores = [cal.update(cal.new_state(1), np.array([0]), raw, budget=np.array([1e-5])).score[0, 1199]
              for cal in (short, long)]
    assert scores[0] >= DEFAULT_THRESHOLD > scores[1]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        pytest.param({"memory": 3}, "memory is 3", id="memory"),
        pytest.param({"min_samples": 0}, "min_samples is 0", id="min_samples"),
        pytest.param({"top": 2}, "top is 2", id="top"),
        pytest.param({"heavy": 0.0}, "heavy is 0.0", id="heavy"),
        pytest.param({"hold": -1}, "hold is -1", id="hold"),
        pytest.param({"threshold": 1.0}, "threshold is 1.0", id="threshold"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        TailCalibration(**kwargs)  # type: ignore[arg-type]


def test_the_budget_is_in_time_the_same_rate_a_second_or_an_hour_apart() -> None:
    """One false alarm a month: a series sampled every hour may spend 3,600 times more per sample."""
    cad = Cadence()
    rates = []
    for step in (1.0, 3600.0):
        p = build_pipeline()
        p.resize(1)
        t = step * np.arange(100.0)[None]
        p.update(np.array([0]), t, np.zeros((1, 100)))
        rates.append(float(p.cadence_state["step"][0]))
        st = cad.new_state(1)
        cad.update(st, np.array([0]), t, np.zeros((1, 100)))
        assert float(st["step"][0]) == pytest.approx(step)
    assert rates == pytest.approx([1.0, 3600.0])


def test_a_byte_on_a_series_of_zeros_is_not_an_incident_but_a_jump_of_a_flat_gauge_is() -> None:
    p = build_pipeline()
    p.resize(3)
    x = np.zeros((3, 3000))
    x[1] = 50.0
    x[0, 2500] = 1.0  # one byte on zeros
    x[1, 2500] = 80.0  # a flat gauge jumps by 30
    x[2, ::7] = 0.25  # a series of fractions: resolution 0.25; a jump of 1 is 4 of its steps...
    x[2, 2500] = 5.0  # ...and one of 5, 20 of them
    r = p.update(np.arange(3), 60.0 * np.broadcast_to(np.arange(3000.0), x.shape), x)
    assert not r.hot[0].any()
    assert r.hot[1, 2500] and r.hot[2, 2500]


def test_a_step_or_a_ramp_is_one_event_and_only_a_tenfold_worse_sample_escalates() -> None:
    """Surprise past the edge grows with the deviation, not the tail's probability: no second page."""
    rng = np.random.default_rng(11)
    x = 50 + rng.normal(0, 1, (3, 2000))
    x[0, 1500:1506] += 40  # a step of six samples
    x[1, 1500:1510] += np.linspace(10, 60, 10)  # a ramp
    x[2, 1500:1506] += 40
    x[2, 1503] += 4000  # a hundred times further out, inside the incident: a new one
    p = build_pipeline()
    p.resize(3)
    r = p.update(np.arange(3), 15.0 * np.broadcast_to(np.arange(2000.0), x.shape), x)
    opened = r.opened[:, 1400:]
    assert opened[0].sum() == 1 and opened[1].sum() == 1, opened.sum(axis=1)
    assert opened[2].sum() == 2 and r.escalated[2, 1503]


def test_a_young_series_band_stays_within_reach_and_catches_a_spike_after_a_flat_stretch() -> None:
    """A few order statistics say little about how heavy a tail is: extrapolated to a month's
    budget, their Pareto index opened bands by orders of magnitude, and a spike went unseen.

    The second case is what a scraper fills a 20 s outage with: the last value, repeated
    (with the full index, 7 of the 200 spikes were missed).
    """
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 400))
    p = build_pipeline()
    p.resize(200)
    r = p.update(np.arange(200), 15.0 * np.broadcast_to(np.arange(400.0), x.shape), x)
    half_width = (r.upper - r.expected)[:, 60:]
    assert np.nanmax(half_width) < 50, f"a young Gaussian series' band reached ±{np.nanmax(half_width):.3g} sigma"

    missed = 0
    for seed in range(200):
        y = 40 + 2 * np.random.default_rng(seed).standard_normal(70)
        y[30:55] = y[29]  # the gap, filled with the last value
        y[-1] = 120  # 40 sigma
        p = build_pipeline(calibration_min_samples=10)
        p.resize(1)
        r = p.update(np.array([0]), np.arange(70.0)[None], y[None])
        missed += not r.hot[0, -1]
    assert missed <= 2, f"missed in {missed} of 200 young series"
