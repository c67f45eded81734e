"""Tail calibration: how rare a raw score is on the series' own history, against a budget of false alarms.

`TailCalibration` estimates, for each raw score, the probability `p` that the series
gives a raw score at least as large when nothing is wrong, from the largest raw scores of
its recent history, and compares it with the budget `q`: the probability per sample that
makes the configured rate of false alarms in time (``detection.false_alarms``, one a
month by default) at the series' own sample interval. The score is

    score = 1 - (1 - level) * (p / q) ** 2

with `level` the threshold Vigil ships: a sample scores it exactly when it is as rare as
the budget allows (ordinary samples score about 0), and the same threshold means "one
false alarm a month" for a series sampled every second and for one sampled every hour. A
threshold configured apart from it scales the budget (0.9999 allows about 1.6 times as
many false alarms); the scores themselves never depend on the configured threshold.

How `p` is estimated (peaks over threshold, after Siffer et al., KDD 2017, without their
iterations): the series keeps its `top` largest raw scores per side (two blocks of
`memory / 2` samples, so that what is older than `memory` samples is forgotten). Beyond
the k-th largest (k = an eighth of the samples, at most `top`), the tail is exponential
with the mean excess of the larger ones, or, where a Weibull fit of those order statistics
says the tail is heavier than exponential (shape below `heavy`), the larger of that and a
Pareto tail with Hill's index weighted by k / `top` (extrapolated from a young series' few
order statistics to a month's budget, the full index opened a tenth of Gaussian series'
bands past 200 sigma after 70 samples). Ties of a discrete series widen the mean excess by
half the spacing of its values, and a value the history has shown n times has at least the
probability n / N. Without a `hold` every raw score is learned, the rare ones too: a
deviation that keeps coming back is not rare. With a `hold`, an incident is kept apart
from normal behaviour: from a sample as rare as the budget until `hold` samples in a row
are not (at most 5 times `hold`), the samples are scored against the tail of before it,
the event it opened stays open, and none of them enters the tail; only the incident's
peak is kept, among the last incidents' peaks. An incident as large as one seen before is
still news; as large as two or more (n of them), it is a pattern of the series, with at
least the probability (n - 1) / N. A shift that lasts past the hold is learned.

Cost per sample: a few operations, and a refit of a side's tail (of order `top`) only when
a sample enters its top values or its sample count doubles. State per series and side (two
when `sided`, else one): 2 int32 counters, ``2 * top`` float32 top values and 8 float32 of
the fit; with a `hold`, 8 float32 of incidents and the hold's peak; and 2 int32 for the hold.
With the defaults: 672 bytes sided with a hold (`level`), 304 one-sided without (`shift`,
`volatility`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vigil.detection.calibration import Calibrated
from vigil.detection.settings import DEFAULT_THRESHOLD, DEFAULTS, check_threshold
from vigil.errors import ConfigError
from vigil.state import Field, FloatArray, RowState

__all__ = ["TailCalibration"]

_FEWEST = 8  # samples of a side before its own tail scores it
_STEEP = 2.0  # the score falls with the square of p / q: ordinary samples score about 0
# per side: k-th largest, mean excess, Pareto index, k, the sample count of the fit, Weibull shape,
# and the last edge with the budget it was drawn for
_FIT = 8
_INCIDENTS = 4  # incident peaks kept per side and block
# The most samples a count of the state holds (int32): a memory, a hold and its age
_LONGEST = 2**30


class TailCalibration:
    """A raw score's rarity on the series' own tail, against a per-sample budget.

    Parameters
    ----------
    threshold
        The anomaly threshold; the edges are the raw scores that reach it.
    level
        The score of a sample exactly as rare as the budget.
    sided
        Keep the tails of samples above and below the expected value apart; each side
        gets half of the budget.
    memory
        Samples after which a raw score is forgotten (two blocks of half as many).
    min_samples
        Raw scores learned before the first score (NaN until then).
    top
        Largest raw scores kept per side and block.
    heavy
        Weibull shape of the top raw scores below which the tail is taken as heavy (a
        Pareto tail is considered too).
    light
        Weibull shape above which the tail is taken as light (the Weibull tail, up to a
        Gaussian's shape 2, instead of the exponential).
    hold
        Samples an incident is held for, unlearned (0: learned at once; for detectors of
        one sample's deviation: a window's raw score stays high while the incident is in it).

    Examples
    --------
    >>> import numpy as np
    >>> cal = TailCalibration(min_samples=50); st = cal.new_state(1)
    >>> raw = np.abs(np.random.default_rng(0).normal(size=(1, 20000)))
    >>> raw[0, -1] = 8.0  # 8 sigma: far rarer than one in a month of 15 s samples
    >>> c = cal.update(st, np.array([0]), raw, budget=np.array([15 / (30 * 86400)]))
    >>> bool(c.score[0, -1] >= DEFAULT_THRESHOLD), int((c.score[0, :-1] >= DEFAULT_THRESHOLD).sum())
    (True, 0)
    """

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        sided: bool = False,
        memory: int = DEFAULTS.calibration_window,
        min_samples: int = DEFAULTS.calibration_min_samples,
        top: int = 32,
        heavy: float = 0.85,
        light: float = 1.2,
        level: float = DEFAULT_THRESHOLD,
        hold: int = 0,
    ) -> None:
        self.threshold = check_threshold(threshold)
        self.level = check_threshold(level)
        if int(memory) != memory or not 4 <= memory <= _LONGEST:
            raise ConfigError(f"calibration: memory is {memory!r}; write a whole number of samples from 4 to {_LONGEST}")
        if int(min_samples) != min_samples or min_samples < 1:
            raise ConfigError(f"calibration: min_samples is {min_samples!r}; write a whole number >= 1")
        if int(top) != top or not 3 <= top <= 256:
            raise ConfigError(f"calibration: top is {top!r}; write a whole number from 3 to 256")
        if not (math.isfinite(heavy) and heavy > 0):
            raise ConfigError(f"calibration: heavy is {heavy!r}; write a Weibull shape > 0")
        if int(hold) != hold or not 0 <= hold <= _LONGEST // 8:
            raise ConfigError(f"calibration: hold is {hold!r}; write a whole number of samples from 0 to {_LONGEST // 8}")
        self.hold = int(hold)
        self.sided = bool(sided)
        self.memory = int(memory)
        self.min_samples = int(min_samples)
        self.top = int(top)
        self.heavy = float(heavy)
        self.light = float(light)

    def fields(self) -> dict[str, Field]:
        sides = 2 if self.sided else 1
        held = _INCIDENTS if self.hold else 0  # without a hold, no incident is kept apart
        return {
            "count": Field((sides,), np.int32, 0),  # samples in both blocks, per side
            "block": Field((sides,), np.int32, 0),  # samples in the newer block, per side
            "older": Field((sides, self.top), np.float32, 0.0),  # largest raw scores, descending
            "newer": Field((sides, self.top), np.float32, 0.0),
            "fit": Field((sides, _FIT), np.float32, 0.0),  # k = 0: to be fitted
            "left": Field((), np.int32, 0),  # samples of the hold still to come
            "age": Field((), np.int32, 0),  # samples since the hold began
            "peak": Field((sides if self.hold else 0,), np.float32, 0.0),  # the largest raw score of the hold, per side
            "incidents": Field((sides, 2, held), np.float32, 0.0),  # peaks of held incidents: side, block
        }

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def update(
        self, state: RowState, rows: np.ndarray, raw: FloatArray, below: np.ndarray | None = None,
        budget: FloatArray | None = None, holds: np.ndarray | None = None,
    ) -> Calibrated:
        """Score and learn a block of raw scores; `budget` is each row's probability per sample,
        `holds` each row's hold in samples (by default `hold`)."""
        raw = np.ascontiguousarray(raw, dtype=np.float64)
        rows = np.ascontiguousarray(rows, dtype=np.intp)
        side = np.zeros(raw.shape, dtype=np.bool_) if below is None or not self.sided else below
        if budget is None:
            budget = np.full(rows.shape[0], 1.0 - self.threshold)
        out = np.full((5, *raw.shape), np.nan)
        out[4] = 0.0
        if holds is None or self.hold == 0:
            holds = np.full(rows.shape[0], self.hold)
        _tail(
            rows, raw, np.ascontiguousarray(side, dtype=np.bool_), np.ascontiguousarray(budget, dtype=np.float64),
            state["count"], state["block"], state["older"], state["newer"], state["fit"], state["left"], state["age"],
            state["peak"], state["incidents"], np.ascontiguousarray(holds, dtype=np.int64),
            self.memory // 2, self.min_samples, self.level, ((1.0 - self.threshold) / (1.0 - self.level)) ** (1.0 / _STEEP),
            self.heavy,
            self.light, self.sided, out,
        )
        return Calibrated(out[0], out[1], out[2], out[4] > 0, out[3])


@njit(cache=True, nogil=True)
def _insert(buf, x):  # type: ignore[no-untyped-def]
    """Put `x` among the descending values of `buf` if it is larger than the last."""
    last = buf.shape[0] - 1
    if x <= buf[last]:
        return
    a = last
    while a > 0 and buf[a - 1] < x:
        buf[a] = buf[a - 1]
        a -= 1
    buf[a] = x


@njit(cache=True, nogil=True)
def _fit(older, newer, n, k, heavy, light, work, fit):  # type: ignore[no-untyped-def]
    """Fit the tail beyond the k-th largest of both blocks; write it to `fit`."""
    i = j = 0
    for a in range(k):  # the k largest of two descending buffers
        if j >= newer.shape[0] or (i < older.shape[0] and older[i] >= newer[j]):
            work[a] = older[i]
            i += 1
        else:
            work[a] = newer[j]
            j += 1
    xk = work[k - 1]
    gap = 0.0
    total = 0.0
    for a in range(k - 1):
        total += work[a]
        g = work[a] - work[a + 1]
        if g > 0 and (gap == 0.0 or g < gap):
            gap = g
    beta = max(total / (k - 1) - xk + 0.5 * gap, 1e-9 * xk + 1e-12)
    xi = 0.0
    weibull = 0.0
    if xk > 0:
        sx = sy = sxx = sxy = 0.0
        for a in range(k):  # Weibull plot: log(-log p) against log x
            lx = math.log(work[a] + 0.5 * gap)
            ly = math.log(math.log(max(n / (a + 1.0), 1.0 + 1e-9)))
            sx += lx
            sy += ly
            sxx += lx * lx
            sxy += lx * ly
        var = sxx / k - (sx / k) ** 2
        shape = (sxy / k - sx * sy / (k * k)) / var if var > 1e-12 else math.inf
        if shape < heavy:
            for a in range(k - 1):
                xi += math.log(work[a] / xk)
            xi /= k - 1
            xi *= k / older.shape[0]  # from a few order statistics the index is mostly noise
        elif shape > light:  # lighter than exponential, such as a Gaussian's (shape 2)
            weibull = min(shape, 2.0)
    fit[0], fit[1], fit[2], fit[3], fit[4], fit[5], fit[6] = xk, beta, xi, k, n, weibull, -1.0


@njit(cache=True, nogil=True)
def _read(fit):  # type: ignore[no-untyped-def]
    """The fit as kept (float32), in float64 for the arithmetic: k-th largest, mean excess,
    Pareto index, k, sample count, Weibull shape."""
    return (np.float64(fit[0]), np.float64(fit[1]), np.float64(fit[2]), np.float64(fit[3]), np.float64(fit[4]),
            np.float64(fit[5]))


@njit(cache=True, nogil=True)
def _rarity(x, older, newer, incidents, fit, n, seen_too):  # type: ignore[no-untyped-def]
    """The probability of a raw score of `x` or more, from the fitted tail (and the values seen)."""
    xk, beta, xi, k, fitted, weibull = _read(fit)
    if x <= xk:
        return k / fitted
    p = math.exp(-math.log(fitted / k) * (x / xk) ** weibull) if weibull > 0 else (k / fitted) * math.exp(-(x - xk) / beta)
    if xi > 0 and xk > 0:
        p = max(p, (k / fitted) * (x / xk) ** (-1.0 / xi))
    if not seen_too:
        return p
    seen = 0
    while seen < older.shape[0] and older[seen] >= x:
        seen += 1
    a = 0
    while a < newer.shape[0] and newer[a] >= x:
        a += 1
    again = -1  # one incident as large is news; two or more are a pattern
    for b in range(2):
        c = 0
        while c < incidents.shape[1] and incidents[b, c] >= x:
            c += 1
        again += c
    return max(p, (seen + a + max(again, 0)) / n)


@njit(cache=True, nogil=True)
def _edge(fit, q):  # type: ignore[no-untyped-def]
    """The raw score whose fitted probability is the budget `q` (kept in `fit` until the next fit)."""
    xk, beta, xi, k, n, weibull = _read(fit)
    if k == 0:
        return math.nan
    if fit[6] != np.float32(q):  # (the budget as the state keeps it)
        fit[6] = q
        fit[7] = _drawn(xk, beta, xi, k, n, weibull, q)
    return np.float64(fit[7])


@njit(cache=True, nogil=True)
def _drawn(xk, beta, xi, k, n, weibull, q):  # type: ignore[no-untyped-def]
    ratio = k / (n * q)
    if ratio <= 1:
        return xk
    if weibull > 0:
        return xk * (math.log(1.0 / q) / math.log(n / k)) ** (1.0 / weibull)
    e = xk + beta * math.log(ratio)
    if xi > 0:
        e = max(e, xk * ratio**xi)
    return e


@njit(cache=True, nogil=True)
def _tail(rows, raw, below, budget, count, block, older, newer, fit, left, age, peak, incidents, holds, half, min_samples,  # type: ignore[no-untyped-def]
          level, widen, heavy, light, sided, out):
    level = 1.0 - level
    sides = older.shape[1]
    top = older.shape[2]
    work = np.empty(top)
    for i in range(rows.shape[0]):
        r = rows[i]
        q = budget[i] * (0.5 if sided else 1.0)
        hold = holds[i]
        for j in range(raw.shape[1]):
            x = raw[i, j]
            if math.isnan(x):
                continue
            s = 1 if below[i, j] and sides == 2 else 0
            n = count[r, s]
            other = count[r, 1 - s] if sides == 2 else 0
            hot = False
            if n + other >= min_samples and max(n, other) >= _FEWEST:
                u = s if n >= _FEWEST else 1 - s  # a side with few samples yet is scored on the other's tail
                m = count[r, u]
                k = min(top, max(3, m // 8))
                f = fit[r, u]
                if f[3] == 0 or (left[r] == 0 and m >= 2 * f[4]):
                    _fit(older[r, u], newer[r, u], m, k, heavy, light, work, f)
                ratio = level * (_rarity(x, older[r, u], newer[r, u], incidents[r, u], f, m, left[r] == 0) / q) ** _STEEP
                hot = ratio <= level  # as rare as the budget allows, or rarer
                out[0, i, j] = min(max(1.0 - ratio, 0.0), 1.0)
                edge = _edge(f, q * widen)
                if hot and edge > 0 and x > edge:
                    # past the edge, surprise grows by two decades for every tenfold deviation,
                    # not with the tail's probability: an incident that ramps up stays one
                    out[3, i, j] = -math.log10(level) + _STEEP * math.log10(x / edge)
                else:
                    out[3, i, j] = -math.log10(max(ratio, 1e-300))
                edge_other = edge
                if sided and fit[r, 1 - u, 3] > 0:
                    edge_other = _edge(fit[r, 1 - u], q * widen)
                out[1, i, j], out[2, i, j] = (edge_other, edge) if u == 1 else (edge, edge_other)
            if hold > 0 and hot:
                if left[r] == 0:
                    age[r] = 0
                if left[r] == 0 or age[r] < 5 * hold:
                    left[r] = hold + 1  # this sample and the `hold` after it
            if left[r] > 0:  # an incident is not normal behaviour: its peak is kept apart, once
                peak[r, s] = max(peak[r, s], x)
                out[4, i, j] = 1.0
                left[r] -= 1
                age[r] += 1
                if left[r] == 0:
                    for v in range(sides):
                        if peak[r, v] > 0:
                            _insert(incidents[r, v, 1], peak[r, v])
                        peak[r, v] = 0.0
            elif x > newer[r, s, top - 1]:
                _insert(newer[r, s], x)
                if x > fit[r, s, 0]:
                    fit[r, s, 3] = 0.0  # the largest values changed: fit again
            count[r, s] = n + 1
            block[r, s] += 1
            if block[r, s] >= half:  # the older block is forgotten; the newer one becomes it
                older[r, s, :] = newer[r, s, :]
                newer[r, s, :] = 0.0
                incidents[r, s, 0, :] = incidents[r, s, 1, :]
                incidents[r, s, 1, :] = 0.0
                count[r, s] = block[r, s]
                block[r, s] = 0
                fit[r, s, 3] = 0.0
