"""The decision's gates apply to each member's own deviation, not only to the combined one.

Two real detectors disagree on which side of the expected value a sample is: on a slow
downward ramp, a fast EWMA follows the ramp and a 300-sample z-score lags above it. A
small upward spike is then a rise for the EWMA (which scores it high) and still below the
z-score's mean (the band the decision reads). A query watching only drops must not alert
on it; watching both sides, it does.
"""

from __future__ import annotations

import numpy as np

from vigil.detection.detectors import build_detector
from vigil.detection.pipeline import Pipeline, Result
from vigil.detection.settings import DecisionConfig, Settings

SPIKE = 550


def ramp_with_a_spike(direction: str, **gates: float) -> Result:
    settings = Settings(detector="zscore", decision=DecisionConfig(direction=direction, **gates),  # type: ignore[arg-type]
                        calibration_min_samples=10)
    members = [("slow", build_detector("zscore", {"window": 300, "min_samples": 30})),
               ("fast", build_detector("ewma", {"span": 3, "warmup": 5}))]
    pipeline = Pipeline(members, settings)
    pipeline.resize(1)
    x = 50 - 0.03 * np.arange(600) + np.random.default_rng(3).normal(0, 0.3, 600)
    x[SPIKE] += 4.0
    return pipeline.update(np.array([0]), np.arange(600.0)[None] * 15, x[None])


def test_a_rise_seen_by_one_member_does_not_alert_a_query_that_watches_drops() -> None:
    both = ramp_with_a_spike("both")
    assert [e.started_at for e in both.events if e.state == "firing"] == [SPIKE * 15], "the scenario alerts"
    assert both.members["fast"][0, SPIKE] >= both.members["slow"][0, SPIKE]
    (event,) = [e for e in both.events if e.state == "firing"]
    assert event.observed < event.expected, "below the band's expected value: the decision's own gate passes"
    below = ramp_with_a_spike("below")
    assert not below.hot.any() and below.events == []
    assert below.members["fast"][0, SPIKE] < DecisionConfig().threshold, "the rise does not count"


def test_a_member_whose_own_deviation_is_too_small_does_not_count() -> None:
    gated = ramp_with_a_spike("both", min_abs_deviation=10.0)
    assert gated.events == []
    assert np.nanmax(gated.score) < DecisionConfig().threshold
