"""Pipeline: detectors -> calibration -> combination -> hold -> decision, for many series at once.

A `Pipeline` owns the state of every series it has seen (one row each) and advances all of
it with one `update(rows, t, x)` call per block of new samples. With several member
detectors (the default ensemble), each member's raw score is calibrated on its own, the
anomaly score is the highest member score, and the band is the narrowest the members
agree on, so a sample is anomalous when it is outside any member's calibrated band.

Each member's score counts only where its own deviation passes the decision's gates
(`vigil.detection.gates`); the band of a series never seen below 0 is clipped at 0
(`vigil.detection.clip`).

Hold: for `hold` samples (at most `HOLD_LONGEST` seconds) after a sample scores at or
above `HOLD_LEVEL`, the series' scores are capped at that level. An incident that keeps
growing (a ramp, a burst) is then one detection in the score, as it is one event, which
does not resolve while the hold (or a member calibration's own) lasts. A sample far worse
than the incident going on (two decades of surprise past its peak) escalates: a new
detection, and a new event. Before the hold, a deviation people marked "not an incident"
on a series (`Pipeline.accept`, `vigil.detection.acceptance`) is kept below the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from vigil.detection import acceptance
from vigil.detection.acceptance import Acceptance
from vigil.detection.cadence import Cadence
from vigil.detection.calibration import ESCALATION, BandCalibration, Calibration, RecordCalibration, null_quantile
from vigil.detection.clip import clip_at_zero
from vigil.detection.decision import Decision, DecisionConfig, Event
from vigil.detection.detectors import DEFAULT_MEMBERS, build_detector
from vigil.detection.detectors.base import Detector
from vigil.detection.gates import gate_members, gate_resolution
from vigil.detection.settings import DEFAULT_THRESHOLD, DEFAULTS, CalibrationKind, Settings
from vigil.detection.tail import TailCalibration
from vigil.errors import ConfigError, StateError
from vigil.snapshot import count, entry, from_blob, refuse, to_blob
from vigil.state import Field, FloatArray, RowState

__all__ = ["HOLD_LEVEL", "HOLD_LONGEST", "Pipeline", "Result", "build_pipeline", "pipeline_from"]

_FORMAT = 7  # 6 and before: the state of an earlier Vigil (wider); refused, and the series relearn

# The score from which a sample starts a hold; the default threshold. Fixed, so that
# scores never depend on the configured threshold.
HOLD_LEVEL = DEFAULT_THRESHOLD
# The longest hold in time: on an hourly series, 20 samples would hold the next day's incident
HOLD_LONGEST = 3600.0


@dataclass(frozen=True)
class Result:
    """Per-sample outputs of one `Pipeline.update`, each shaped (len(rows), steps)."""

    score: FloatArray  # anomaly score in [0, 1], NaN = no opinion
    expected: FloatArray
    lower: FloatArray
    upper: FloatArray
    hot: np.ndarray  # score over the threshold and gates passed
    anomalous: np.ndarray  # an event is open on the series after this sample
    opened: np.ndarray  # an event opened at this sample
    warming_up: np.ndarray  # no member has an opinion yet on a valid sample
    invalid: np.ndarray  # the sample was NaN, infinite or outside the valid range
    holding: np.ndarray  # the sample is in a hold: the incident of a detection just before goes on
    escalated: np.ndarray  # the sample went far past the incident going on: a new one
    members: dict[str, FloatArray]  # each member's calibrated score
    events: list[Event]


class Pipeline:
    """Detectors, calibration and decision with their per-series state.

    Parameters
    ----------
    members
        ``(name, detector)`` pairs; one pair for a single detector.
    settings
        Everything else (`vigil.detection.settings.Settings`; `build_pipeline` makes the
        members from its `detector` and `params`, which the pipeline itself does not read):

        - `decision`: when scores become events;
        - `calibrate`: True, tail calibration of each member's raw scores; False, each
          detector's own band decides (a sample outside it scores above the threshold);
        - `valid_range`: ``(low, high)``; samples outside it are impossible readings,
          neither learned nor scored, and reported in `Result.invalid`;
        - `calibration_window`, `calibration_min_samples`: memory of the record
          calibration in samples, and raw scores it learns before its first score;
        - `hold`: samples after a sample scoring `HOLD_LEVEL` or more during which the
          series' score is capped at that level (0: never; never without calibration).
    """

    def __init__(self, members: list[tuple[str, Detector]], settings: Settings = DEFAULTS) -> None:
        if not members:
            raise ConfigError("a pipeline needs at least one detector")
        names = [name for name, _ in members]
        if len(set(names)) != len(names):
            raise ConfigError(f"detector names must be unique, got {names}")
        valid_range, hold = settings.valid_range, settings.hold
        if valid_range is not None and not valid_range[0] < valid_range[1]:
            raise ConfigError(f"valid_range is {list(valid_range)}; write [low, high] with low < high")
        self.settings = settings
        self.members = list(members)
        self.decision = Decision(settings.decision, names)
        if int(hold) != hold or hold < 0:
            raise ConfigError(f"hold is {hold!r}; write a whole number of samples >= 0")
        self.calibrations: list[Calibration] = [self._calibration(det, settings) for _, det in members]
        self.tail = settings.calibrate and settings.calibration == "tail"
        if not (math.isfinite(settings.false_alarms) and settings.false_alarms > 0):
            raise ConfigError(f"false_alarms is {settings.false_alarms!r}; write a rate such as 1/month")
        self.cadence = Cadence()
        self.hold = int(hold) if settings.calibrate else 0  # a detector's own band decides alone
        self.valid_range = valid_range
        self.n_rows = 0
        self.detector_states = [d.new_state(0) for _, d in members]
        self.calibration_states = [c.new_state(0) for c in self.calibrations]
        self.hold_state = RowState({"left": Field((), np.int32, 0), "peak": Field((), np.float32, 0.0)}, 0)
        self.decision_state = self.decision.new_state(0)
        self.cadence_state = self.cadence.new_state(0)
        self.range_state = RowState({"below": Field((), np.bool_, False)}, 0)  # a value below 0 was seen
        # what people said was not an incident: rebuilt from their feedback, so not in the snapshot
        self.accepted = acceptance.new_state(0)

    @staticmethod
    def _calibration(det: Detector, settings: Settings) -> Calibration:
        threshold = settings.decision.threshold
        if not settings.calibrate:
            return BandCalibration(threshold=threshold)
        if settings.calibration == "tail":
            return TailCalibration(
                threshold=threshold, sided=det.sided, memory=settings.calibration_window,
                min_samples=settings.calibration_min_samples, level=HOLD_LEVEL,
                hold=settings.hold if det.per_sample else 0,
            )
        return RecordCalibration(
            threshold=threshold, memory=settings.calibration_window, min_samples=settings.calibration_min_samples,
            prior=_null_record(det), sided=det.sided, hold=settings.hold if det.per_sample else 0, level=HOLD_LEVEL,
        )

    def _states(self) -> list[RowState]:
        return [*self.detector_states, *self.calibration_states, self.hold_state, self.decision_state,
                self.cadence_state, self.range_state]

    def model_states(self) -> list[RowState]:
        """The states that learn from samples: all but the decision's (which events are open)."""
        return [st for st in self._states() if st is not self.decision_state]

    def resize(self, n_rows: int) -> None:
        """Make room for `n_rows` series; new rows start cold."""
        for st in self._states():
            st.resize(n_rows)
        self.accepted.resize(n_rows)
        self.n_rows = n_rows

    def reset(self, rows: np.ndarray) -> None:
        """Forget rows (a series vanished and its row will be reused)."""
        for st in self._states():
            st.reset(rows)
        self.accepted.reset(rows)

    def accept(self, row: int, accepted: Acceptance | None) -> None:
        """Keep below the threshold, on series `row`, deviations up to `accepted` (None: none)."""
        acceptance.put(self.accepted, row, accepted)

    def update(self, rows: np.ndarray, t: FloatArray, x: FloatArray) -> Result:
        """Score and learn a block: `x[i, j]` is the j-th new sample of series `rows[i]`.

        `rows` must be distinct and below `n_rows`; `t` (any increasing time unit) has
        shape (len(rows), steps) and `x` the same, or (len(rows), steps, d) for a
        multivariate series (only for detectors that accept it, such as ``iforest``).
        NaN in `x` is a missing sample; a multivariate sample is invalid when any of its
        components is NaN, infinite or outside the valid range. The first component is
        the observed value that the decision and the outputs use.
        """
        rows = np.asarray(rows, dtype=np.intp)
        x = np.asarray(x, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        if x.ndim not in (2, 3) or x.shape[0] != rows.shape[0] or t.shape != x.shape[:2]:
            raise ValueError(
                f"rows {rows.shape}, t {t.shape} and x {x.shape} do not fit (rows, steps) or (rows, steps, d)"
            )
        if rows.size and (rows.max() >= self.n_rows or rows.min() < 0):
            raise ValueError(f"rows must be in [0, {self.n_rows}); call resize first")
        invalid = ~np.isfinite(x)
        if self.valid_range is not None:
            with np.errstate(invalid="ignore"):
                invalid |= (x < self.valid_range[0]) | (x > self.valid_range[1])
        if x.ndim == 3:
            invalid = np.asarray(invalid.any(axis=2))
            x = np.where(invalid[..., None], np.nan, x)
            observed = x[..., 0]
        else:
            x = observed = np.where(invalid, np.nan, x)

        resolution = self.cadence.update(self.cadence_state, rows, t, observed)
        step = self.cadence_state["step"][rows].astype(np.float64)
        interval = np.where(step > 0, step, 1.0)
        # the budget per sample of each member: its share of one false alarm per `false_alarms` seconds
        budget = interval / self.settings.false_alarms / len(self.members)
        # a hold is `hold` samples, at most `HOLD_LONGEST` seconds of the series' own step
        holds = np.minimum(self.hold, np.maximum(1, np.round(HOLD_LONGEST / interval))).astype(np.int64)
        shape = (len(self.members), *observed.shape)
        scores, expected, lower, upper = (np.full(shape, np.nan) for _ in range(4))
        holding = np.zeros(observed.shape, dtype=np.bool_)  # the sample is in a hold: its incident goes on
        surprise = np.full(observed.shape, np.nan)
        for m, ((name, det), cal) in enumerate(zip(self.members, self.calibrations, strict=True)):
            try:
                s = det.update(self.detector_states[m], rows, x, t)
            except ValueError as exc:
                if x.ndim != 3:
                    raise
                raise ConfigError(
                    f"detector {name} does not take samples of {x.shape[2]} values ({exc}); "
                    "use a multivariate detector (iforest with features=raw), or one value per sample"
                ) from exc
            with np.errstate(invalid="ignore"):
                below = observed < s.expected  # False where there is no expected value
            if isinstance(cal, TailCalibration):
                c = cal.update(self.calibration_states[m], rows, s.raw, below, budget, holds)
            else:
                c = cal.update(self.calibration_states[m], rows, s.raw, below, budget)
            scores[m] = c.score
            holding |= c.holding
            surprise = np.fmax(surprise, c.surprise)
            # a member shows an expected value and band only once it gives a score
            expected[m] = np.where(np.isnan(c.score), np.nan, s.expected)
            lower[m] = expected[m] - c.edge_below * (s.expected - s.lower)
            upper[m] = expected[m] + c.edge_above * (s.upper - s.expected)

        scores = gate_members(self.decision.config, observed, expected, scores)
        with np.errstate(invalid="ignore"):
            # fmax/fmin skip NaN like nanmax/nanmin, without warning on an all-NaN column
            score = np.fmax.reduce(scores, axis=0)
        with np.errstate(invalid="ignore"):
            has_band = ~np.isnan(expected)
            primary = np.argmax(has_band, axis=0)
            exp = np.take_along_axis(expected, primary[None], axis=0)[0]
            lo = np.minimum(np.fmax.reduce(lower, axis=0), exp)
            hi = np.maximum(np.fmin.reduce(upper, axis=0), exp)
        if self.tail:
            score = gate_resolution(self.decision.config.threshold, observed, exp, resolution, score)
        exp, lo, hi = clip_at_zero(self.range_state["below"], rows, observed, exp, lo, hi)
        score = acceptance.gate(self.accepted, rows, observed, exp, lo, hi, score, self.decision.config.threshold)
        escalated = np.zeros(observed.shape, dtype=np.bool_)  # much worse than the incident going on
        if self.hold:
            score = _hold(rows, score, surprise, self.hold_state["left"], self.hold_state["peak"], holds,
                          HOLD_LEVEL, holding, escalated)
        # a member with no opinion yet (seasonal in its first season) leaves the series to the others
        warming = ~invalid & np.isnan(scores).all(axis=0)

        hot, anomalous, opened, events = self.decision.update(
            self.decision_state, rows, t, observed, score, exp, lo, hi, scores, holding, escalated
        )
        return Result(
            score=score, expected=exp, lower=lo, upper=hi, hot=hot, anomalous=anomalous, opened=opened,
            warming_up=warming, invalid=invalid, holding=holding, escalated=escalated,
            members={name: scores[m] for m, (name, _) in enumerate(self.members)}, events=events,
        )

    def open_events(self) -> list[Event]:
        return self.decision.open_events(self.decision_state)

    def payload(self) -> dict[str, Any]:
        """All per-series state as a payload tree; `load` on an equal pipeline continues exactly."""
        return {
            "format": _FORMAT,
            "members": [(name, type(d).__name__, d.params()) for name, d in self.members],
            "n_rows": self.n_rows,
            "states": [st.payload() for st in self._states()],
        }

    def load(self, payload: Any) -> None:
        """Take the state of `payload` (a `payload()` decoded); StateError, and nothing changed, if it does not fit."""
        what = "pipeline state"
        if entry(payload, "format", int, what) != _FORMAT:
            made = ": made by an earlier version of Vigil" if payload["format"] < _FORMAT else ""
            raise refuse(what, f"pipeline format {payload['format']!r}, not {_FORMAT}{made}")
        mine = [(name, type(d).__name__, d.params()) for name, d in self.members]
        try:
            differ = bool(entry(payload, "members", list, what) != mine)
        except ValueError:  # an array where a parameter belongs
            differ = True
        if differ:
            raise StateError(
                f"saved state was made by detectors {payload['members']}, not {mine}; "
                "delete the state to relearn with the new settings"
            )
        n_rows = count(payload, "n_rows", what)
        saved = entry(payload, "states", list, what)
        if len(saved) != len(self._states()):
            raise refuse(what, f"it has {len(saved)} states, not {len(self._states())}")
        n = len(self.members)
        # a detector rebuilds its own states: it knows how their objects are saved
        states = [det.load_state(p) for (_, det), p in zip(self.members, saved[:n], strict=True)]
        for p, old in zip(saved[n:], self._states()[n:], strict=True):
            st = RowState.from_payload(p)
            st.check_fields(old.fields, "the pipeline")
            states.append(st)
        if any(st.n_rows != n_rows for st in states):
            raise refuse(what, f"its states do not all have its {n_rows} rows")
        self.detector_states = states[:n]
        self.calibration_states = states[n : 2 * n]
        self.hold_state = states[2 * n]
        self.decision_state = states[2 * n + 1]
        self.cadence_state = states[2 * n + 2]
        self.range_state = states[2 * n + 3]
        self.n_rows = n_rows
        self.accepted = acceptance.new_state(n_rows)  # its owner puts back what people accepted

    def snapshot(self) -> bytes:
        return to_blob(self.payload())

    def restore(self, data: bytes) -> None:
        self.load(from_blob(data, "pipeline state"))


# The record a new series starts with, as a deviation of Gaussian noise in sigmas.
PRIOR_SIGMAS = 4.0


def _null_record(det: Detector) -> float:
    """The record a series starts with: the raw score the detector gives, on Gaussian noise,
    as rarely as a 4-sigma deviation (0 when the detector does not say). A new series then
    alerts on what would stand out even for well-behaved noise (past 4.4 sigma at the
    default threshold) until its own history sets the scale, and its first rise or fall of
    a daily cycle is not each time a new record."""
    cdf = det.null_raw_cdf
    return null_quantile(cdf, math.erf(PRIOR_SIGMAS / math.sqrt(2.0))) if cdf is not None else 0.0


@njit(cache=True, nogil=True)
def _hold(rows, score, surprise, left, peak, holds, level, holding, escalated):  # type: ignore[no-untyped-def]
    """Cap scores at `level` for `hold` samples after one reaches it. A sample that goes
    `ESCALATION` decades of surprise past the peak of the incident going on (a hold here or
    in a member's calibration, marked in `holding`) is marked `escalated`: a new detection,
    with a new hold. Samples of a hold are marked in `holding`."""
    out = score.copy()
    for i in range(rows.shape[0]):
        r = rows[i]
        hold = holds[i]
        k = left[r]
        for j in range(score.shape[1]):
            s = score[i, j]
            if math.isnan(s):
                continue
            ongoing = k > 0 or holding[i, j]
            if not ongoing:
                peak[r] = 0.0
            if ongoing and surprise[i, j] >= peak[r] + ESCALATION:
                k, peak[r] = hold, surprise[i, j]
                escalated[i, j] = True
            elif k > 0:
                out[i, j] = min(s, level)
                k -= 1
            elif s >= level:
                k, peak[r] = hold, max(peak[r], surprise[i, j])
            holding[i, j] = holding[i, j] or k > 0
        left[r] = k
    return out


def build_pipeline(
    detector: str = DEFAULTS.detector,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    decision: DecisionConfig = DEFAULTS.decision,
    calibrate: bool = DEFAULTS.calibrate,
    calibration: CalibrationKind = DEFAULTS.calibration,
    false_alarms: float = DEFAULTS.false_alarms,
    valid_range: tuple[float, float] | None = DEFAULTS.valid_range,
    calibration_window: int = DEFAULTS.calibration_window,
    calibration_min_samples: int = DEFAULTS.calibration_min_samples,
    hold: int = DEFAULTS.hold,
) -> Pipeline:
    """`pipeline_from` the `Settings` these arguments make; each one not given is the default."""
    return pipeline_from(Settings(
        detector=detector, params=dict(params or {}), calibrate=calibrate, calibration=calibration,
        false_alarms=false_alarms, calibration_window=calibration_window,
        calibration_min_samples=calibration_min_samples, hold=hold, decision=decision, valid_range=valid_range,
    ))


def pipeline_from(settings: Settings = DEFAULTS) -> Pipeline:
    """A pipeline for `settings.detector`; `settings.params` maps a detector name to its parameters.

    ``default`` and ``ensemble`` combine the detectors in `DEFAULT_MEMBERS`; any other
    name runs that detector alone.
    """
    detector, params = settings.detector, settings.params
    names = list(DEFAULT_MEMBERS) if detector in ("default", "ensemble") else [detector]
    unused = sorted(set(params) - set(names))
    if unused:
        raise ConfigError(f"parameters given for {', '.join(unused)}, which detector {detector!r} does not use")
    members = [(name, build_detector(name, dict(params.get(name) or {}))) for name in names]
    return Pipeline(members, settings)
