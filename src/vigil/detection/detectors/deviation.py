"""Deviation from a rolling baseline: a spike, a level change, a sustained shift.

raw = |mean of the last `recent` samples - baseline of the `window` samples before them| / scale

The baseline is their mean, or their median (`level`: one outlier in the window does not
move it). With `recent_median` (`shift`) the recent samples' median stands for them, and
it is what enters the baseline in place of each sample: one outlier among them is a
spike, not a shift, now and when it would have reached the baseline. `scale` is the mean
absolute step of the series' first 100 samples (running until they are in), then frozen:
the raw score stays in the series' own units, so its calibration (against the series' own
largest recent deviations) sees changes of spread as they are, instead of normalising them
away. The registered settings differ in what they notice first: `spike` a sample far from
the last 10, `level` a sample far from the median of the last 100, `shift` the last 20
samples' median far from the 200 before them.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numba import njit
from scipy.special import erf  # type: ignore[import-untyped]

from vigil.detection.detectors.base import ABS_FLOOR, STEP_CLIP, STEP_CLIP_AFTER, StepDetector, add_step, step_scale
from vigil.errors import ConfigError
from vigil.state import Field, IntArray, RowState

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
    median
        Use the median of the window as the baseline instead of its mean.
    recent_median
        Compare the median of the `recent` samples instead of their mean, and let that
        median, not the sample, enter the baseline: one outlier among them (a spike,
        which `level` sees) does not make a shift, then or 20 samples later.

    With ``recent == 1`` the detector reports the baseline as the expected value and
    ``± scale`` as its band (the calibration widens it to the threshold); with a longer
    `recent` it reports no band, as its deviation is of a mean, not of a sample.
    Cost: O(1) per sample and series (O(window) or O(recent) with a median), ``window +
    recent`` float32 numbers of memory per series (and as many again as a median sorts).

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

    def __init__(
        self, window: int = 200, recent: int = 1, warmup: int = 30, median: bool = False, recent_median: bool = False
    ) -> None:
        for key, value, lowest in (("window", window, 1), ("recent", recent, 1), ("warmup", warmup, 2)):
            if int(value) != value or value < lowest:
                raise ConfigError(f"{self.name}: {key} is {value!r}; write a whole number >= {lowest}")
        for key, flag in (("median", median), ("recent_median", recent_median)):
            if not isinstance(flag, bool):
                raise ConfigError(f"{self.name}: {key} is {flag!r}; write true or false")
        self.window = int(window)
        self.recent = int(recent)
        self.warmup = int(warmup)
        self.median = median
        self.recent_median = recent_median

    @property
    def per_sample(self) -> bool:
        """The raw score is one sample's deviation (not a window's)."""
        return self.recent == 1 and not self._of_steps

    @property
    def sided(self) -> bool:
        """A sample-by-sample deviation has a side: the calibration keeps a record for each."""
        return self.per_sample

    def null_raw_cdf(self, x: np.ndarray) -> np.ndarray:
        """P(raw <= x) on Gaussian noise (the scale, a mean absolute step, is 2/sqrt(pi) sigma)."""
        spread = (math.pi / 2.0 if self.recent_median else 1.0) / self.recent + (
            math.pi / 2.0 if self.median else 1.0
        ) / self.window
        if self._of_steps:  # log of a ratio of two means of |step|: about normal, this spread
            log_ratio = np.log1p(np.asarray(x))
            return erf(log_ratio / math.sqrt(2.0 * (math.pi / 2.0 - 1.0) * spread))  # type: ignore[no-any-return]
        return erf(np.asarray(x) * (2.0 / math.sqrt(math.pi)) / math.sqrt(2.0 * spread))  # type: ignore[no-any-return]

    def fields(self) -> dict[str, Field]:
        f = {
            "n": Field((), np.int64, 0),
            "ring": Field((self.window + self.recent,), np.float32, np.nan),
            "pos": Field((), np.int64, 0),
            "base_sum": Field(),
            "recent_sum": Field(),
            "steps": Field(),  # sum of |step| over the first SCALE_SAMPLES samples
            "last": Field((), np.float64, np.nan),  # the previous sample
        }
        if self.median:
            f["sorted"] = Field((self.window,), np.float32, np.nan)  # the baseline's samples in order
        if self.recent_median:
            f["recent_sorted"] = Field((self.recent,), np.float32, np.nan)  # the recent samples in order
        return f

    def _update(
        self, state: RowState, rows: IntArray, x: np.ndarray, t: np.ndarray | None, out: np.ndarray
    ) -> None:
        ordered = state["sorted"] if self.median else np.empty((0, 0), dtype=np.float32)
        rsorted = state["recent_sorted"] if self.recent_median else np.empty((0, 0), dtype=np.float32)
        _deviation(
            rows, x, state["n"], state["ring"], state["pos"], state["base_sum"], state["recent_sum"],
            state["steps"], state["last"], ordered, self.window, self.recent, self.warmup, self._of_steps,
            self.median, out, rsorted, self.recent_median,
        )


class Spike(Deviation):
    """A sample far from the mean of the 10 before it."""

    name: ClassVar[str] = "spike"

    def __init__(self, window: int = 10, recent: int = 1, warmup: int = 30, median: bool = False) -> None:
        super().__init__(window, recent, warmup, median)


class Level(Deviation):
    """A sample far from the median of the 100 before it."""

    name: ClassVar[str] = "level"

    def __init__(self, window: int = 100, recent: int = 1, warmup: int = 30, median: bool = True) -> None:
        super().__init__(window, recent, warmup, median)


class Shift(Deviation):
    """The median of the last 20 samples far from the mean of the 200 before them."""

    name: ClassVar[str] = "shift"

    def __init__(
        self, window: int = 200, recent: int = 20, warmup: int = 30, median: bool = False, recent_median: bool = True
    ) -> None:
        super().__init__(window, recent, warmup, median, recent_median)


@njit(cache=True, nogil=True)
def _insert(a, m, v):  # type: ignore[no-untyped-def]
    """Insert `v` into the sorted first `m` entries of `a`."""
    k = m
    while k > 0 and a[k - 1] > v:
        a[k] = a[k - 1]
        k -= 1
    a[k] = v


@njit(cache=True, nogil=True)
def _remove(a, m, v):  # type: ignore[no-untyped-def]
    """Remove one `v` from the sorted first `m` entries of `a`."""
    k = np.searchsorted(a[:m], v)
    for q in range(k, m - 1):
        a[q] = a[q + 1]
    a[m - 1] = np.nan


@njit(cache=True, nogil=True)
def _median(a, m):  # type: ignore[no-untyped-def]
    h = m // 2
    return float(a[h]) if m % 2 else 0.5 * (float(a[h - 1]) + float(a[h]))


@njit(cache=True, nogil=True)
def _deviation(rows, x, n, ring, pos, base_sum, recent_sum, steps, last, ordered, window, recent, warmup, of_steps,  # type: ignore[no-untyped-def]
               median, out, rsorted, recent_median):
    size = window + recent
    for i in range(rows.shape[0]):
        r = rows[i]
        buf = ring[r]
        cnt, p, bs, rs, st, prev = n[r], pos[r], base_sum[r], recent_sum[r], steps[r], last[r]
        for j in range(x.shape[1]):
            v = x[i, j]
            if not math.isfinite(v):
                continue
            held = min(max(cnt - recent, 0), window)  # samples in the baseline before this one
            if of_steps:
                # the ring holds the sizes of the steps between samples
                seen = prev
                prev = v
                if not math.isfinite(seen):
                    continue
                v = abs(v - seen)
                if held > STEP_CLIP_AFTER and bs > 0:  # one outlier is two large steps, not noisier noise
                    v = min(v, STEP_CLIP * bs / held)
            v = np.float32(v)  # as the ring keeps it, so the running sums match the ring
            # buf[p] is the oldest sample; the newest recent ones end just before p
            oldest = buf[p]
            slot = (p + window) % size
            leaving_recent = buf[slot]  # moves from recent into the baseline
            entering = leaving_recent
            if recent_median and cnt >= recent:
                # the baseline takes the recent samples' median in its place: a spike never reaches it
                entering = np.float32(_median(rsorted[r], recent))
            if cnt >= size:
                bs -= oldest
            if cnt >= recent:
                bs += entering
                rs -= leaving_recent
                buf[slot] = entering
            if median:
                if cnt >= size:
                    _remove(ordered[r], held, oldest)
                    held -= 1
                if cnt >= recent:
                    _insert(ordered[r], held, entering)
            if recent_median:
                held_r = min(cnt, recent)
                if cnt >= recent:
                    _remove(rsorted[r], held_r, leaving_recent)
                    held_r -= 1
                _insert(rsorted[r], held_r, v)
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
                ratio = (rs / recent + eps) / (base + eps)
                out[0, i, j] = max(ratio, 1.0 / ratio) - 1.0
            elif in_base >= 1 and cnt >= warmup:
                base = _median(ordered[r], in_base) if median else bs / in_base
                scale = max(step_scale(st, cnt), 1e-6 * abs(base)) + ABS_FLOOR
                latest = _median(rsorted[r], min(cnt, recent)) if recent_median else rs / recent
                out[0, i, j] = abs(latest - base) / scale
                if recent == 1:
                    out[1, i, j] = base
                    out[2, i, j] = base - scale
                    out[3, i, j] = base + scale
        n[r], pos[r], base_sum[r], recent_sum[r], steps[r], last[r] = cnt, p, bs, rs, st, prev


class Volatility(Deviation):
    """The size of the last 50 steps far from that of the 500 steps before them.

    With ``q = (mean |step| recent + e) / (mean |step| baseline + e)``, ``e`` a thousandth
    of the baseline, ``raw = max(q, 1 / q) - 1``: noise that doubles or halves (a flapping
    service, a metric that went flat) counts as much however large the series' values
    are. A step counts at most `STEP_CLIP` times the baseline's mean step: one outlier
    (two large steps) is a spike, not noisier noise. No band.
    """

    name: ClassVar[str] = "volatility"
    _of_steps: ClassVar[bool] = True

    def __init__(self, window: int = 500, recent: int = 50, warmup: int = 30) -> None:
        super().__init__(window, recent, warmup)
