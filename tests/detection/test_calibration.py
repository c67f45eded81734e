from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from vigil.detection.calibration import BandCalibration, Calibration, RecordCalibration, null_quantile
from vigil.detection.detectors.base import erf
from vigil.detection.tail import TailCalibration
from vigil.errors import ConfigError


def reference(raw: np.ndarray, below: np.ndarray, memory: int, steepness: float, min_samples: int,
              prior: float, sided: bool, hold: int, level: float, learn: float) -> tuple[list[float], list[bool]]:
    """RecordCalibration written plainly, one sample at a time: the scores and the samples in a hold."""
    records = {False: prior, True: prior}
    before, peak, left, age, top_lp = dict(records), {False: 0.0, True: 0.0}, 0, 0, 0.0
    out, holding, n = [], [], 0
    for x, low in zip(raw.tolist(), below.tolist(), strict=True):
        side = low and sided
        holding.append(False)
        if math.isnan(x):
            out.append(math.nan)
            continue
        if n < min_samples:
            out.append(math.nan)
        else:
            top = (before if left else records)[side]
            lp = 0.0 if x == 0 else math.inf if top == 0 else max(0.0, math.log10(memory * (x / top) ** steepness))
            level_lp = -math.log10(1 - level)
            if left and lp >= top_lp + 2:  # escalates: a new detection
                left, age, top_lp = hold + 1, 0, lp
            elif left:
                if lp >= level_lp and age < 5 * hold:  # the incident goes on
                    left = hold + 1
                lp = min(lp, level_lp)
            elif lp >= level_lp and hold:
                before, peak, left, age, top_lp = dict(records), {False: 0.0, True: 0.0}, hold + 1, 0, lp
            out.append(level if left and lp == level_lp else 1 - 10 ** -lp)
            holding[-1] = left > 0
        for s in records:
            records[s] *= 1 - 1 / memory
        if left:  # the incident's peak is learned when the hold ends
            peak[side] = max(peak[side], x)
            left -= 1
            age += 1
            if not left:
                records = {s: max(r, r + learn * (peak[s] - r)) for s, r in records.items()}
        else:
            records[side] = max(records[side], x)
        n += 1
    return out, holding


