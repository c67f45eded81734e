"""Every registered detector, built with small parameters, passes the same checks.

Besides scoring, each detector declares what the pipeline's calibration reads from it
(`Detector.sided`, `per_sample`, `null_raw_cdf`); the last checks hold it to them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from vigil.detection.calibration import RecordCalibration, null_quantile
from vigil.detection.detectors import DETECTORS, build_detector
from vigil.detection.detectors.base import Detector, Scores, StepDetector
from vigil.detection.pipeline import Pipeline
from vigil.detection.settings import DEFAULTS, Settings
from vigil.detection.tail import TailCalibration
from vigil.snapshot import from_blob
from vigil.state import RowState

# Small windows keep the checks quick; a detector missing here runs with its defaults.
SMALL: dict[str, dict[str, Any]] = {
    "ewma": {"span": 5, "warmup": 5},
    "zscore": {"window": 20, "min_samples": 5},
    "iforest": {"window": 32, "min_samples": 32, "refit_every": 40, "n_estimators": 10},
    "seasonal": {"period": 50.0, "bins": 50, "warmup": 5},
}

N = 300


def make(name: str) -> Detector:
    return build_detector(name, SMALL.get(name, {}))


def data(n_rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = rng.uniform(-100, 100, (n_rows, 1))
    x = level + rng.normal(0, 1, (n_rows, N)).cumsum(axis=1) * 0.1 + rng.normal(0, 1, (n_rows, N))
    x[:, 250] += 25  # something worth flagging
    return x


def upd(det: Detector, st: RowState, rows: np.ndarray, x: np.ndarray, start: int = 0) -> Scores:
    """`det.update` with the samples' times: one per second from `start`."""
    return det.update(st, rows, x, np.broadcast_to(start + np.arange(x.shape[1], dtype=np.float64), x.shape))


def as_array(s: Scores) -> np.ndarray:
    return np.stack([s.raw, s.expected, s.lower, s.upper])


def same(a: Scores, b: Scores) -> None:
    np.testing.assert_array_equal(as_array(a), as_array(b))


