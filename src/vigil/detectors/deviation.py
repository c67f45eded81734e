"""Deviation from a rolling baseline: a spike, a level change, a sustained shift.

raw = |mean of the last `recent` samples - mean of the `window` samples before them| / scale

`scale` is the mean absolute step of the series' first 100 samples (running until they
are in), then frozen: the raw score stays in the series' own units, so its calibration (the rank of a
deviation among the series' own past deviations) sees changes of spread as they are,
instead of normalising them away. The three registered settings differ in what they
notice first: `spike` a sample far from the last 10, `level` a sample far from the last
200, `shift` the last 20 samples' mean far from the 200 before them.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numba import njit
from scipy.special import erf  # type: ignore[import-untyped]

from vigil.detectors.base import ABS_FLOOR, IntArray, StepDetector, add_step, step_scale
from vigil.errors import ConfigError
from vigil.state import Field, RowState

__all__ = ["Deviation", "Level", "Shift", "Spike", "Volatility"]


class Deviation(StepDetector):
    """Deviation of the recent mean from the baseline mean before it.

    Parameters
    ----------
    window
        Samples in the baseline.
    recent
        Samples whose mean is compared with the baseline; 1 compares each sample.
    warmup
        Samples before the first opinion; until `window` samples are in, the baseline is
        the samples there are.

    With ``recent == 1`` the detector reports the baseline mean as the expected value and
    ``± scale`` as its band (the calibration widens it to the threshold); with a longer
    `recent` it reports no band, as its deviation is of a mean, not of a sample.
    Cost: O(1) per sample and series, ``window + recent`` float32 numbers of memory per series.

    Examples
    --------
    >>> import numpy as np
    >>> d = Deviation(window=4, recent=1, warmup=4); st = d.new_state(1)
    >>> s = d.update(st, np.array([0]), np.array([[1.0, 2.0, 1.0, 2.0, 1.5, 1.5, 9.0]]))
    >>> s.expected.tolist()[0][3:], s.raw.round(3).tolist()[0][3:]
    ([1.3333333333333333, 1.5, 1.625, 1.5], [0.667, 0.0, 0.179, 4.091])
    """

    name: ClassVar[str] = "deviation"
    _of_steps: ClassVar[bool] = False

    def __init__(self, window: int = 200, recent: int = 1, warmup: int = 30) -> None:
        for key, value, lowest in (("window", window, 1), ("recent", recent, 1), ("warmup", warmup, 2)):
            if int(value) != value or value < lowest:
                raise ConfigError(f"{self.name}: {key} is {value!r}; write a whole number >= {lowest}")
        self.window = int(window)
        self.recent = int(recent)
        self.warmup = int(warmup)

    def null_raw_cdf(self, x: np.ndarray) -> np.ndarray:
        """P(raw <= x) on Gaussian noise (the scale, a mean absolute step, is 2/sqrt(pi) sigma)."""
        spread = 1.0 / self.recent + 1.0 / self.window
        if self._of_steps:  # log of a ratio of two means of |step|: about normal, this spread
            return erf(np.asarray(x) / math.sqrt(2.0 * (math.pi / 2.0 - 1.0) * spread))  # type: ignore[no-any-return]
        return erf(np.asarray(x) * (2.0 / math.sqrt(math.pi)) / math.sqrt(2.0 * spread))  # type: ignore[no-any-return]

    def fields(self) -> dict[str, Field]:
        return {
            "n": Field((), np.int64, 0),
            "ring": Field((self.window + self.recent,), np.float32, np.nan),
            "pos": Field((), np.int64, 0),
            "base_sum": Field(),
            "recent_sum": Field(),
            "steps": Field(),  # sum of |step| over the first SCALE_SAMPLES samples
            "last": Field((), np.float64, np.nan),  # the previous sample
        }

    def _update(
        self, state: RowState, rows: IntArray, x: np.ndarray, t: np.ndarray | None, out: np.ndarray
    ) -> None:
        _deviation(
            rows, x, state["n"], state["ring"], state["pos"], state["base_sum"], state["recent_sum"],
            state["steps"], state["last"], self.window, self.recent, self.warmup, self._of_steps, out,
        )


class Spike(Deviation):
    """A sample far from the mean of the 10 before it."""

    name: ClassVar[str] = "spike"

    def __init__(self, window: int = 10, recent: int = 1, warmup: int = 30) -> None:
        super().__init__(window, recent, warmup)


class Level(Deviation):
    """A sample far from the mean of the 200 before it."""

    name: ClassVar[str] = "level"

    def __init__(self, window: int = 200, recent: int = 1, warmup: int = 30) -> None:
        super().__init__(window, recent, warmup)


class Shift(Deviation):
    """The mean of the last 20 samples far from the mean of the 200 before them."""

    name: ClassVar[str] = "shift"

    def __init__(self, window: int = 200, recent: int = 20, warmup: int = 30) -> None:
        super().__init__(window, recent, warmup)


@njit(cache=True, nogil=True)
def _deviation(rows, x, n, ring, pos, base_sum, recent_sum, steps, last, window, recent, warmup, of_steps, out):  # type: ignore[no-untyped-def]
    size = window + recent
    for i in range(rows.shape[0]):
        r = rows[i]
        buf = ring[r]
        cnt, p, bs, rs, st, prev = n[r], pos[r], base_sum[r], recent_sum[r], steps[r], last[r]
        for j in range(x.shape[1]):
            v = x[i, j]
            if not math.isfinite(v):
                continue
            if of_steps:
                # the ring holds the sizes of the steps between samples
                seen = prev
                prev = v
                if not math.isfinite(seen):
                    continue
                v = abs(v - seen)
            v = np.float32(v)  # as the ring keeps it, so the running sums match the ring
            # buf[p] is the oldest sample; the newest recent ones end just before p
            oldest = buf[p]
            leaving_recent = buf[(p + window) % size]  # moves from recent into the baseline
            if cnt >= size:
                bs -= oldest
            if cnt >= recent:
                bs += leaving_recent
                rs -= leaving_recent
            rs += v
            buf[p] = v
            p = (p + 1) % size
            if not of_steps:
                st = add_step(st, cnt, v, prev)
                prev = v
            cnt += 1
            if cnt % size == 0:  # exact sums again, so rounding errors do not pile up
                bs = 0.0
                rs = 0.0
                for q in range(size):
                    if q < window:
                        bs += buf[(p + q) % size]
                    else:
                        rs += buf[(p + q) % size]
            in_base = min(cnt - recent, window)
            if in_base >= 1 and cnt >= warmup and of_steps:
                base = bs / in_base
                eps = 1e-3 * base + ABS_FLOOR
                out[0, i, j] = abs(math.log((rs / recent + eps) / (base + eps)))
            elif in_base >= 1 and cnt >= warmup:
                base = bs / in_base
                scale = max(step_scale(st, cnt), 1e-6 * abs(base)) + ABS_FLOOR
                out[0, i, j] = abs(rs / recent - base) / scale
                if recent == 1:
                    out[1, i, j] = base
                    out[2, i, j] = base - scale
                    out[3, i, j] = base + scale
        n[r], pos[r], base_sum[r], recent_sum[r], steps[r], last[r] = cnt, p, bs, rs, st, prev


class Volatility(Deviation):
    """The size of the last 30 steps far from that of the 200 steps before them.

    ``raw = |log((mean |step| recent + e) / (mean |step| baseline + e))|``, ``e`` being
    a thousandth of the baseline: noise that doubles or halves (a flapping service, a
    metric that went flat) counts as much however large the series' values are. No band.
    """

    name: ClassVar[str] = "volatility"
    _of_steps: ClassVar[bool] = True

    def __init__(self, window: int = 200, recent: int = 30, warmup: int = 30) -> None:
        super().__init__(window, recent, warmup)
