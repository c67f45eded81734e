"""Invariants of the default pipeline (the ensemble `vigil run` uses), by hypothesis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.detection.pipeline import Pipeline, Result, build_pipeline
from vigil.errors import StateError

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEP = 60.0  # seconds between samples: the budget of false alarms is in time


def run(x: np.ndarray, pipeline: Pipeline | None = None) -> Result:
    x = np.atleast_2d(x)
    p = pipeline or build_pipeline()
    if p.n_rows < x.shape[0]:
        p.resize(x.shape[0])
    t = np.broadcast_to(STEP * np.arange(x.shape[1], dtype=float), x.shape)
    return p.update(np.arange(x.shape[0]), t, x)


def calm(seed: int, n: int, mean: float, sigma: float) -> np.ndarray:
    return mean + sigma * np.random.default_rng(seed).standard_normal(n)


def fields(r: Result) -> np.ndarray:
    return np.stack([r.score, r.expected, r.lower, r.upper, r.hot, r.anomalous, r.warming_up])


def events(r: Result) -> list[tuple[object, ...]]:
    return [(e.row, e.number, e.state, e.started_at, e.ended_at, e.peak_score) for e in r.events]


@SETTINGS
@given(value=st.floats(-1e12, 1e12, allow_nan=False), n=st.integers(1, 600))
def test_constant_series_raises_nothing(value: float, n: int) -> None:
    r = run(np.full(n, value))
    assert not r.hot.any()
    assert r.events == []


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    mean=st.floats(-1e6, 1e6),
    sigma=st.floats(1e-3, 1e4),
    jumps=st.lists(st.tuples(st.integers(0, 399), st.floats(-1e3, 1e3)), max_size=5),
)
def test_bounds_contain_the_expected_value(seed: int, mean: float, sigma: float, jumps: list[tuple[int, float]]) -> None:
    x = calm(seed, 400, mean, sigma)
    for i, size in jumps:
        x[i:] += size * sigma
    r = run(x)
    known = ~np.isnan(r.expected)
    assert known[0, 100:].all()
    assert (r.lower[known] <= r.expected[known]).all()
    assert (r.expected[known] <= r.upper[known]).all()


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    mean=st.floats(-1e6, 1e6),
    sigma=st.floats(1e-2, 1e4),
    n_calm=st.integers(1000, 2000),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_eight_sigma_spike_after_calm_stretch_is_flagged(
    seed: int, mean: float, sigma: float, n_calm: int, sign: float
) -> None:
    """A few hundred samples cannot tell a Gaussian tail from a heavier one, and the
    calibration takes the heavier: after 600 samples about 1 Gaussian draw in 100 puts the
    band past 8 sigma (one 4.7 sigma sample is enough). From a thousand on, 8 sigma is past
    a month's budget."""
    sigma = max(sigma, 1e-6 * abs(mean))  # detectors floor sigma at 1e-9 of the level
    x = np.append(calm(seed, n_calm, mean, sigma), mean + sign * 8 * sigma)
    r = run(x)
    assert r.hot[0, -1]
    assert r.anomalous[0, -1]


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    sigma=st.floats(1e-2, 1e3),
    size=st.floats(10, 1000),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_level_shift_is_flagged_then_learned(seed: int, sigma: float, size: float, sign: float) -> None:
    x = calm(seed, 1500, 100.0, sigma)
    x[1000:] += sign * size * sigma
    r = run(x)
    at_shift = [e for e in r.events if 1000 <= e.started_at / STEP <= 1002]
    assert at_shift, "the shift opened no event"
    resolved = [e for e in at_shift if e.state == "resolved"]
    assert resolved and resolved[0].ended_at is not None and resolved[0].ended_at / STEP < 1300, "not learned"


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), split=st.integers(1, 499))
def test_snapshot_restore_continue_equals_never_stopping(seed: int, split: int) -> None:
    x = calm(seed, 500, 10.0, 1.0)
    x[[150, 300, 301, 302]] += 12
    x = np.stack([x, x[::-1]])
    whole = run(x)

    first = build_pipeline()
    a = run(x[:, :split], first)
    second = build_pipeline()
    second.restore(first.snapshot())
    second.resize(2)
    t = np.broadcast_to(STEP * np.arange(split, 500, dtype=float), (2, 500 - split))
    b = second.update(np.arange(2), t, x[:, split:])

    np.testing.assert_array_equal(np.concatenate([fields(a), fields(b)], axis=2), fields(whole))
    assert events(a) + events(b) == events(whole)


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_hundred_series_at_once_equal_each_alone(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1e3, 1e3, (100, 1)) + rng.standard_t(3, (100, 200)) * rng.uniform(0.1, 10, (100, 1))
    x[rng.random(x.shape) < 0.02] = np.nan
    together = run(x)
    for i in range(100):
        alone = run(x[i])
        np.testing.assert_array_equal(fields(alone)[:, 0], fields(together)[:, i])
        assert [e[2:] for e in events(alone)] == [e[2:] for e in events(together) if e[0] == i]


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 399))
def test_scores_never_depend_on_later_samples(seed: int, cut: int) -> None:
    x = calm(seed, 400, 0.0, 1.0)
    y = x.copy()
    y[cut + 1 :] = np.random.default_rng(seed + 1).normal(50, 30, 399 - cut)
    a, b = run(x), run(y)
    np.testing.assert_array_equal(fields(a)[:, :, : cut + 1], fields(b)[:, :, : cut + 1])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), level=st.floats(0.0, 5.0))