@pytest.fixture(params=sorted(DETECTORS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_rows_are_independent_batch_equals_each_alone(name: str) -> None:
    det = make(name)
    x = data(10)
    batch = upd(det, det.new_state(10), np.arange(10), x)
    for i in range(10):
        alone = upd(det, det.new_state(1), np.array([0]), x[i : i + 1])
        np.testing.assert_array_equal(as_array(alone)[:, 0], as_array(batch)[:, i])


def test_row_order_does_not_matter(name: str) -> None:
    det = make(name)
    x = data(6)
    order = np.array([3, 0, 5, 1, 4, 2])
    st = det.new_state(6)
    shuffled = upd(det, st, order, x[order])
    straight = upd(det, det.new_state(6), np.arange(6), x)
    np.testing.assert_array_equal(as_array(shuffled)[:, np.argsort(order)], as_array(straight))


def test_no_look_ahead(name: str) -> None:
    det = make(name)
    x = data(1)
    y = x.copy()
    y[:, 200:] = np.random.default_rng(1).normal(0, 50, (1, N - 200))
    a = upd(det, det.new_state(1), np.array([0]), x)
    b = upd(det, det.new_state(1), np.array([0]), y)
    np.testing.assert_array_equal(as_array(a)[:, :, :200], as_array(b)[:, :, :200])


def test_block_boundaries_do_not_matter(name: str) -> None:
    det = make(name)
    x = data(2)
    whole = upd(det, det.new_state(2), np.arange(2), x)
    st = det.new_state(2)
    parts = [upd(det, st, np.arange(2), x[:, i : i + 37], start=i) for i in range(0, N, 37)]
    np.testing.assert_array_equal(np.concatenate([as_array(p) for p in parts], axis=2), as_array(whole))


def test_snapshot_round_trip_continues_exactly(name: str) -> None:
    det = make(name)
    x = data(3)
    st = det.new_state(3)
    upd(det, st, np.arange(3), x[:, :170])
    restored = det.load_state(from_blob(st.to_bytes()))
    same(upd(det, restored, np.arange(3), x[:, 170:], start=170), upd(det, st, np.arange(3), x[:, 170:], start=170))


def test_same_parameters_give_same_scores(name: str) -> None:
    x = data(2)
    a, b = make(name), make(name)
    same(upd(a, a.new_state(2), np.arange(2), x), upd(b, b.new_state(2), np.arange(2), x))


def test_nan_and_inf_never_poison_state(name: str) -> None:
    det = make(name)
    x = data(1)
    dirty = x.copy()
    dirty[0, [50, 120, 121, 260]] = [np.nan, np.inf, -np.inf, np.nan]
    s = upd(det, det.new_state(1), np.array([0]), dirty)
    assert np.isnan(s.raw[0, [50, 120, 121, 260]]).all()
    assert np.isfinite(s.raw[0, 280:]).all()
    assert (s.raw[0, 280:] >= 0).all()


def test_new_row_starts_cold(name: str) -> None:
    det = make(name)
    st = det.new_state(1)
    upd(det, st, np.array([0]), data(1))
    st.resize(2)
    s = upd(det, st, np.array([1]), data(1, seed=5)[:, :3])
    assert np.isnan(s.raw).all()


def test_reset_row_forgets_it(name: str) -> None:
    det = make(name)
    x = data(1)
    st = det.new_state(1)
    upd(det, st, np.array([0]), data(1, seed=3))
    st.reset(np.array([0]))
    same(upd(det, st, np.array([0]), x), upd(det, det.new_state(1), np.array([0]), x))


# What each detector is for: a sample far off (the default), a lasting change of level
# (seen once `recent` samples are past it), or noise ten times as strong.
ANOMALY: dict[str, tuple[str, int]] = {"shift": ("level", 275), "volatility": ("noise", 285)}


def test_obvious_anomaly_scores_above_one(name: str) -> None:
    det = make(name)
    x = data(1)
    kind, at = ANOMALY.get(name, ("spike", 250))
    if kind != "spike":
        x[:, 250] -= 25
        rng = np.random.default_rng(9)
        x[:, 250:] += 25 if kind == "level" else rng.normal(0, 10, (1, N - 250))
    s = upd(det, det.new_state(1), np.array([0]), x)
    assert s.raw[0, at] >= 1
    assert np.nanmedian(s.raw[0, 100:250]) < 1


# -- what each detector declares to the pipeline ---------------------------------------------

DECLARED = ("sided", "per_sample", "null_raw_cdf")


def declaring(name: str, predicate: Any) -> list[str]:
    return [n for n in sorted(DETECTORS) if predicate(make(n))]


def test_declares_what_the_pipeline_reads_with_the_right_types(name: str) -> None:
    det = make(name)
    assert type(det.sided) is bool
    assert type(det.per_sample) is bool
    assert det.null_raw_cdf is None or callable(det.null_raw_cdf)
    for attr in DECLARED:  # stated by the detector, not left to the base's default
        owner = next(c for c in type(det).__mro__ if attr in vars(c))
        assert owner is not StepDetector, f"{name} does not state {attr}"


@pytest.mark.parametrize("name", declaring("cdf", lambda d: d.null_raw_cdf is not None))
def test_null_raw_cdf_is_a_cdf(name: str) -> None:
    cdf = make(name).null_raw_cdf
    assert cdf is not None
    x = np.concatenate([[0.0], np.geomspace(1e-6, 1e6, 400)])
    p = np.asarray(cdf(x))
    assert p.shape == x.shape
    assert p[0] == pytest.approx(0.0, abs=1e-12)
    assert (np.diff(p) >= 0).all()
    assert ((p >= 0) & (p <= 1)).all()
    assert p[-1] > 1 - 1e-9
    np.testing.assert_array_equal(np.asarray(cdf(x[1:].reshape(2, 200))), p[1:].reshape(2, 200))  # elementwise


@pytest.mark.parametrize("name", declaring("cdf", lambda d: d.null_raw_cdf is not None))
def test_null_raw_cdf_describes_the_raw_scores_of_gaussian_noise(name: str) -> None:
    """Its quantiles are those of the detector's raw scores on noise, within a third."""
    det = make(name)
    assert det.null_raw_cdf is not None
    x = np.random.default_rng(4).normal(0.0, 1.0, (10, 2000))
    raw = upd(det, det.new_state(10), np.arange(10), x).raw[:, 500:]
    raw = raw[np.isfinite(raw)]
    for p in (0.5, 0.9, 0.99):
        ratio = float(np.quantile(raw, p)) / null_quantile(det.null_raw_cdf, p)
        assert 0.75 < ratio < 1.35, f"quantile {p}: {ratio:.2f} times what null_raw_cdf says"


@pytest.mark.parametrize("name", declaring("sided", lambda d: d.sided))
def test_a_sided_detector_gives_an_expected_value_with_every_raw_score(name: str) -> None:
    det = make(name)
    s = upd(det, det.new_state(1), np.array([0]), data(1))
    scored = np.isfinite(s.raw)
    assert scored.any()
    assert np.isfinite(s.expected[scored]).all()


@pytest.mark.parametrize("name", declaring("per_sample", lambda d: d.per_sample))
def test_a_per_sample_raw_score_is_of_the_sample_itself(name: str) -> None:
    """One spike: its raw score falls right back at the next sample, where a window's would linger."""
    det = make(name)
    s = upd(det, det.new_state(1), np.array([0]), data(1))
    assert s.raw[0, 250] > 4 * s.raw[0, 251]


def test_the_pipeline_calibrates_as_the_detector_declares(name: str) -> None:
    det = make(name)
    (tail,) = Pipeline([(name, det)]).calibrations
    assert isinstance(tail, TailCalibration) and tail.sided is det.sided
    (cal,) = Pipeline([(name, det)], Settings(calibration="record")).calibrations
    assert isinstance(cal, RecordCalibration)
    assert cal.sided is det.sided
    assert cal.hold == (DEFAULTS.hold if det.per_sample else 0)
    cdf = det.null_raw_cdf
    if cdf is None:
        assert cal.prior == 0.0
    else:  # a new series' record: the raw score of a 4-sigma deviation on noise
        assert float(np.asarray(cdf(np.array([cal.prior])))[0]) == pytest.approx(math.erf(4 / math.sqrt(2)), abs=1e-9)


@pytest.mark.parametrize("recent_median", [True, False])
def test_shift_sees_a_sustained_change_and_not_one_outlier_among_its_recent_samples(recent_median: bool) -> None:
    x = 100 + np.random.default_rng(3).normal(0, 1, (3, 600))
    x[1, 500] += 200  # one outlier: a spike, which level sees
    x[2, 500:] += 3  # a sustained change of 3 sigma
    d = build_detector("shift", {"recent_median": recent_median})
    s = d.update(d.new_state(3), np.arange(3), x)
    calm = float(np.nanmax(s.raw[0, 300:]))
    assert s.raw[2, 519] > 2 * calm
    if recent_median:  # the default
        assert np.nanmax(s.raw[1, 500:520]) < 2 * calm
    else:  # the mean of 20 moves by 10 sigma with the outlier
        assert np.nanmax(s.raw[1, 500:520]) > 5 * calm


def test_volatility_sees_noise_double_and_not_one_outlier() -> None:
    x = 100 + np.random.default_rng(4).normal(0, 1, (3, 1200))
    x[1, 1000] += 200  # one outlier: two large steps
    x[2, 1000:] = 100 + 2 * (x[2, 1000:] - 100)  # noise that doubles
    d = build_detector("volatility")
    s = d.update(d.new_state(3), np.arange(3), x)
    calm = float(np.nanmax(s.raw[0, 700:]))
    assert np.nanmax(s.raw[1, 1000:1050]) < 2 * calm
    assert s.raw[2, 1049] > 2 * calm


def test_a_spike_that_leaves_shift_s_recent_samples_does_not_move_its_baseline() -> None:
    """Once a spike's samples would enter the baseline (20 samples on), a mean of 200 would
    move by 3 x 450 / 200 and open a shift of its own, the wrong way."""
    x = 50 + np.random.default_rng(5).normal(0, 1, (2, 600))
    x[1, 500:503] = 500.0
    d = build_detector("shift")
    s = d.update(d.new_state(2), np.arange(2), x)
    calm = float(np.nanmax(s.raw[0, 300:]))
    assert np.nanmax(s.raw[1, 500:600]) < 2 * calm
