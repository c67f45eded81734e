"""Rolling-window z-score: mean and standard deviation of the last `window` samples."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vigil.detectors.base import FloatArray, StepDetector
from vigil.errors import ConfigError
from vigil.state import Field

__all__ = ["ZScore"]

_REL_FLOOR = 1e-9
_ABS_FLOOR = 1e-9


class ZScore(StepDetector):
    """Rolling mean and standard deviation with a k-sigma band.

    Parameters
    ----------
    window
        Number of past samples in the rolling window.
    std_dev_threshold
        Half-width of the band in standard deviations (the seed's name for k).
    min_samples
        Samples in the window before the detector gives an opinion (NaN until then).

    Each sample is scored against the window of samples before it, then enters the
    window, clipped to the band so that one outlier does not inflate the deviation for
    the next `window` samples. Sums are kept with a per-row shift and recomputed exactly
    every `window` samples, so rounding errors do not pile up. Cost: O(1) per sample and
    series, plus `window` floats of memory per series.

    Examples
    --------
    >>> import numpy as np
    >>> d = ZScore(window=4, min_samples=3); st = d.new_state(1)
    >>> s = d.update(st, np.array([0]), np.array([[1.0, 2.0, 3.0, 2.0, 9.0]]))
    >>> s.expected.round(2).tolist()
    [[nan, nan, nan, 2.0, 2.0]]
    >>> bool(s.raw[0, -1] > 1)
    True
    """

    name: ClassVar[str] = "zscore"

    def __init__(self, window: int = 100, std_dev_threshold: float = 3.0, min_samples: int = 30) -> None:
        if int(window) != window or window < 2:
            raise ConfigError(f"zscore: window is {window!r}; write a whole number >= 2")
        if not np.isfinite(std_dev_threshold) or std_dev_threshold <= 0:
            raise ConfigError(f"zscore: std_dev_threshold is {std_dev_threshold!r}; write a number > 0")
        if int(min_samples) != min_samples or not 2 <= min_samples <= window:
            raise ConfigError(
                f"zscore: min_samples is {min_samples!r}; write a whole number from 2 to window ({window})"
            )
        self.window = int(window)
        self.std_dev_threshold = std_dev_threshold
        self.min_samples = int(min_samples)

    def fields(self) -> dict[str, Field]:
        return {
            "buf": Field((self.window,), np.float64, 0.0),
            "pos": Field((), np.int64, 0),
            "count": Field((), np.int64, 0),
            "shift": Field(),
            "s1": Field(),  # sum of (v - shift) over the window
            "s2": Field(),  # sum of (v - shift)^2 over the window
        }

    def _step(self, s: dict[str, np.ndarray], x: FloatArray) -> tuple[FloatArray, ...]:
        buf, pos, count, shift, s1, s2 = s["buf"], s["pos"], s["count"], s["shift"], s["s1"], s["s2"]
        w = self.window
        ok = ~np.isnan(x)
        m = np.minimum(count, w).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = shift + s1 / m
            var = np.maximum(s2 - s1 * s1 / m, 0.0) / (m - 1)
        std = np.sqrt(var)
        half = self.std_dev_threshold * np.maximum(std, _REL_FLOOR * np.abs(mean) + _ABS_FLOOR)
        ready = ok & (count >= self.min_samples)
        raw = np.where(ready, np.abs(x - mean) / half, np.nan)
        expected = np.where(ready, mean, np.nan)
        lower, upper = expected - half, expected + half

        idx = np.flatnonzero(ok)
        if idx.size:
            first = idx[count[idx] == 0]
            shift[first] = x[first]
            v = np.where(ready, np.clip(x, mean - half, mean + half), x)[idx]
            p = pos[idx]
            full = count[idx] >= w
            old = np.where(full, buf[idx, p] - shift[idx], 0.0)
            new = v - shift[idx]
            s1[idx] += new - old
            s2[idx] += new * new - old * old
            buf[idx, p] = v
            pos[idx] = (p + 1) % w
            count[idx] += 1
            wrapped = idx[pos[idx] == 0]
            if wrapped.size:  # exact recompute once per window, around the current mean
                window_vals = buf[wrapped]
                centre = window_vals.mean(axis=1)
                dev = window_vals - centre[:, None]
                shift[wrapped] = centre
                s1[wrapped] = dev.sum(axis=1)
                s2[wrapped] = (dev * dev).sum(axis=1)
        return raw, expected, lower, upper
