"""Seasonal: each sample against the same time of day on the days before."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numba import njit

from vigil.detection.detectors.base import ABS_FLOOR, StepDetector, add_step, erf, step_scale
from vigil.errors import ConfigError
from vigil.state import Field, IntArray, RowState

__all__ = ["Seasonal"]


class Seasonal(StepDetector):
    """Deviation from the value the series had at this time of day, on earlier days.

    Parameters
    ----------
    period
        Length of the season in seconds (a day by default).
    bins
        Slots the season is cut into; a sample is compared with its slot's reference.
    alpha
        Weight of the last day in the reference: 1 compares with yesterday only, less
        blends older days in (an exponentially weighted mean of daily slot means).
    warmup
        Samples before the first opinion; the scale is the mean absolute step, as in `level`.

    ``raw = |x - reference of its slot| / scale``. A slot has a reference once a day
    has passed over it, so the detector gives no opinion for the first period. It needs
    each sample's time (seconds), which the pipeline passes. Cost: O(1) per sample,
    ``3 * bins`` numbers of memory per series.

    Examples
    --------
    >>> import numpy as np
    >>> d = Seasonal(period=4, bins=4, alpha=1.0, warmup=2); st = d.new_state(1)
    >>> t = np.arange(9.0)[None, :]
    >>> x = np.array([[0.0, 5.0, 0.0, 5.0, 0.0, 5.0, 0.0, 5.0, 9.0]])
    >>> s = d.update(st, np.array([0]), x, t)
    >>> s.expected.tolist()[0][4:], s.raw.tolist()[0][4:]
    ([0.0, 5.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.8])
    """

    name: ClassVar[str] = "seasonal"
    per_sample: ClassVar[bool] = True  # its raw score is one sample's deviation
    sided: ClassVar[bool] = False

    def __init__(self, period: float = 86400.0, bins: int = 96, alpha: float = 0.5, warmup: int = 30) -> None:
        if not (math.isfinite(period) and period > 0):
            raise ConfigError(f"seasonal: period is {period!r}; write seconds > 0, such as 86400")
        if int(bins) != bins or bins < 2:
            raise ConfigError(f"seasonal: bins is {bins!r}; write a whole number >= 2")
        if not 0 < alpha <= 1:
            raise ConfigError(f"seasonal: alpha is {alpha!r}; write a number in (0, 1]")
        if int(warmup) != warmup or warmup < 2:
            raise ConfigError(f"seasonal: warmup is {warmup!r}; write a whole number >= 2")
        self.period = float(period)
        self.bins = int(bins)
        self.alpha = float(alpha)
        self.warmup = int(warmup)

    def null_raw_cdf(self, x: np.ndarray) -> np.ndarray:
        """P(raw <= x) on Gaussian noise: a sample against a reference of many, over 2/sqrt(pi) sigma."""
        return erf(np.asarray(x) * (2.0 / math.sqrt(math.pi)) / math.sqrt(2.0))  # type: ignore[no-any-return]

    def fields(self) -> dict[str, Field]:
        b = self.bins
        return {
            "n": Field((), np.int64, 0),
            "day": Field((b,), np.int32, -1),  # the period the slot's running sum belongs to
            "acc_sum": Field((b,), np.float32, 0.0),
            "acc_n": Field((b,), np.int32, 0),
            "ref": Field((b,), np.float32, np.nan),
            "steps": Field(),  # sum of |step| over the first SCALE_SAMPLES samples
            "last": Field((), np.float64, np.nan),
        }

    def _update(
        self, state: RowState, rows: IntArray, x: np.ndarray, t: np.ndarray | None, out: np.ndarray
    ) -> None:
        if t is None:
            raise ValueError("seasonal needs the time of each sample")
        _seasonal(
            rows, t, x, state["n"], state["day"], state["acc_sum"], state["acc_n"], state["ref"], state["steps"],
            state["last"], self.period, self.bins, self.alpha, self.warmup, out,
        )


@njit(cache=True, nogil=True)
def _seasonal(rows, t, x, n, day, acc_sum, acc_n, ref, steps, last, period, bins, alpha, warmup, out):  # type: ignore[no-untyped-def]
    for i in range(rows.shape[0]):
        r = rows[i]
        cnt, st, prev = n[r], steps[r], last[r]
        for j in range(x.shape[1]):
            v = x[i, j]
            tt = t[i, j]
            if not (math.isfinite(v) and math.isfinite(tt)):
                continue
            d = math.floor(tt / period)
            b = min(int((tt - d * period) / period * bins), bins - 1)
            if day[r, b] != d and acc_n[r, b] > 0:  # a new period reaches this slot
                mean = acc_sum[r, b] / acc_n[r, b]
                old = ref[r, b]
                ref[r, b] = mean if math.isnan(old) else old + alpha * (mean - old)
                acc_sum[r, b] = 0.0
                acc_n[r, b] = 0
            day[r, b] = d
            st = add_step(st, cnt, v, prev)
            cnt += 1
            prev = v
            expected = ref[r, b]
            if cnt >= warmup and not math.isnan(expected):
                scale = max(step_scale(st, cnt), 1e-6 * abs(expected)) + ABS_FLOOR
                out[0, i, j] = abs(v - expected) / scale
                out[1, i, j] = expected
                out[2, i, j] = expected - scale
                out[3, i, j] = expected + scale
            acc_sum[r, b] += v
            acc_n[r, b] += 1
        n[r], steps[r], last[r] = cnt, st, prev
