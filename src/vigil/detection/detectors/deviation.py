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

A mean baseline needs only the sum of its samples, so it is kept in blocks: the samples
that enter it are summed in blocks of ``block = window // BLOCKS`` (at least 1), and the
baseline is the last ``window // block`` whole blocks and the block being filled. It holds
``window`` samples (rounded down to whole blocks) and up to ``block - 1`` more: `shift`
200 to 209 samples in blocks of 10, `volatility` 500 to 524 steps in blocks of 25; a
window under 40 keeps every sample. A median baseline (`level`) keeps every sample, and
so do the recent samples. Until the window is full, the baseline is the samples there are.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numba import njit

from vigil.detection.detectors.base import (
    ABS_FLOOR,
    STEP_CLIP,
    STEP_CLIP_AFTER,
    StepDetector,
    add_step,
    erf,
    step_scale,
)
from vigil.detection.detectors.running_median import running_median
from vigil.errors import ConfigError
from vigil.state import Field, IntArray, RowState

__all__ = ["BLOCKS", "Deviation", "Level", "Shift", "Spike", "Volatility"]

# A mean baseline keeps the means of blocks of `window // BLOCKS` samples, not the samples:
# its memory is about BLOCKS numbers however long the window is.
BLOCKS = 20


class Deviation(StepDetector):
    """Deviation of the recent mean from the baseline mean before it.

    Parameters
    ----------
    window
        Samples in the baseline (a mean baseline: up to a block more, see above).
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
    Cost: O(1) per sample and series; a median, a pass over its window when a sample
    crosses its middle (a copy and a selection, O(window), when it moves further). State
    per series: ``recent`` float32 numbers, then ``window`` more for a median baseline or
    ``window // block`` (about `BLOCKS`) for a mean, and a few scalars: 424 bytes for
    `level`, 196 for `shift`, 320 for `volatility`.

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

    @property
    def block(self) -> int:
        """Samples per block of the baseline: 1 (each sample kept) for a median or a window under `BLOCKS`."""
        return 1 if self.median else max(1, self.window // BLOCKS)

    def fields(self) -> dict[str, Field]:
        b = self.block
        f = {
            "n": Field((), np.int64, 0),  # samples seen
            "ring": Field((self.recent,), np.float32, np.nan),  # the recent samples; the oldest at n % recent
            "base": Field((self.window // b,), np.float32, np.nan),  # the baseline's samples, or its blocks' sums
        }
        if self._of_steps:
            f["last"] = Field((), np.float64, np.nan)  # the previous sample (the ring holds steps)
        else:
            f["steps"] = Field((), np.float32, 0.0)  # sum of |step| over the first SCALE_SAMPLES samples
        if not self.median:
            f["base_sum"] = Field()  # sum of the whole blocks
        if b > 1:
            f["part"] = Field()  # sum of the block being filled
        if self.recent > 1 and not self.recent_median:
            f["recent_sum"] = Field()
        if self.median or self.recent_median:
            # the last median of the baseline and/or of the recent samples, where the next is looked for
            f["mid"] = Field((2 * (int(self.median) + int(self.recent_median)),), np.float32, np.nan)
        return f

    def _update(
        self, state: RowState, rows: IntArray, x: np.ndarray, t: np.ndarray | None, out: np.ndarray
    ) -> None:
        def get(name: str, dtype: type) -> np.ndarray:
            return state[name] if name in state.arrays else np.empty(0, dtype=dtype)

        _deviation(
            rows, x, state["n"], state["ring"], state["base"], get("steps", np.float32), get("last", np.float64),
            get("base_sum", np.float64), get("part", np.float64), get("recent_sum", np.float64),
            state["mid"] if "mid" in state.arrays else np.empty((state.n_rows, 0), dtype=np.float32), self.block,
            self.warmup, self._of_steps, self.median, self.recent_median, out,
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
    """The median of the last 20 samples far from the mean of the 200 before them (200 to 209,
    in blocks of 10)."""

    name: ClassVar[str] = "shift"

    def __init__(
        self, window: int = 200, recent: int = 20, warmup: int = 30, median: bool = False, recent_median: bool = True
    ) -> None:
        super().__init__(window, recent, warmup, median, recent_median)


@njit(cache=True, nogil=True)
def _deviation(rows, x, n, ring, base, steps, last, base_sum, part, recent_sum, mids, block, warmup,  # type: ignore[no-untyped-def]
               of_steps, median, recent_median, out):
    recent = ring.shape[1]
    blocks = base.shape[1]
    scratch = np.empty(max(blocks, recent))
    for i in range(rows.shape[0]):
        r = rows[i]
        cnt = n[r]
        # where the samples are, from their count: the ring's oldest at `slot`; the baseline has
        # `whole` blocks (the oldest at `at`, once all are there) and `fill` samples of the next
        slot = cnt % recent
        entered = max(cnt - recent, 0)
        fill = entered % block
        whole = min(entered // block, blocks)
        at = (entered // block) % blocks
        bs = base_sum[r] if base_sum.shape[0] else 0.0  # the sum of the whole blocks' means
        pt = part[r] if part.shape[0] else 0.0  # the sum of the `fill` samples
        rs = recent_sum[r] if recent_sum.shape[0] else 0.0
        st = np.float64(steps[r]) if steps.shape[0] else 0.0
        rm = 2 if median else 0  # mids[r, :2]: the two middle values of the baseline, for a median;
        # mids[r, rm : rm + 2]: those of the recent samples
        level = math.nan  # the baseline's median
        if median and cnt > recent:
            level = 0.5 * (np.float64(mids[r, 0]) + np.float64(mids[r, 1]))
        # the previous sample: kept for steps (the ring holds steps), else the newest recent one
        prev = last[r] if of_steps else (np.float64(ring[r, (slot - 1) % recent]) if cnt > 0 else math.nan)
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
                held = whole * block + fill
                total = bs * block + pt
                if held > STEP_CLIP_AFTER and total > 0:  # one outlier is two large steps, not noisier noise
                    v = min(v, STEP_CLIP * total / held)
            v = np.float32(v)  # as the ring keeps it, so the running sums match the ring
            gone = math.nan  # the sample that leaves the ring (when it is full)
            if cnt >= recent:
                gone = ring[r, slot]  # it moves from recent into the baseline
                entering = gone
                if recent_median:
                    # the baseline takes the recent samples' median in its place: a spike never reaches it
                    entering = np.float32(0.5 * (np.float64(mids[r, rm]) + np.float64(mids[r, rm + 1])))
                pt += entering
                fill += 1
                if fill == block:  # a whole block: its mean joins the baseline, in place of the oldest
                    oldest = base[r, at] if whole == blocks else math.nan
                    if whole == blocks:
                        bs -= oldest
                    base[r, at] = np.float32(pt / block)  # a mean: as precise as a sample
                    bs += base[r, at]
                    pt = 0.0
                    fill = 0
                    whole = min(whole + 1, blocks)
                    at += 1
                    if at == blocks:
                        at = 0
                        if not median:  # the whole baseline again: an exact sum, so rounding errors do not pile up
                            bs = 0.0
                            for q in range(blocks):
                                bs += base[r, q]
                    if median:
                        level = running_median(base, r, whole, mids, 0, oldest, entering, scratch)
                rs -= gone
            if not of_steps:
                st = np.float64(np.float32(add_step(st, cnt, v, prev)))  # as the state keeps it
                prev = v
            ring[r, slot] = v
            rs += v
            cnt += 1
            slot += 1
            if slot == recent:
                slot = 0
                rs = 0.0  # the recent samples again: an exact sum
                for q in range(recent):
                    rs += ring[r, q]
            latest = np.float64(v) if recent == 1 else rs / recent  # the recent samples' mean
            if recent_median:  # their median
                latest = running_median(ring, r, min(cnt, recent), mids, rm, gone, v, scratch)
            in_base = whole * block + fill
            if in_base < 1 or cnt < warmup:
                continue
            if of_steps:
                mean = (bs * block + pt) / in_base
                eps = 1e-3 * mean + ABS_FLOOR
                ratio = (rs / recent + eps) / (mean + eps)
                out[0, i, j] = max(ratio, 1.0 / ratio) - 1.0
                continue
            if not median:
                level = (bs * block + pt) / in_base
            scale = max(step_scale(st, cnt), 1e-6 * abs(level)) + ABS_FLOOR
            out[0, i, j] = abs(latest - level) / scale
            if recent == 1:
                out[1, i, j] = level
                out[2, i, j] = level - scale
                out[3, i, j] = level + scale
        n[r] = cnt
        if base_sum.shape[0]:
            base_sum[r] = bs
        if part.shape[0]:
            part[r] = pt
        if recent_sum.shape[0]:
            recent_sum[r] = rs
        if steps.shape[0]:
            steps[r] = st
        if of_steps:
            last[r] = prev


class Volatility(Deviation):
    """The size of the last 50 steps far from that of the 500 steps before them (500 to 524,
    in blocks of 25).

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
