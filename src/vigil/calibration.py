"""Calibration: a detector's raw score -> an anomaly score in [0, 1], per series.

`TailCalibration` learns, per series, the distribution of that series' own raw scores
(an exponentially weighted histogram on a log scale) and reports
``score = 1 - P(raw score >= this one)``. Beyond the series' 80th percentile the tail is a
Weibull tail through its 80th and 98th percentiles, whose shape follows the series: about
1.5 for Gaussian noise (a threshold of 0.9999 lies near 4.2 sigma), 1 for Laplace noise,
below 1 for heavier tails, where a normal fit would flag 50 to 100 times too often. One
threshold then means about the same for every series and every detector, and scores of
several detectors can be combined.

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

# Histogram of raw scores: bin edges at R0 * (2 ** (b / PER_OCTAVE) - 1), the last bin open.
_BINS = 60
_PER_OCTAVE = 6.0
_R0 = 0.005
_RESCALE = 1e6


def check_threshold(threshold: float) -> float:
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold is {threshold!r}; write a probability between 0 and 1, such as 0.9999")
    return float(threshold)


class TailCalibration:
    """Upper-tail probability of a raw score under the series' own recent raw scores.

    Parameters
    ----------
    threshold
        The anomaly threshold; used to compute `edge` and to keep incidents out of what
        is learned.
    window
        Memory in samples: each learned raw score weighs ``1 - 1/window`` times the next
        (a plain histogram until `window` samples are in).
    min_samples
        Raw scores learned before a score is given (NaN until then).
    min_scale
        Floor of the tail's decay length, in raw units, so a series whose raw scores have
        been constant still needs a real change to be flagged.
    anchors
        Upper-tail masses of the two percentiles the tail goes through.
    prior, prior_weight
        The distribution function of the detector's raw score on Gaussian noise (see
        `null_raw_cdf` of `ewma` and `zscore`), counted as `prior_weight` samples that
        every series starts with. Its own samples outweigh it within a few hundred, but
        until then the tail is not estimated from a handful of points.

    Raw scores above `edge` are not learned: an incident does not teach the calibration
    that incidents are normal. Cost: about 100 operations per sample and 240 bytes per
    series.

    Examples
    --------
    >>> import numpy as np
    >>> cal = TailCalibration(threshold=0.9999); st = cal.new_state(1)
    >>> rng = np.random.default_rng(0)
    >>> raw = np.abs(rng.normal(size=(1, 2000))) / 3
    >>> raw[0, -1] = 2.0
    >>> score, edge = cal.update(st, np.array([0]), raw)
    >>> bool(np.nanmax(score[0, :-1]) < 0.9999), bool(score[0, -1] > 0.9999)
    (True, True)
    """

    def __init__(
        self,
        threshold: float = 0.9999,
        window: int = 1000,
        min_samples: int = 30,
        min_scale: float = 0.01,
        anchors: tuple[float, float] = (0.2, 0.02),
        prior: Callable[[np.ndarray], np.ndarray] | None = None,
        prior_weight: float = 300.0,
    ) -> None:
        self.threshold = check_threshold(threshold)
        if int(window) != window or window < 2:
            raise ConfigError(f"calibration: window is {window!r}; write a whole number >= 2")
        if int(min_samples) != min_samples or min_samples < 1:
            raise ConfigError(f"calibration: min_samples is {min_samples!r}; write a whole number >= 1")
        if not min_scale > 0:
            raise ConfigError(f"calibration: min_scale is {min_scale!r}; write a number > 0")
        self.window = int(window)
        self.min_samples = int(min_samples)
        self.min_scale = float(min_scale)
        if not 0.5 >= anchors[0] > anchors[1] > 0:
            raise ConfigError(f"calibration: anchors is {anchors!r}; write two tail masses such as (0.2, 0.02)")
        self.anchors = (float(anchors[0]), float(anchors[1]))
        if not prior_weight >= 0:
            raise ConfigError(f"calibration: prior_weight is {prior_weight!r}; write a number >= 0")
        self.prior_weight = float(prior_weight) if prior is not None else 0.0
        self._prior = np.zeros(_BINS, dtype=np.float32)
        if prior is not None and prior_weight > 0:
            edges = _R0 * (2.0 ** (np.arange(_BINS + 1) / _PER_OCTAVE) - 1.0)
            cdf = np.clip(np.asarray(prior(edges), dtype=np.float64), 0, 1)
            cdf[-1] = 1.0  # the last bin is open-ended
            self._prior = (np.diff(cdf) * prior_weight).astype(np.float32)

    def fields(self) -> dict[str, Field]:
        return {
            "n": Field((), np.int64, 0),
            "bins": Field((_BINS,), np.float32, self._prior),  # weights, scaled by `inc`
            "total": Field((), np.float64, float(self._prior.sum())),  # sum of bins
            "inc": Field((), np.float64, 1.0),  # weight of the next sample
        }

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def update(self, state: RowState, rows: np.ndarray, raw: FloatArray) -> tuple[FloatArray, FloatArray]:
        raw = np.ascontiguousarray(raw, dtype=np.float64)
        out = np.full((2, *raw.shape), np.nan)
        _tail(
            np.ascontiguousarray(rows, dtype=np.intp), raw, state["n"], state["bins"], state["total"],
            state["inc"], self.anchors[0], self.anchors[1], self.threshold, self.window, self.min_samples,
            self.min_scale, out,
        )
        return out[0], out[1]


@njit(cache=True, nogil=True)
def _position(raw):  # type: ignore[no-untyped-def]
    return math.log2(1.0 + raw / _R0) * _PER_OCTAVE


@njit(cache=True, nogil=True)
def _raw_at(position):  # type: ignore[no-untyped-def]
    return _R0 * (2.0 ** (position / _PER_OCTAVE) - 1.0)


@njit(cache=True, nogil=True)
def _quantile(bins, total, mass):  # type: ignore[no-untyped-def]
    """Raw score above which `mass` (a fraction) of the weight lies."""
    want = mass * total
    cum = 0.0
    for b in range(bins.shape[0] - 1, -1, -1):
        w = bins[b]
        if cum + w >= want and w > 0:
            return _raw_at(b + 1 - (want - cum) / w)
        cum += w
    return 0.0


@njit(cache=True, nogil=True)
def _tail(rows, raw, n, bins, total, inc, p_low, p_high, threshold, window, min_samples, min_scale, out):  # type: ignore[no-untyped-def]
    nb = bins.shape[1]
    log_edge = math.log(p_low / (1 - threshold))
    log_span = math.log(p_low / p_high)
    log_loglog = math.log(math.log(p_high) / math.log(p_low))
    min_shape, max_shape = 0.3, 2.0
    for i in range(rows.shape[0]):
        r = rows[i]
        h = bins[r]
        cnt, tot, step = n[r], total[r], inc[r]
        for j in range(raw.shape[1]):
            x = raw[i, j]
            if math.isnan(x):
                continue
            pos = _position(x)
            if cnt >= min_samples:
                low = _quantile(h, tot, p_low)
                high = _quantile(h, tot, p_high)
                if high - low >= min_scale * log_span and low > 0:
                    # Weibull tail through both anchors: P(raw > x) = exp(-(x / lam) ** kappa)
                    kappa = min(max(log_loglog / math.log(high / low), min_shape), max_shape)
                    lam = high / (-math.log(p_high)) ** (1.0 / kappa)
                    edge = lam * (-math.log(1 - threshold)) ** (1.0 / kappa)
                    tail = math.exp(-((x / lam) ** kappa)) if x >= low else -1.0
                else:  # (nearly) constant raw scores: exponential tail of the floor scale
                    edge = low + min_scale * log_edge
                    tail = p_low * math.exp(-(x - low) / min_scale) if x >= low else -1.0
                if tail >= 0:
                    p = min(tail, p_low)
                else:
                    b = min(int(pos), nb - 1)
                    above = h[b] * (b + 1 - pos) if b < nb - 1 else 0.0
                    for q in range(b + 1, nb):
                        above += h[q]
                    p = min(above / tot, 1.0)
                out[0, i, j] = 1.0 - p
                out[1, i, j] = edge
                if x > edge:
                    continue
            h[min(int(pos), nb - 1)] += step
            tot += step
            cnt += 1
            if cnt > window:
                step /= 1.0 - 1.0 / window
            if step > _RESCALE:
                for q in range(nb):
                    h[q] = h[q] / step
                tot /= step
                step = 1.0
        n[r], total[r], inc[r] = cnt, tot, step


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