def test_a_band_never_goes_below_0_on_a_series_never_seen_below_0(seed: int, level: float) -> None:
    rng = np.random.default_rng(seed)
    x = np.abs(level + rng.normal(0, 1.0, 400)) * (rng.random(400) < 0.7)  # zeros and small values
    p = build_pipeline()
    p.resize(1)
    r = p.update(np.array([0]), np.arange(400.0)[None] * 15, x[None])
    assert not (r.lower < 0).any() and not (r.expected < 0).any()
    known = ~np.isnan(r.lower)
    assert (r.lower[known] <= r.expected[known]).all() and (r.expected[known] <= r.upper[known]).all()


def test_once_a_series_goes_below_0_its_band_may_too_and_the_snapshot_remembers() -> None:
    rng = np.random.default_rng(5)
    x = np.abs(rng.normal(0, 1.0, 300))
    p = build_pipeline()
    p.resize(1)
    p.update(np.array([0]), np.arange(300.0)[None] * 15, x[None])
    p.update(np.array([0]), np.array([[300.0 * 15]]), np.array([[-0.5]]))
    restored = build_pipeline()
    restored.restore(p.snapshot())
    after = rng.normal(0.3, 1.0, 50)
    r = restored.update(np.array([0]), (301.0 + np.arange(50.0))[None] * 15, after[None])
    assert (r.lower < 0).any(), "seen below 0: the band is not clipped"


def fed_pipeline() -> Pipeline:
    p = build_pipeline()
    p.resize(2)
    p.update(np.array([0, 1]), np.tile(np.arange(50.0), (2, 1)) * 15, np.abs(np.random.default_rng(1).normal(0, 1, (2, 50))))
    return p


def as_vigil_6_saved(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` as a Vigil before the state was narrowed saved it: format 6, and `level`
    with the fields it had then (a sorted copy of its window, 64-bit counters)."""
    level = payload["states"][0]
    n_rows = level["n_rows"]
    old = {"n": ((), "<i8", 0), "ring": ((101,), "<f4", np.nan), "pos": ((), "<i8", 0), "base_sum": ((), "<f8", 0.0),
           "recent_sum": ((), "<f8", 0.0), "steps": ((), "<f8", 0.0), "last": ((), "<f8", np.nan),
           "sorted": ((100,), "<f4", np.nan)}
    level["fields"] = {k: {"shape": list(shape), "dtype": dt, "fill": fill} for k, (shape, dt, fill) in old.items()}
    level["arrays"] = {k: np.full((n_rows, *shape), fill, dtype=dt) for k, (shape, dt, fill) in old.items()}
    return {**payload, "format": 6}


def test_a_snapshot_of_an_earlier_vigil_is_refused_and_changes_nothing() -> None:
    restored = build_pipeline()
    with pytest.raises(StateError, match=r"pipeline format 6, not \d+: made by an earlier version of Vigil"):
        restored.load(as_vigil_6_saved(fed_pipeline().payload()))
    assert restored.n_rows == 0 and all(st.n_rows == 0 for st in restored.model_states())


def test_a_state_with_other_fields_is_refused_whatever_its_format_says() -> None:
    payload = as_vigil_6_saved(fed_pipeline().payload())
    payload["format"] = fed_pipeline().payload()["format"]
    restored = build_pipeline()
    with pytest.raises(StateError, match="saved state of detector level does not match"):
        restored.load(payload)
    assert restored.n_rows == 0