@pytest.mark.parametrize("sided", [False, True])
def test_scores_equal_a_plain_reference_sample_by_sample(sided: bool) -> None:
    rng = np.random.default_rng(3)
    raw = np.abs(rng.standard_t(3, size=3000))
    raw[rng.random(3000) < 0.01] = np.nan
    raw[100:110] = 0.0
    raw[[1500, 1503]] = 30.0, 3000.0  # an incident, then much worse within its hold
    below = rng.random(3000) < 0.4
    below[[1500, 1503]] = False
    cal = RecordCalibration(memory=500, steepness=7.0, min_samples=20, prior=2.0, sided=sided, hold=7, level=0.999,
                            learn=0.7)
    st = cal.new_state(1)
    blocks = [cal.update(st, np.array([0]), raw[None, a:a + 700], below[None, a:a + 700]) for a in range(0, 3000, 700)]
    want, holding = reference(raw, below, 500, 7.0, 20, 2.0, sided, 7, 0.999, 0.7)
    assert np.sum(np.array(want) == 0.999) >= 1  # held samples capped at the level
    assert holding[1503] and want[1503] > 0.999 and want[1501] <= 0.999  # an escalation inside a hold is not capped
    np.testing.assert_allclose(np.concatenate([c.score[0] for c in blocks]), want, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(np.concatenate([c.holding[0] for c in blocks]), holding)


def test_a_raw_score_equal_to_the_record_scores_one_in_memory() -> None:
    cal = RecordCalibration(memory=1000, min_samples=1)
    score = cal.update(cal.new_state(1), np.array([0]), np.array([[2.0, 2.0]])).score
    assert score[0, 1] == pytest.approx(1 - 1 / 1000)


def test_edge_is_where_the_score_meets_the_threshold() -> None:
    rng = np.random.default_rng(4)
    raw = rng.exponential(size=(3, 5000))
    cal = RecordCalibration(threshold=0.99996, memory=10_000)
    c = cal.update(cal.new_state(3), np.arange(3), raw)
    score, up, down = c.score, c.edge_above, c.edge_below
    ok = ~np.isnan(score)
    assert ((score[ok] >= 0) & (score[ok] <= 1)).all()
    assert (up[ok] == down[ok]).all()  # one record when not sided
    assert ((score >= 0.99996) == (raw >= up))[ok].all()


@pytest.mark.parametrize("noise", ["normal", "laplace", "student-t-2", "pareto-1.5"])
def test_false_alarms_on_noise_are_rare_whatever_the_tail(noise: str) -> None:
    rng = np.random.default_rng(12)
    shape = (20, 20_000)
    raw = {
        "normal": lambda: np.abs(rng.normal(size=shape)),
        "laplace": lambda: np.abs(rng.laplace(size=shape)),
        "student-t-2": lambda: np.abs(rng.standard_t(2, size=shape)),
        "pareto-1.5": lambda: rng.pareto(1.5, size=shape),
    }[noise]()
    cal = RecordCalibration(memory=10_000)
    score = cal.update(cal.new_state(20), np.arange(20), raw).score
    # 10 % past a record that shrinks by e every 10^4 samples: about once in 1,700 samples on
    # Gaussian noise, no more often on heavy tails, since the record scales with the tail
    assert np.mean(score[:, 1000:] >= 0.99996) < 1e-3


def test_a_six_sigma_spike_on_gaussian_noise_crosses_the_threshold() -> None:
    rng = np.random.default_rng(13)
    raw = np.abs(rng.normal(size=(50, 3000)))
    raw[:, -1] = 6.0
    cal = RecordCalibration(memory=10_000)
    score = cal.update(cal.new_state(50), np.arange(50), raw).score
    assert (score[:, -1] >= 0.99996).all()


def test_a_recurring_deviation_stops_scoring_and_an_old_record_fades() -> None:
    rng = np.random.default_rng(8)
    cal = RecordCalibration(memory=1000)
    st = cal.new_state(1)
    calm = np.abs(rng.normal(size=(1, 2000)))
    cal.update(st, np.array([0]), calm)
    first = cal.update(st, np.array([0]), np.full((1, 1), 50.0)).score
    again = cal.update(st, np.array([0]), np.concatenate([calm[:, :100], [[50.0]]], axis=1)).score
    assert first[0, 0] >= 0.99996 and again[0, -1] < 0.99996
    # three memories later the record of 50 has shrunk to about 2.5: 10 is new again
    cal.update(st, np.array([0]), np.abs(rng.normal(size=(1, 3000))))
    later = cal.update(st, np.array([0]), np.full((1, 1), 10.0)).score
    assert later[0, 0] >= 0.99996


def test_the_same_incident_alerts_twice_then_is_normal() -> None:
    rng = np.random.default_rng(9)
    cal = RecordCalibration(memory=10_000)
    st = cal.new_state(1)
    cal.update(st, np.array([0]), np.abs(rng.normal(size=(1, 1000))))
    peaks = []
    for _ in range(4):
        calm = np.abs(rng.normal(size=(1, 200)))
        score = cal.update(st, np.array([0]), np.concatenate([[[30.0]], calm], axis=1)).score
        peaks.append(score[0, 0])
    assert [p >= 0.99996 for p in peaks] == [True, True, False, False]


def test_a_spike_every_few_samples_is_held_a_while_then_learned() -> None:
    rng = np.random.default_rng(10)
    raw = np.abs(rng.normal(size=3000))
    raw[1000::5] = 40.0  # from sample 1000 on, a spike every 5 samples: a new pattern
    cal = RecordCalibration(memory=10_000, hold=10)
    c = cal.update(cal.new_state(1), np.array([0]), raw[None])
    spikes = c.score[0, 1000::5]
    assert spikes[0] >= 0.99996 and c.holding[0, 1000:1050].all()  # held as one incident...
    assert not c.holding[0, 1200:].any() and (spikes[40:] < 0.99996).all()  # ...for at most 5 holds, then learned


def test_sided_records_let_a_first_dip_alert_on_a_series_that_spikes_up() -> None:
    rng = np.random.default_rng(5)
    raw = np.abs(rng.normal(size=2001))
    below = np.zeros(2001, dtype=bool)
    raw[::100] = 10.0  # regular spikes above
    raw[-1], below[-1] = 4.0, True  # the first dip
    scores = {}
    for sided in (False, True):
        cal = RecordCalibration(memory=10_000, sided=sided)
        c = cal.update(cal.new_state(1), np.array([0]), raw[None], below[None])
        score, up, down = c.score, c.edge_above, c.edge_below
        scores[sided] = score[0, -1]
        assert (up[0, -1] > down[0, -1]) == sided
    assert scores[True] >= 0.99996 > scores[False]


def test_constant_raw_scores_never_cross_and_the_first_move_of_a_flat_series_does() -> None:
    cal = RecordCalibration(memory=10_000, min_samples=5)
    score = cal.update(cal.new_state(1), np.array([0]), np.zeros((1, 100))).score
    assert np.isnan(score[0, :5]).all() and (score[0, 5:] == 0).all()
    st = cal.new_state(1)
    score = cal.update(st, np.array([0]), np.r_[np.zeros(50), 1e-6][None]).score
    assert score[0, -1] == 1.0


def test_the_prior_keeps_the_first_ordinary_deviations_from_being_records() -> None:
    rng = np.random.default_rng(6)
    raw = np.abs(rng.normal(size=(200, 300)))
    alarms = {}
    gaussian = null_quantile(lambda x: erf(x / math.sqrt(2)), 1 - 1 / 10000)  # |z| seen once in 10^4
    for prior in (0.0, gaussian):
        cal = RecordCalibration(memory=10_000, prior=prior)
        score = cal.update(cal.new_state(200), np.arange(200), raw).score
        alarms[prior > 0] = np.mean(score >= 0.99996)
    assert alarms[True] < 1e-3 < alarms[False]


def test_band_calibration_crosses_the_threshold_at_the_band() -> None:
    cal = BandCalibration(threshold=0.999)
    c = cal.update(cal.new_state(1), np.array([0]), np.array([[0.5, 1.0, 2.0, np.nan]]))
    score, up, down = c.score, c.edge_above, c.edge_below
    assert score[0, 0] < 0.999 and score[0, 1] == pytest.approx(0.999) and score[0, 2] > 0.999
    assert np.isnan(score[0, 3]) and up[0, 0] == down[0, 0] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"threshold": 1.0}, "threshold"), ({"threshold": 0}, "threshold"), ({"memory": 1}, "memory"),
     ({"steepness": 0}, "steepness"), ({"min_samples": 0}, "min_samples"), ({"prior": -1.0}, "prior"),
     ({"memory": 2.5}, "memory"), ({"hold": -1}, "hold"), ({"learn": 0}, "learn"), ({"learn": 1.5}, "learn")],
)
def test_bad_parameters_are_refused_with_their_name(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        RecordCalibration(**kwargs)  # type: ignore[arg-type]


# -- what `Calibration` promises, for both --------------------------------------------------

CALIBRATIONS = [
    pytest.param(lambda: RecordCalibration(memory=200, min_samples=10, sided=True, hold=5), id="record"),
    pytest.param(lambda: BandCalibration(threshold=0.999), id="band"),
    pytest.param(lambda: TailCalibration(threshold=0.9999, memory=200, min_samples=10, sided=True), id="tail"),
]


@pytest.mark.parametrize("make", CALIBRATIONS)
def test_a_raw_score_on_the_edge_scores_the_threshold_on_its_side(make: Callable[[], Calibration]) -> None:
    """Each sample's edge, put in its place against the same history, scores exactly the threshold."""
    rng = np.random.default_rng(8)
    raw = np.abs(rng.standard_t(3, (2, 400)))
    below = rng.random((2, 400)) < 0.5
    cal = make()
    c = cal.update(cal.new_state(2), np.arange(2), raw, below)
    edge = np.where(below, c.edge_below, c.edge_above)
    assert (c.edge_above != c.edge_below)[:, 50:].any() == (not isinstance(cal, BandCalibration))  # sided: two edges
    for j in range(20, 400, 23):
        again = raw[:, : j + 1].copy()
        again[:, j] = edge[:, j]
        fresh = make()
        score = fresh.update(fresh.new_state(2), np.arange(2), again, below[:, : j + 1]).score[:, j]
        # the tail keeps its fit and edges in float32 (of the series' state): exact to its precision
        rtol = 1e-6 if isinstance(cal, TailCalibration) else 1e-9
        np.testing.assert_allclose(-np.log10(1 - score), -math.log10(1 - cal.threshold), rtol=rtol)


@pytest.mark.parametrize("make", CALIBRATIONS)
def test_a_nan_raw_score_has_no_score_and_is_not_learned(make: Callable[[], Calibration]) -> None:
    cal = make()
    state = cal.new_state(2)
    cal.update(state, np.arange(2), np.abs(np.random.default_rng(2).normal(size=(2, 100))))
    before = state.to_bytes()
    c = cal.update(state, np.arange(2), np.full((2, 5), np.nan), np.zeros((2, 5), dtype=bool))
    assert np.isnan(c.score).all() and np.isnan(c.edge_above).all() and np.isnan(c.edge_below).all()
    assert not c.holding.any()
    assert state.to_bytes() == before
