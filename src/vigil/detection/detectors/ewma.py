"""EWMA with a dynamic band: expected = exponentially weighted mean, band = expected ± k·σ."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numba import njit

from vigil.detection.detectors.base import ABS_FLOOR, REL_FLOOR, StepDetector, gaussian_raw_cdf
from vigil.errors import ConfigError
from vigil.state import Field, FloatArray, IntArray, RowState

__all__ = ["Ewma"]



class Ewma(StepDetector):
    """Exponentially weighted moving average with an online, exponentially weighted σ.

    Parameters
    ----------
    span
        Span of the mean, in samples: ``alpha = 2 / (span + 1)``.
    k
        Half-width of the band in σ. ``raw = |x - expected| / (k·σ)``.
    sigma_span
        Span of σ, the root of the exponentially weighted mean of squared one-step
        prediction errors (bias-corrected). Longer than `span`, so the band is steadier
        than the level. Only errors before each sample are used: no look-ahead.
    warmup
        Samples seen before the detector gives an opinion (NaN until then).
    shift_after
        Samples in a row outside the band after which the level follows them fully. The
        default equals the default span: a burst shorter than the level's memory is an
        incident, a change that lasts longer is the new normal.

    A sample outside the band moves the level and σ only as far as the band's edge, so
    one spike neither drags the level (no false alarms on the normal samples after it)
    nor widens the band for everything after it. Once `shift_after` samples in a row are
    outside the band, the level follows them fully: a level shift is learned in about
    `span` more samples. Cost: O(1) per sample and series.

    Examples
    --------
    >>> import numpy as np
    >>> d = Ewma(span=5, warmup=3); st = d.new_state(1)
    >>> s = d.update(st, np.array([0]), np.array([[10.0, 10.0, 11.0, 10.0, 30.0]]))
    >>> np.round(s.expected, 2).tolist()
    [[nan, nan, nan, 10.33, 10.22]]
    >>> bool(s.raw[0, -1] > 1)
    True
    """

    name: ClassVar[str] = "ewma"
    sided: ClassVar[bool] = False
    per_sample: ClassVar[bool] = False  # one sample's deviation, but no calibration hold: as shipped

    def __init__(
        self, span: float = 10, k: float = 3.0, sigma_span: float = 100, warmup: int = 10, shift_after: int = 10
    ) -> None:
        for key, value, lowest in (("span", span, 1), ("sigma_span", sigma_span, 1), ("k", k, 0)):
            if not np.isfinite(value) or value < lowest or (key == "k" and value == 0):
                rule = "a number > 0" if key == "k" else f"a number >= {lowest}"
                raise ConfigError(f"ewma: {key} is {value!r}; write {rule}")
        if int(warmup) != warmup or warmup < 2:
            raise ConfigError(f"ewma: warmup is {warmup!r}; write a whole number >= 2")
        if int(shift_after) != shift_after or shift_after < 1:
            raise ConfigError(f"ewma: shift_after is {shift_after!r}; write a whole number >= 1")
        self.span = span
        self.k = k
        self.sigma_span = sigma_span
        self.warmup = int(warmup)
        self.shift_after = int(shift_after)

    def null_raw_cdf(self, x: FloatArray) -> FloatArray:
        """P(raw <= x) on Gaussian noise: raw is |z| / k."""
        return gaussian_raw_cdf(x, self.k)

    def fields(self) -> dict[str, Field]:
        return {
            "n": Field((), np.int64, 0),
            "mean": Field(),
            "msq": Field(),  # EW mean of squared prediction errors, not yet bias-corrected
            "weight": Field(),  # 1 - (1 - beta)^updates: the bias correction of msq
            "outside": Field((), np.int64, 0),  # samples in a row outside the band
        }

    def _update(
        self, state: RowState, rows: IntArray, x: FloatArray, t: FloatArray | None, out: FloatArray
    ) -> None:
        _ewma(
            rows, x, state["n"], state["mean"], state["msq"], state["weight"], state["outside"],
            2.0 / (self.span + 1.0), 2.0 / (self.sigma_span + 1.0), float(self.k), self.warmup,
            self.shift_after, out,
        )


@njit(cache=True, nogil=True)
def _ewma(rows, x, n, mean, msq, weight, outside, alpha, beta, k, warmup, shift_after, out):  # type: ignore[no-untyped-def]
    for i in range(rows.shape[0]):
        r = rows[i]
        cnt, m, q, w, run = n[r], mean[r], msq[r], weight[r], outside[r]
        for j in range(x.shape[1]):
            v = x[i, j]
            if not math.isfinite(v):
                continue
            if cnt == 0:
                m = v
                cnt = 1
                continue
            sigma = math.sqrt(q / w) if w > 0 else 0.0
            half = k * max(sigma, REL_FLOOR * abs(m) + ABS_FLOOR)
            d = v - m
            if cnt >= warmup:
                out[0, i, j] = abs(d) / half
                out[1, i, j] = m
                out[2, i, j] = m - half
                out[3, i, j] = m + half
                dw = min(max(d, -half), half)
                run = run + 1 if abs(d) > half else 0
            else:
                dw = d
            m += alpha * (d if run >= shift_after or cnt < warmup else dw)
            q = (1 - beta) * q + beta * dw * dw
            w = 1 - (1 - beta) * (1 - w)
            cnt += 1
        n[r], mean[r], msq[r], weight[r], outside[r] = cnt, m, q, w, run
