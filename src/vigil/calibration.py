"""Calibration: a detector's raw score -> an anomaly score in [0, 1], per series.

`TailCalibration` learns, per series, the distribution of that series' own raw scores
(an exponentially weighted histogram over log10 of the raw score) and reports
``score = 1 - P(raw score >= this one)``. Beyond the series' 98th percentile the tail is a
Pareto tail whose index is the Hill estimate from the raw scores above that percentile:
a series whose deviations are heavy-tailed (traffic, tweet counts) needs a much larger
deviation for the same score than one whose deviations are Gaussian. One threshold then
means about the same for every series and every detector, and scores of several
detectors can be combined.

`BandCalibration` keeps a detector's own rule: ``score = threshold ** (1 / raw)``, which
crosses the threshold exactly when the sample leaves the detector's band (raw = 1).

Both return, with the score, ``edge``: the raw score at which the score equals the
threshold, so the caller can draw the band that the decision actually uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numba import njit

from vigil.detectors.base import FloatArray
from vigil.errors import ConfigError
from vigil.state import Field, RowState

__all__ = ["BandCalibration", "Calibration", "TailCalibration", "check_threshold"]

# Histogram of log10(raw): bins of 0.1 decade from 1e-3 to 1e13; the end bins take the rest, so
# raw scores below 1e-3 (a series that has not moved) count as 1e-3.
_BINS = 160
_LOG_LOW = -3.0
_WIDTH = 0.1
_RESCALE = 1e20  # bins are float32
_LN10 = math.log(10.0)
# Mean of log10(|z| / u) over |z| > u, u the 98th percentile of |z|, z standard normal
_GAUSSIAN_DECAY = 0.056


def check_threshold(threshold: float) -> float:
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold is {threshold!r}; write a probability between 0 and 1, such as 0.9999")
    return float(threshold)


class TailCalibration:
    """Upper-tail probability of a raw score under the series' own past raw scores.

    Parameters
    ----------
    threshold
        The anomaly threshold; used to compute `edge`.
    window
        Memory in samples: each learned raw score weighs ``1 - 1/window`` times the next.
    min_samples
        Raw scores learned before a score is given (NaN until then).
    tail_mass
        Upper-tail mass beyond which the Pareto tail replaces the histogram.
    min_decay
        Floor of the tail's decay length, in decades of the raw score, so a series whose
        raw scores have been nearly constant still needs a real change to be flagged.
    prior_tail
        Samples' worth of a Gaussian tail the Hill estimate starts from, so that a few
        early samples in the tail neither flag noise nor hide a clear outlier.
    incident_weight, incident_level
        Weight, relative to a normal sample, with which a raw score whose score is at or
        above `incident_level` is learned: 1 learns incidents like anything else, 0 never
        learns them. The level is not the decision's threshold, so scores do not depend
        on the threshold.
    prior, prior_weight
        The distribution function of the detector's raw score on Gaussian noise (its
        `null_raw_cdf`), counted as `prior_weight` samples every series starts with, so
        that the first incidents of a short history do not make the tail look heavy.

    Every raw score is learned, incidents included: a change that keeps coming back
    becomes normal. Cost: about 3 x 160 operations per sample and 650 bytes per series.

    Examples
    --------
    >>> import numpy as np
    >>> cal = TailCalibration(threshold=0.999); st = cal.new_state(1)
    >>> rng = np.random.default_rng(0)
    >>> raw = np.abs(rng.normal(size=(1, 2000)))
    >>> raw[0, -1] = 8.0
    >>> score, edge = cal.update(st, np.array([0]), raw)
    >>> bool(np.nanmean(score[0, :-1] >= 0.999) < 0.005), bool(score[0, -1] > 0.999)
    (True, True)
    """

    def __init__(
        self,
        threshold: float = 0.9999,
        window: int = 20000,
        min_samples: int = 30,
        tail_mass: float = 0.02,
        min_decay: float = 0.05,
        prior_tail: float = 20.0,
        incident_weight: float = 0.3,
        incident_level: float = 0.9999,
        prior: Callable[[np.ndarray], np.ndarray] | None = None,
        prior_weight: float = 300.0,
    ) -> None:
        self.threshold = check_threshold(threshold)
        if int(window) != window or window < 2:
            raise ConfigError(f"calibration: window is {window!r}; write a whole number >= 2")
        if int(min_samples) != min_samples or min_samples < 1:
            raise ConfigError(f"calibration: min_samples is {min_samples!r}; write a whole number >= 1")
        if not 0 < tail_mass <= 0.5:
            raise ConfigError(f"calibration: tail_mass is {tail_mass!r}; write a fraction such as 0.02")
        if not min_decay > 0:
            raise ConfigError(f"calibration: min_decay is {min_decay!r}; write a number > 0")
        self.window = int(window)
        self.min_samples = int(min_samples)
        self.tail_mass = float(tail_mass)
        self.min_decay = float(min_decay)
        if not prior_tail >= 0:
            raise ConfigError(f"calibration: prior_tail is {prior_tail!r}; write a number >= 0")
        self.prior_tail = float(prior_tail)
        if not 0 <= incident_weight <= 1:
            raise ConfigError(f"calibration: incident_weight is {incident_weight!r}; write a number from 0 to 1")
        self.incident_weight = float(incident_weight)
        self.incident_level = check_threshold(incident_level)
        if not prior_weight >= 0:
            raise ConfigError(f"calibration: prior_weight is {prior_weight!r}; write a number >= 0")
        self._prior = np.zeros(_BINS, dtype=np.float32)
        if prior is not None and prior_weight > 0:
            edges = 10.0 ** (_LOG_LOW + _WIDTH * np.arange(1, _BINS))
            cdf = np.concatenate([[0.0], np.clip(np.asarray(prior(edges), dtype=np.float64), 0, 1), [1.0]])
            self._prior = (np.diff(cdf) * prior_weight).astype(np.float32)
        self.prior_weight = float(self._prior.sum())

    def fields(self) -> dict[str, Field]:
        return {
            "n": Field((), np.int64, 0),
            "bins": Field((_BINS,), np.float32, self._prior),  # weights, scaled by `inc`
            "total": Field((), np.float64, float(self._prior.sum())),  # sum of bins
            "inc": Field((), np.float64, 1.0),  # weight of the next sample
            # the highest bin with weight: loops stop there
            "highest": Field((), np.int64, int(np.flatnonzero(self._prior)[-1]) if self._prior.any() else 0),
        }

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def update(self, state: RowState, rows: np.ndarray, raw: FloatArray) -> tuple[FloatArray, FloatArray]:
        raw = np.ascontiguousarray(raw, dtype=np.float64)
        out = np.full((2, *raw.shape), np.nan)
        _tail(
            np.ascontiguousarray(rows, dtype=np.intp), raw, state["n"], state["bins"], state["total"],
            state["inc"], state["highest"], self.tail_mass, self.threshold, 1.0 - 1.0 / self.window, self.min_samples,
            self.min_decay / _WIDTH, _GAUSSIAN_DECAY / _WIDTH, self.prior_tail, self.incident_weight,
            self.incident_level, out,
        )
        return out[0], out[1]


@njit(cache=True, nogil=True)
def _upper_position(h, tot, mass, hi):  # type: ignore[no-untyped-def]
    """Bin position (fractional) above which `mass` of the weight lies; bins above `hi` are empty."""
    want = mass * tot
    cum = 0.0
    for b in range(hi, -1, -1):
        w = h[b]
        if cum + w >= want and w > 0:
            return b + 1 - (want - cum) / w
        cum += w
    return 0.0


@njit(cache=True, nogil=True)
def _tail(  # type: ignore[no-untyped-def]
    rows, raw, n, bins, total, inc, highest, q, threshold, decay, min_samples, min_beta, prior_beta, prior_mass,
    incident_weight, incident_level, out,
):
    nb = bins.shape[1]
    top = nb - 1e-9
    lp_threshold = -math.log10(1.0 - threshold)
    lp_incident = -math.log10(1.0 - incident_level)
    lp_q = -math.log10(q)
    for i in range(rows.shape[0]):
        r = rows[i]
        h = bins[r]
        cnt, tot, step, hi = n[r], total[r], inc[r], highest[r]
        for j in range(raw.shape[1]):
            x = raw[i, j]
            if math.isnan(x):
                continue
            pos = (math.log10(x) - _LOG_LOW) / _WIDTH if x > 0 else 0.0
            pos = min(max(pos, 0.0), top)
            b = int(pos)
            incident_pos = math.inf  # nothing is an incident before the first score
            if cnt >= min_samples:
                u = _upper_position(h, tot, q, hi)
                # Hill estimate: mean excess of log raw over the tail's start, in bins
                ub = int(u)
                excess = 0.0
                mass = 0.0
                for k in range(ub, hi + 1):
                    if k == ub:
                        w = h[k] * (ub + 1 - u)
                        excess += w * (ub + 1 - u) / 2
                    else:
                        w = h[k]
                        excess += w * (k + 0.5 - u)
                    mass += w
                # shrunk towards the Gaussian tail while few samples are in it
                beta = max((excess + prior_beta * prior_mass * step) / (mass + prior_mass * step), min_beta)
                if pos > u:
                    lp = lp_q + (pos - u) / beta / _LN10
                else:
                    above = h[b] * (b + 1 - pos)
                    for k in range(b + 1, hi + 1):
                        above += h[k]
                    lp = -math.log10(min(max(above / tot, q), 1.0))
                out[0, i, j] = 1.0 - 10.0 ** -lp
                edge_pos = u + (lp_threshold - lp_q) * _LN10 * beta if lp_threshold > lp_q else u
                out[1, i, j] = 10.0 ** (_LOG_LOW + edge_pos * _WIDTH)
                incident_pos = u + (lp_incident - lp_q) * _LN10 * beta if lp_incident > lp_q else u
            learned = step * incident_weight if pos > incident_pos else step
            h[b] += learned
            hi = max(hi, b)
            tot += learned
            cnt += 1
            step /= decay
            if step > _RESCALE:
                for k in range(nb):
                    h[k] = h[k] / step
                tot /= step
                step = 1.0
        n[r], total[r], inc[r], highest[r] = cnt, tot, step, hi


class BandCalibration:
    """The detector's own band decides: ``score = threshold ** (1 / raw)``.

    Examples
    --------
    >>> import numpy as np
    >>> cal = BandCalibration(threshold=0.99); st = cal.new_state(1)
    >>> score, edge = cal.update(st, np.array([0]), np.array([[0.5, 1.0, 2.0]]))
    >>> score.round(4).tolist(), edge.tolist()
    ([[0.9801, 0.99, 0.995]], [[1.0, 1.0, 1.0]])
    """

    def __init__(self, threshold: float = 0.9999) -> None:
        self.threshold = check_threshold(threshold)

    def fields(self) -> dict[str, Field]:
        return {}

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState({}, n_rows)

    def update(self, state: RowState, rows: np.ndarray, raw: FloatArray) -> tuple[FloatArray, FloatArray]:
        with np.errstate(divide="ignore"):
            score = np.where(raw > 0, self.threshold ** (1.0 / np.where(raw > 0, raw, 1.0)), 0.0)
        score = np.where(np.isnan(raw), np.nan, score)
        edge = np.where(np.isnan(raw), np.nan, 1.0)
        return score, edge


Calibration = TailCalibration | BandCalibration
