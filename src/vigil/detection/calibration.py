"""Calibration: a detector's raw score -> an anomaly score in [0, 1], per series.

`RecordCalibration` compares each raw score with the largest raw score the series has had
lately, its *record*, which shrinks by a factor ``1 - 1/memory`` per sample (a record set
`memory` samples ago counts for about a third of its size):

    score = 1 - (raw / record) ** -steepness / memory

A raw score as large as the record scores ``1 - 1/memory`` (0.9999 by default), one 10 %
larger scores about 0.99996, the default threshold; ordinary samples, well inside the
record, score near 0. The series' own history sets the scale, so one threshold means the
same for a quiet and a noisy series, a light and a heavy tail, and every detector, and
scores of several detectors can be combined. A deviation that keeps coming back raises
the record and stops scoring high: what is new is what goes past everything seen lately.

`BandCalibration` keeps a detector's own rule: ``score = threshold ** (1 / raw)``, which
crosses the threshold exactly when the sample leaves the detector's band (raw = 1).

Both follow `Calibration`: they return, with the score, ``edge``: for each side (above
and below the expected value) the raw score at which the score equals the threshold, so
the caller can draw the band that the decision actually uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numba import njit

from vigil.detection.settings import DEFAULT_THRESHOLD, DEFAULTS, check_threshold
from vigil.errors import ConfigError
from vigil.state import Field, FloatArray, RowState

__all__ = [
    "DEFAULT_THRESHOLD", "BandCalibration", "Calibrated", "Calibration", "RecordCalibration", "check_threshold",
    "null_quantile",
]


@dataclass(frozen=True)
class Calibrated:
    """What a calibration gives for a block of raw scores, each shaped like it.

    `edge_above` and `edge_below` are the raw scores at which the score meets the
    threshold, above and below the expected value; `holding` marks samples in a hold (an
    incident that goes on); `surprise` is ``-log10(1 - score)`` without the rounding of
    a score near 1, so that the largest deviations still compare.
    """

    score: FloatArray
    edge_above: FloatArray
    edge_below: FloatArray
    holding: np.ndarray
    surprise: FloatArray


class Calibration(Protocol):
    """Raw scores -> anomaly scores in [0, 1] for many series, the state in a `RowState`.

    `update` scores each raw score of the block (shaped (len(rows), steps)) against what
    its row learned before it, then learns it; NaN is no opinion: a NaN score, nothing
    learned. `below` marks the samples under the detector's expected value (None: not
    known), for a calibration that keeps the two sides apart. `budget` is, per row, the
    probability per sample of a false alarm it may spend (the tail calibration's; the
    others take it and do not use it).

    Edge: `Calibrated.edge_above` and `edge_below` are, per sample, the raw score at which
    that sample would have scored exactly `threshold` on that side, against the same
    state. A detector's band of half-width ``h`` widens to ``edge * h``: the band a
    pipeline shows is the one its decision uses.
    """

    @property
    def threshold(self) -> float: ...

    def fields(self) -> dict[str, Field]: ...

    def new_state(self, n_rows: int = 0) -> RowState: ...

    def update(
        self, state: RowState, rows: np.ndarray, raw: FloatArray, below: np.ndarray | None = None,
        budget: FloatArray | None = None,
    ) -> Calibrated: ...


def null_quantile(cdf: Callable[[np.ndarray], np.ndarray], p: float) -> float:
    """The raw score below which a fraction `p` of a detector's raw scores fall on Gaussian noise.

    >>> from vigil.detection.detectors.base import erf
    >>> round(null_quantile(lambda x: erf(x / math.sqrt(2)), 0.9999), 2)  # |z| beyond 3.89 once in 10^4
    3.89
    """
    lo, hi = 1e-9, 1e9
    for _ in range(200):  # bisection in log space
        mid = math.sqrt(lo * hi)
        if float(np.asarray(cdf(np.array([mid])))[0]) < p:
            lo = mid
        else:
            hi = mid
    return hi


class RecordCalibration:
    """How far a raw score goes past the series' largest recent raw score.

    Parameters
    ----------
    threshold
        The anomaly threshold; used to compute `edge`.
    memory
        Samples over which a record shrinks by a factor e; also sets the score of a raw
        score equal to the record, ``1 - 1/memory``.
    steepness
        How fast the score rises past the record: at ``raw = c * record`` the score is
        ``1 - c ** -steepness / memory``.
    min_samples
        Raw scores learned before a score is given (NaN until then).
    prior
        The record every series starts with (the pipeline passes the raw score of a
        4-sigma deviation on Gaussian noise), so that in a short history the first
        ordinary deviations are not each a new record.
    sided
        Keep one record for samples above the expected value and one for those below, so
        that a series that often spikes up still alerts on its first dip.
    hold, level
        After a raw score scores `level` or more, the samples that follow are scored
        against the records from before it, capped at `level`, until `hold` samples in a
        row score below it (or 5 times `hold` samples have passed), unless one goes two
        decades of surprise past the incident's peak (a new detection): the rest of an
        incident (the second sample of a plateau, a new level until the baseline has
        moved) stays at the level instead of being measured against the incident itself,
        and does not score above it again. For detectors whose raw score is of one
        sample; one of a window of samples (`shift`) would stay high for as long as the
        incident is in its window.
    learn
        When the hold ends, the record rises by this share of the way to the incident's
        peak: with 0.8 the same incident again scores 1.25 times the record and alerts,
        a third time it is about the record and does not (1: once is enough).

    Cost: a few operations per sample and ten numbers (80 bytes) per series.

    Examples
    --------
    >>> import numpy as np
    >>> cal = RecordCalibration(memory=10000, min_samples=1, hold=0); st = cal.new_state(1)
    >>> raw = np.array([[1.0, 2.0, 1.5, 2.0, 2.5, 0.5]])
    >>> c = cal.update(st, np.array([0]), raw)
    >>> c.score.round(6).tolist()
    [[nan, 1.0, 0.998224, 0.9999, 0.999989, 0.0]]
    >>> bool(c.edge_above[0, 2] == c.edge_below[0, 2]), round(float(c.edge_above[0, 2]) / 2.0, 4)  # 10 % past
    (True, 1.0959)

    With a hold, what follows a detection is measured against the records of before it:

    >>> cal = RecordCalibration(memory=10000, min_samples=1, hold=3); st = cal.new_state(1)
    >>> cal.update(st, np.array([0]), raw).score.round(6).tolist()
    [[nan, 1.0, 0.99996, 0.99996, 0.99996, 0.8976]]
    """

    def __init__(
        self,
        threshold: float = DEFAULTS.decision.threshold,
        memory: int = DEFAULTS.calibration_window,
        steepness: float = 10.0,
        min_samples: int = DEFAULTS.calibration_min_samples,
        prior: float = 0.0,
        sided: bool = False,
        hold: int = DEFAULTS.hold,
        level: float = DEFAULT_THRESHOLD,
        learn: float = 0.8,
    ) -> None:
        self.threshold = check_threshold(threshold)
        if int(memory) != memory or memory < 2:
            raise ConfigError(f"calibration: memory is {memory!r}; write a whole number >= 2")
        if not (math.isfinite(steepness) and steepness > 0):
            raise ConfigError(f"calibration: steepness is {steepness!r}; write a number > 0")
        if int(min_samples) != min_samples or min_samples < 1:
            raise ConfigError(f"calibration: min_samples is {min_samples!r}; write a whole number >= 1")
        if not (math.isfinite(prior) and prior >= 0):
            raise ConfigError(f"calibration: prior is {prior!r}; write a raw score >= 0")
        self.memory = int(memory)
        self.steepness = float(steepness)
        self.min_samples = int(min_samples)
        if int(hold) != hold or hold < 0:
            raise ConfigError(f"calibration: hold is {hold!r}; write a whole number of samples >= 0")
        self.prior = float(prior)
        self.sided = bool(sided)
        if not 0 < learn <= 1:
            raise ConfigError(f"calibration: learn is {learn!r}; write a share in (0, 1]")
        self.hold = int(hold)
        self.level = check_threshold(level)
        self.learn = float(learn)

    def fields(self) -> dict[str, Field]:
        return {
            "n": Field((), np.int64, 0),
            "record": Field((2,), np.float64, self.prior),  # above (or either side), below
            "before": Field((2,), np.float64, np.nan),  # the records when the hold began
            "peak": Field((2,), np.float64, 0.0),  # the largest raw scores of the incident, per side
            "peak_lp": Field((), np.float64, 0.0),  # the largest surprise of the incident
            "left": Field((), np.int64, 0),  # samples of the hold still to come
            "age": Field((), np.int64, 0),  # samples since the hold began
        }

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def edge_factor(self) -> float:
        """The raw score, as a multiple of the record, that scores exactly the threshold."""
        lp = -math.log10(1.0 - self.threshold)
        return float(10.0 ** ((lp - math.log10(self.memory)) / self.steepness))

    def update(
        self, state: RowState, rows: np.ndarray, raw: FloatArray, below: np.ndarray | None = None,
        budget: FloatArray | None = None,
    ) -> Calibrated:
        """Score and learn a block of raw scores; `below` marks samples under the expected value."""
        raw = np.ascontiguousarray(raw, dtype=np.float64)
        side = np.zeros(raw.shape, dtype=np.bool_) if below is None or not self.sided else below
        out = np.full((5, *raw.shape), np.nan)
        _records(
            np.ascontiguousarray(rows, dtype=np.intp), raw, np.ascontiguousarray(side, dtype=np.bool_),
            state["n"], state["record"], state["before"], state["peak"], state["peak_lp"], state["left"], state["age"],
            1.0 - 1.0 / self.memory,
            self.min_samples, math.log10(self.memory), self.steepness, self.edge_factor(), self.sided, self.hold,
            self.level, self.learn, out,
        )
        return Calibrated(out[0], out[1], out[2], out[3] > 0, out[4])


# A hold that goes on with its incident ends at the latest this many times `hold` after it
# began: a pattern that keeps coming (a spike every few samples) is learned, not held forever.
_LONGEST = 5
# During a hold, a sample this many decades of surprise past the hold's peak (58 % further
# past the record) is a new detection, not more of the same: an incident that escalates
# says so instead of hiding in the hold.
ESCALATION = 2.0


@njit(cache=True, nogil=True)
def _records(rows, raw, below, n, record, before, peak, peak_lp, left, age, decay, min_samples, log_memory,  # type: ignore[no-untyped-def]
             steepness, edge, sided, hold, level, learn, out):
    level_lp = -math.log10(1.0 - level)
    for i in range(rows.shape[0]):
        r = rows[i]
        cnt, k, a = n[r], left[r], age[r]
        up, down = record[r, 0], record[r, 1]
        for j in range(raw.shape[1]):
            x = raw[i, j]
            if math.isnan(x):
                continue
            low = below[i, j]
            if cnt >= min_samples:
                ref_up, ref_down = (before[r, 0], before[r, 1]) if k > 0 else (up, down)
                top = ref_down if low else ref_up
                if x <= 0.0:
                    lp = 0.0
                elif top > 0.0:
                    lp = max(log_memory + steepness * math.log10(x / top), 0.0)
                else:
                    lp = math.inf
                capped = False
                if k > 0:
                    if lp >= peak_lp[r] + ESCALATION:  # worse than the incident so far: a new detection
                        k, a, peak_lp[r] = hold + 1, 0, lp
                    else:
                        if lp >= level_lp and a < _LONGEST * hold:  # the incident goes on: so does the hold
                            k = hold + 1
                        capped = lp >= level_lp
                elif lp >= level_lp and hold > 0:
                    k, a, peak_lp[r] = hold + 1, 0, lp  # this sample and the `hold` after it
                    before[r, 0], before[r, 1] = up, down
                    peak[r, 0], peak[r, 1] = 0.0, 0.0
                out[0, i, j] = level if capped else 1.0 - 10.0 ** -lp
                out[1, i, j] = edge * ref_up
                out[2, i, j] = edge * (ref_down if sided else ref_up)
                out[3, i, j] = k
                out[4, i, j] = level_lp if capped else lp
            up *= decay
            down *= decay
            if k > 0:  # an incident: its peak is learned, at `learn` of its height, when the hold ends
                side = 1 if low else 0
                peak[r, side] = max(peak[r, side], x)
                k -= 1
                a += 1
                if k == 0:
                    up = max(up, up + learn * (peak[r, 0] - up))
                    down = max(down, down + learn * (peak[r, 1] - down))
            elif low:
                down = max(down, x)
            else:
                up = max(up, x)
            cnt += 1
        n[r], left[r], age[r], record[r, 0], record[r, 1] = cnt, k, a, up, down


class BandCalibration:
    """The detector's own band decides: ``score = threshold ** (1 / raw)``.

    Examples
    --------
    >>> import numpy as np
    >>> cal = BandCalibration(threshold=0.99); st = cal.new_state(1)
    >>> c = cal.update(st, np.array([0]), np.array([[0.5, 1.0, 2.0]]))
    >>> c.score.round(4).tolist(), c.edge_above.tolist()
    ([[0.9801, 0.99, 0.995]], [[1.0, 1.0, 1.0]])
    """

    def __init__(self, threshold: float = DEFAULTS.decision.threshold) -> None:
        self.threshold = check_threshold(threshold)

    def fields(self) -> dict[str, Field]:
        return {}

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState({}, n_rows)

    def update(
        self, state: RowState, rows: np.ndarray, raw: FloatArray, below: np.ndarray | None = None,
        budget: FloatArray | None = None,
    ) -> Calibrated:
        with np.errstate(divide="ignore"):
            score = np.where(raw > 0, self.threshold ** (1.0 / np.where(raw > 0, raw, 1.0)), 0.0)
        score = np.where(np.isnan(raw), np.nan, score)
        edge = np.where(np.isnan(raw), np.nan, 1.0)
        with np.errstate(divide="ignore"):
            surprise = -np.log10(1.0 - score)
        return Calibrated(score, edge, edge, np.zeros(raw.shape, dtype=np.bool_), surprise)

