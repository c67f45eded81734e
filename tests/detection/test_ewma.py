from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.detection.detectors.ewma import Ewma
from vigil.errors import ConfigError


def reference(
    x: list[float], span: float, k: float, sigma_span: float, warmup: int, shift_after: int
) -> list[tuple[float, float]]:
    """Plain-Python EWMA, one sample at a time: (raw, expected) per sample."""
    a, b = 2 / (span + 1), 2 / (sigma_span + 1)
    n, mean, msq, weight, run = 0, 0.0, 0.0, 0.0, 0
    out = []
    for v in x:
        sigma = math.sqrt(msq / weight) if weight > 0 else 0.0
        half = k * max(sigma, 1e-9 * abs(mean) + 1e-9)
        d = v - mean
        ready = n >= warmup
        out.append((abs(d) / half if ready else math.nan, mean if ready else math.nan))
        if n == 0:
            mean = v
        else:
            dw = max(-half, min(half, d)) if ready else d
            if ready:
                run = run + 1 if abs(d) > half else 0
            mean += a * (d if run >= shift_after or not ready else dw)
            msq = (1 - b) * msq + b * dw * dw
            weight = 1 - (1 - b) * (1 - weight)
        n += 1
    return out


def test_matches_one_sample_at_a_time_reference() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(50, 2, 300), [90.0], rng.normal(60, 2, 200)])
    det = Ewma(span=10, k=3, sigma_span=50, warmup=10, shift_after=3)
    s = det.update(det.new_state(1), np.array([0]), x[None])
    ref = np.array(reference(list(x), 10, 3, 50, 10, 3))
    np.testing.assert_allclose(s.raw[0], ref[:, 0], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(s.expected[0], ref[:, 1], rtol=1e-12, equal_nan=True)


def test_no_opinion_during_warmup() -> None:
    det = Ewma(warmup=7)
    s = det.update(det.new_state(1), np.array([0]), np.arange(10.0)[None])
    assert np.isnan(s.raw[0, :7]).all()
    assert np.isfinite(s.raw[0, 7:]).all()


def test_spike_widens_band_only_up_to_its_edge() -> None:
    rng = np.random.default_rng(0)
    calm = rng.normal(0, 1, 500)
    det = Ewma(sigma_span=50)
    st = det.new_state(1)
    before = det.update(st, np.array([0]), calm[None])
    width_before = before.upper[0, -1] - before.lower[0, -1]
    det.update(st, np.array([0]), np.array([[1000.0]]))
    after = det.update(st, np.array([0]), np.array([[0.0]]))
    width_after = after.upper[0, -1] - after.lower[0, -1]
    assert width_after < 1.2 * width_before


def test_lone_spike_does_not_drag_the_level() -> None:
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(0, 1, 300), [50.0], rng.normal(0, 1, 20)])
    s = Ewma().update(Ewma().new_state(1), np.array([0]), x[None])
    assert s.raw[0, 300] > 5
    assert (s.raw[0, 301:] < 1).all()


def test_level_shift_is_learned_within_a_few_spans() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(10, 1, 300), rng.normal(30, 1, 300)])
    det = Ewma(span=10)
    s = det.update(det.new_state(1), np.array([0]), x[None])
    assert s.raw[0, 300] > 1
    assert np.nanmax(s.raw[0, 400:]) < 1.5


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        pytest.param({"span": 0}, "span", id="span-zero"),
        pytest.param({"k": -1}, "k", id="k-negative"),
        pytest.param({"sigma_span": float("nan")}, "sigma_span", id="sigma-span-nan"),
        pytest.param({"warmup": 1.5}, "warmup", id="warmup-fraction"),
    ],
)
def test_bad_parameters_name_the_key(kwargs: dict[str, float], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"ewma: {key} is"):
        Ewma(**kwargs)


def test_wrong_type_of_parameter_is_a_config_error() -> None:
    from vigil.detection.detectors import build_detector

    with pytest.raises(ConfigError, match=r"ewma: cannot use span='ten'"):
        build_detector("ewma", {"span": "ten"})
    with pytest.raises(ConfigError, match=r"ewma: unknown parameter\(s\) spam; ewma takes span"):
        build_detector("ewma", {"spam": 1})
