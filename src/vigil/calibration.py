"""Calibration: a detector's raw score -> an anomaly score in [0, 1], per series.

`TailCalibration` learns, per series, the running mean and spread of that series' own raw
scores, and reports how far in the upper tail a new raw score lies:
``score = Phi((u - mean) / spread)`` with ``u = raw ** (2/3)``, the probability under a
normal fit that a raw score is lower than this one. The 2/3 power is the Wilson-Hilferty
transform: a squared normal deviation (chi-square, 1 degree of freedom) to the third
root is close to normal, so for Gaussian noise a threshold of 0.9999 flags about one
sample in 10,000, where a normal fit to the raw deviations themselves flags 25 times more. One threshold (say 0.9999) then means the same for every
series and every detector, and scores of several detectors can be combined.

`BandCalibration` keeps a detector's own rule: ``score = threshold ** (1 / raw)``, which
crosses the threshold exactly when the sample leaves the detector's band (raw = 1).

Both return, with the score, ``edge``: the raw score at which the score equals the
threshold, so the caller can draw the band that the decision actually uses.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.special import ndtri

from vigil.detectors.base import FloatArray
from vigil.errors import ConfigError
from vigil.state import Field, RowState

__all__ = ["BandCalibration", "Calibration", "TailCalibration", "check_threshold"]

_POWER = 2 / 3
_SQRT2 = math.sqrt(2.0)


def check_threshold(threshold: float) -> float:
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold is {threshold!r}; write a probability between 0 and 1, such as 0.9999")
    return float(threshold)


class TailCalibration:
    """Tail probability of a raw score under the series' own recent raw scores.

    Parameters
    ----------
    threshold
        The anomaly threshold; used to compute `edge` and to cap what is learned.
    window
        Memory of the running mean and spread, in samples (exponential weighting after
        the first `window` samples; a plain running average before).
    min_samples
        Raw scores seen before a score is given (NaN until then).
    min_spread
        Floor of the spread of ``u``, so a series whose raw scores have been exactly
        constant still needs a real change to be flagged.

    Raw scores above `edge` are not learned: an incident does not teach the calibration
    that incidents are normal. (Learning them clipped to the edge would ratchet the
    spread up for as long as an incident lasts.)

    Examples
    --------
    >>> import numpy as np
    >>> cal = TailCalibration(threshold=0.9999, min_samples=5); st = cal.new_state(1)
    >>> rng = np.random.default_rng(0)
    >>> raw = np.abs(rng.normal(size=(1, 200))) / 3
    >>> raw[0, -1] = 2.0
    >>> score, edge = cal.update(st, np.array([0]), raw)
    >>> bool(np.nanmax(score[0, :-1]) < 0.9999), bool(score[0, -1] > 0.9999)
    (True, True)
    """

    def __init__(
        self, threshold: float = 0.9999, window: int = 1000, min_samples: int = 20, min_spread: float = 0.1
    ) -> None:
        self.threshold = check_threshold(threshold)
        if int(window) != window or window < 2:
            raise ConfigError(f"calibration: window is {window!r}; write a whole number >= 2")
        if int(min_samples) != min_samples or min_samples < 1:
            raise ConfigError(f"calibration: min_samples is {min_samples!r}; write a whole number >= 1")
        if not min_spread > 0:
            raise ConfigError(f"calibration: min_spread is {min_spread!r}; write a number > 0")
        self.window = int(window)
        self.min_samples = int(min_samples)
        self.min_spread = float(min_spread)
        self._z = float(ndtri(self.threshold))

    def fields(self) -> dict[str, Field]:
        return {"n": Field((), np.int64, 0), "mean": Field(), "var": Field()}

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def update(self, state: RowState, rows: np.ndarray, raw: FloatArray) -> tuple[FloatArray, FloatArray]:
        raw = np.ascontiguousarray(raw, dtype=np.float64)
        out = np.full((2, *raw.shape), np.nan)
        _tail(
            np.ascontiguousarray(rows, dtype=np.intp), raw, state["n"], state["mean"], state["var"],
            self._z, self.window, self.min_samples, self.min_spread, out,
        )
        return out[0], out[1]


@njit(cache=True, nogil=True)
def _tail(rows, raw, n, mean, var, z, window, min_samples, min_spread, out):  # type: ignore[no-untyped-def]
    for i in range(rows.shape[0]):
        r = rows[i]
        cnt, m, v = n[r], mean[r], var[r]
        for j in range(raw.shape[1]):
            if math.isnan(raw[i, j]):
                continue
            u = raw[i, j] ** _POWER
            if cnt >= min_samples:
                spread = max(math.sqrt(v), min_spread)
                edge = m + z * spread
                out[0, i, j] = 0.5 * math.erfc(-(u - m) / (spread * _SQRT2))
                out[1, i, j] = edge ** (1 / _POWER)
                if u > edge:
                    continue
            a = 1.0 / min(cnt + 1, window)
            d = u - m
            v = (1 - a) * (v + a * d * d)
            m += a * d
            cnt += 1
        n[r], mean[r], var[r] = cnt, m, v


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
