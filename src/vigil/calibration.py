"""Calibration: a detector's raw score -> an anomaly score in [0, 1], per series.

`TailCalibration` learns, per series, the distribution of that series' own raw scores
(an exponentially weighted histogram on a log scale) and reports
``score = 1 - P(raw score >= this one)``. Beyond the series' 80th percentile the tail is
an exponential through its 80th and 98th percentiles (a peaks-over-threshold model with
shape 0): exact for Laplace-like noise, cautious for Gaussian noise (a threshold of 0.9999
lies near 4.7 sigma there), and far closer than a normal fit for heavy-tailed series. One
threshold then means about the same for every series and every detector, and scores of
several detectors can be combined.

`BandCalibration` keeps a detector's own rule: ``score = threshold ** (1 / raw)``, which
crosses the threshold exactly when the sample leaves the detector's band (raw = 1).

Both return, with the score, ``edge``: the raw score at which the score equals the
threshold, so the caller can draw the band that the decision actually uses.
"""

from __future__ import annotations

import math

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
_P_LOW, _P_HIGH = 0.2, 0.02  # tail masses of the two anchors (80th and 98th percentiles)
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
        self, threshold: float = 0.9999, window: int = 1000, min_samples: int = 30, min_scale: float = 0.01
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

    def fields(self) -> dict[str, Field]:
        return {
            "n": Field((), np.int64, 0),
            "bins": Field((_BINS,), np.float32, 0.0),  # weights, scaled by `inc`
            "total": Field(),  # sum of bins
            "inc": Field((), np.float64, 1.0),  # weight of the next sample
        }

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def update(self, state: RowState, rows: np.ndarray, raw: FloatArray) -> tuple[FloatArray, FloatArray]:
        raw = np.ascontiguousarray(raw, dtype=np.float64)
        out = np.full((2, *raw.shape), np.nan)
        _tail(
            np.ascontiguousarray(rows, dtype=np.intp), raw, state["n"], state["bins"], state["total"],
            state["inc"], math.log(_P_LOW / (1 - self.threshold)), self.window, self.min_samples,
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
def _tail(rows, raw, n, bins, total, inc, log_edge, window, min_samples, min_scale, out):  # type: ignore[no-untyped-def]
    nb = bins.shape[1]
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
                low = _quantile(h, tot, _P_LOW)
                scale = max((_quantile(h, tot, _P_HIGH) - low) / math.log(_P_LOW / _P_HIGH), min_scale)
                edge = low + scale * log_edge
                if x >= low:
                    p = _P_LOW * math.exp(-(x - low) / scale)
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
