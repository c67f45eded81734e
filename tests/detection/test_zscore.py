from __future__ import annotations

import numpy as np
import pytest

from vigil.detection.detectors.zscore import ZScore
from vigil.errors import ConfigError


def test_mean_and_std_match_numpy_on_every_prefix() -> None:
    rng = np.random.default_rng(5)
    # a large offset makes naive sums lose precision; the shifted, recomputed sums must not
    x = 1e4 + rng.normal(0, 1, 1000)
    w = 50
    det = ZScore(window=w, std_dev_threshold=1e9, min_samples=10)  # band so wide nothing is clipped
    s = det.update(det.new_state(1), np.array([0]), x[None])
    for i in range(10, len(x)):
        past = x[max(0, i - w) : i]
        assert s.expected[0, i] == pytest.approx(past.mean(), rel=1e-12)
        half = s.upper[0, i] - s.expected[0, i]
        assert half == pytest.approx(1e9 * past.std(ddof=1), rel=1e-6)


def test_outlier_enters_window_clipped_to_band() -> None:
    rng = np.random.default_rng(2)
    det = ZScore(window=100, std_dev_threshold=3)
    st = det.new_state(1)
    det.update(st, np.array([0]), rng.normal(0, 1, 200)[None])
    det.update(st, np.array([0]), np.array([[1e6]]))
    s = det.update(st, np.array([0]), np.array([[0.0]]))
    assert abs(s.expected[0, 0]) < 0.2
    assert s.upper[0, 0] - s.expected[0, 0] < 4


def test_block_split_anywhere_gives_same_result() -> None:
    x = np.random.default_rng(9).normal(0, 1, 333)[None]
    det = ZScore(window=20, min_samples=5)
    whole = det.update(det.new_state(1), np.array([0]), x)
    st = det.new_state(1)
    a = det.update(st, np.array([0]), x[:, :101])
    b = det.update(st, np.array([0]), x[:, 101:])
    np.testing.assert_array_equal(np.concatenate([a.raw, b.raw], axis=1), whole.raw)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        pytest.param({"window": 1}, "window", id="window-one"),
        pytest.param({"std_dev_threshold": 0}, "std_dev_threshold", id="threshold-zero"),
        pytest.param({"window": 10, "min_samples": 11}, "min_samples", id="min-samples-over-window"),
    ],
)
def test_bad_parameters_name_the_key(kwargs: dict[str, float], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"zscore: {key} is"):
        ZScore(**kwargs)
