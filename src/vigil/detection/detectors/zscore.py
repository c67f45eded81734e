"""Rolling-window z-score: mean and standard deviation of the last `window` samples."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numba import njit

from vigil.detection.detectors.base import ABS_FLOOR, REL_FLOOR, StepDetector, gaussian_raw_cdf
from vigil.errors import ConfigError
from vigil.state import Field, FloatArray, IntArray, RowState

__all__ = ["ZScore"]



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
    sided: ClassVar[bool] = False
    per_sample: ClassVar[bool] = False  # one sample's deviation, but no calibration hold: as shipped

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

    def null_raw_cdf(self, x: FloatArray) -> FloatArray:
        """P(raw <= x) on Gaussian noise: raw is |z| / k."""
        return gaussian_raw_cdf(x, self.std_dev_threshold)

    def fields(self) -> dict[str, Field]:
        return {
            "buf": Field((self.window,), np.float64, 0.0),
            "pos": Field((), np.int64, 0),
            "count": Field((), np.int64, 0),
            "shift": Field(),
            "s1": Field(),  # sum of (v - shift) over the window
            "s2": Field(),  # sum of (v - shift)^2 over the window
        }

    def _update(
        self, state: RowState, rows: IntArray, x: FloatArray, t: FloatArray | None, out: FloatArray
    ) -> None:
        _zscore(
            rows, x, state["buf"], state["pos"], state["count"], state["shift"], state["s1"], state["s2"],
            float(self.std_dev_threshold), self.min_samples, out,
        )


@njit(cache=True, nogil=True)
def _zscore(rows, x, buf, pos, count, shift, s1, s2, k, min_samples, out):  # type: ignore[no-untyped-def]
    w = buf.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        p, cnt, sh, a, b = pos[r], count[r], shift[r], s1[r], s2[r]
        for j in range(x.shape[1]):
            v = x[i, j]
            if not math.isfinite(v):
                continue
            if cnt == 0:
                sh = v
            if cnt >= min_samples:
                m = float(min(cnt, w))
                mean = sh + a / m
                std = math.sqrt(max(b - a * a / m, 0.0) / (m - 1))
                half = k * max(std, REL_FLOOR * abs(mean) + ABS_FLOOR)
                out[0, i, j] = abs(v - mean) / half
                out[1, i, j] = mean
                out[2, i, j] = mean - half
                out[3, i, j] = mean + half
                v = min(max(v, mean - half), mean + half)
            old = buf[r, p] - sh if cnt >= w else 0.0
            new = v - sh
            a += new - old
            b += new * new - old * old
            buf[r, p] = v
            p = (p + 1) % w
            cnt += 1
            if p == 0:  # exact recompute once per window, around the current mean
                centre = 0.0
                for q in range(w):
                    centre += buf[r, q]
                centre /= w
                a = 0.0
                b = 0.0
                for q in range(w):
                    dev = buf[r, q] - centre
                    a += dev
                    b += dev * dev
                sh = centre
        pos[r], count[r], shift[r], s1[r], s2[r] = p, cnt, sh, a, b
