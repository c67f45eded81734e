"""Pipeline.update with multivariate samples, x of shape (rows, steps, d)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from vigil.detection.decision import DecisionConfig
from vigil.detection.detectors.base import Scores
from vigil.detection.detectors.ewma import Ewma
from vigil.detection.pipeline import Pipeline
from vigil.detection.settings import Settings
from vigil.errors import ConfigError
from vigil.state import Field, FloatArray, IntArray, RowState


class GapDetector:
    """Test double: raw = |x0 - x1| / 10, expected = x1 with a band of ±10; takes (rows, steps, 2)."""

    name: ClassVar[str] = "gap"
    sided: ClassVar[bool] = False
    per_sample: ClassVar[bool] = False
    null_raw_cdf = None

    def __init__(self) -> None:
        self.seen: list[FloatArray] = []

    def fields(self) -> dict[str, Field]:
        return {"n": Field((), np.int64, 0)}

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def params(self) -> dict[str, Any]:
        return {}

    def update(self, state: RowState, rows: IntArray, x: FloatArray, t: FloatArray | None = None) -> Scores:
        if x.ndim != 3 or x.shape[2] != 2:
            raise ValueError(f"gap: x must have shape (rows, steps, 2), got {x.shape}")
        self.seen.append(x.copy())
        raw = np.abs(x[..., 0] - x[..., 1]) / 10
        return Scores(raw=raw, expected=x[..., 1], lower=x[..., 1] - 10, upper=x[..., 1] + 10)


def pipeline(detector: Any, **kwargs: Any) -> Pipeline:
    p = Pipeline([("gap", detector)], Settings(decision=DecisionConfig(threshold=0.99), calibrate=False, **kwargs))
    p.resize(1)
    return p


def test_three_dimensional_samples_reach_the_detector_whole() -> None:
    det = GapDetector()
    x = np.array([[[1.0, 1.5], [2.0, 2.5]]])
    pipeline(det).update(np.array([0]), np.array([[0.0, 1.0]]), x)
    np.testing.assert_array_equal(det.seen[0], x)


def test_first_component_is_the_observed_value_of_events() -> None:
    x = np.array([[[50.0, 50.0], [80.0, 50.0], [51.0, 50.0]]])
    r = pipeline(GapDetector()).update(np.array([0]), np.array([[0.0, 1.0, 2.0]]), x)
    assert r.hot[0].tolist() == [False, True, False]
    [event] = r.events
    assert (event.observed, event.expected, event.lower, event.upper) == (80.0, 50.0, 40.0, 60.0)


def test_a_sample_with_any_bad_component_is_invalid_and_hidden_from_the_detector() -> None:
    det = GapDetector()
    x = np.array([[[1.0, 1.0], [np.nan, 2.0], [3.0, np.inf], [4.0, 4.0]]])
    r = pipeline(det).update(np.array([0]), np.arange(4.0)[None], x)
    assert r.invalid[0].tolist() == [False, True, True, False]
    seen = det.seen[0][0]
    assert np.isnan(seen[1]).all() and np.isnan(seen[2]).all()
    assert np.isnan(r.score[0, 1:3]).all()


def test_valid_range_applies_to_every_component() -> None:
    x = np.array([[[1.0, 1.0], [1.0, 150.0], [-5.0, 1.0]]])
    r = pipeline(GapDetector(), valid_range=(0.0, 100.0)).update(
        np.array([0]), np.arange(3.0)[None], x
    )
    assert r.invalid[0].tolist() == [False, True, True]


def test_univariate_detector_given_several_values_is_a_config_error() -> None:
    p = Pipeline([("ewma", Ewma())])
    p.resize(1)
    with pytest.raises(ConfigError, match="ewma does not take samples of 3 values"):
        p.update(np.array([0]), np.zeros((1, 4)), np.zeros((1, 4, 3)))


def test_mismatched_shapes_are_still_rejected() -> None:
    p = pipeline(GapDetector())
    with pytest.raises(ValueError, match="do not fit"):
        p.update(np.array([0]), np.zeros((1, 3)), np.zeros((1, 4, 2)))
