"""EWMA with a dynamic band: expected = exponentially weighted mean, band = expected ± k·σ."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vigil.detectors.base import FloatArray, StepDetector
from vigil.errors import ConfigError
from vigil.state import Field

__all__ = ["Ewma"]

# sigma never drops below this fraction of |mean| (plus a tiny absolute floor), so a
# constant series has a narrow band instead of a zero-width one.
_REL_FLOOR = 1e-9
_ABS_FLOOR = 1e-9


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

    A sample outside the band moves the level as usual (a level shift is learned in about
    `span` samples) but adds at most the band's edge to σ, so one spike does not widen
    the band for everything after it. Cost: O(1) per sample and series.

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

    def __init__(self, span: float = 10, k: float = 3.0, sigma_span: float = 100, warmup: int = 10) -> None:
        for key, value, lowest in (("span", span, 1), ("sigma_span", sigma_span, 1), ("k", k, 0)):
            if not np.isfinite(value) or value < lowest or (key == "k" and value == 0):
                rule = "a number > 0" if key == "k" else f"a number >= {lowest}"
                raise ConfigError(f"ewma: {key} is {value!r}; write {rule}")
        if int(warmup) != warmup or warmup < 2:
            raise ConfigError(f"ewma: warmup is {warmup!r}; write a whole number >= 2")
        self.span = span
        self.k = k
        self.sigma_span = sigma_span
        self.warmup = int(warmup)
        self._alpha = 2.0 / (span + 1.0)
        self._beta = 2.0 / (sigma_span + 1.0)

    def fields(self) -> dict[str, Field]:
        return {
            "n": Field((), np.int64, 0),
            "mean": Field(),
            "msq": Field(),  # EW mean of squared prediction errors, not yet bias-corrected
            "weight": Field(),  # 1 - (1 - beta)^updates: the bias correction of msq
        }

    def _step(self, s: dict[str, np.ndarray], x: FloatArray) -> tuple[FloatArray, ...]:
        n, mean, msq, weight = s["n"], s["mean"], s["msq"], s["weight"]
        ok = ~np.isnan(x)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = np.sqrt(np.where(weight > 0, msq / weight, 0.0))
        half = self.k * np.maximum(sigma, _REL_FLOOR * np.abs(mean) + _ABS_FLOOR)
        d = x - mean
        ready = ok & (n >= self.warmup)
        raw = np.where(ready, np.abs(d) / half, np.nan)
        expected = np.where(ready, mean, np.nan)
        lower = expected - half
        upper = expected + half

        upd = ok & (n > 0)
        dw = np.where(ready, np.clip(d, -half, half), d)
        s["mean"] = np.where(ok & (n == 0), x, np.where(upd, mean + self._alpha * d, mean))
        s["msq"] = np.where(upd, (1 - self._beta) * msq + self._beta * dw * dw, msq)
        s["weight"] = np.where(upd, 1 - (1 - self._beta) * (1 - weight), weight)
        s["n"] = n + ok
        return raw, expected, lower, upper
