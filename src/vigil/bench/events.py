"""Score alerts event by event, as an operator counts pages: caught events, false alerts, precision, recall, F1.

The rules (``shared/EVENT-SCORING.md``; docs/benchmark.md): per file only the rows from
``scored_from`` on count. Each labelled window ``[s, e]`` (rows, both inclusive) is one
event, *caught* if an alert falls in ``[s - W, e]`` (W = `EARLY` rows; the extension
stops at ``scored_from``, and a window that ends before it is not an event). Alerting
rows outside every extended window form runs of consecutive rows; a run is one false
alert, or ``ceil(len / R)`` of them when it is longer than R rows, as a page that stays
open re-fires: R is an hour of rows (``3600 / interval_s`` rounded, at least 1).
Precision = caught / (caught + false alerts), recall = caught / events, F1 their harmonic
mean, each counted over the whole corpus; false alerts per series-day divide the false
alerts by the scored rows' days, summed over files.

`count_events` scores given alerts (what `vigil run` notifies). `event_curve` scores a
continuous score at many thresholds at once (alerts = rows with score >= threshold) and
`oracle` picks the threshold with the best F1 on the very corpus it scores: an oracle no
user has, reported as such. Everything is NumPy on the corpus laid end to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vigil.bench.nab_corpus import FileIndex

__all__ = ["EARLY", "EventLayout", "EventScore", "count_events", "event_curve", "layout", "oracle", "refire_rows"]

EARLY = 5  # W: rows before a window whose alert still catches it

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def refire_rows(interval_s: float) -> int:
    """R: rows in an hour at this step, rounded, at least 1.

    >>> refire_rows(60), refire_rows(300), refire_rows(3600), refire_rows(86400)
    (60, 12, 1, 1)
    """
    return max(1, round(3600.0 / interval_s))


@dataclass(frozen=True)
class EventScore:
    """Counts over a corpus and what follows from them; `threshold` is set for an oracle's score."""

    caught: int
    events: int
    false_alerts: int
    series_days: float
    threshold: float | None = None

    @property
    def missed(self) -> int:
        return self.events - self.caught

    @property
    def precision(self) -> float:
        alerts = self.caught + self.false_alerts
        return self.caught / alerts if alerts else 0.0

    @property
    def recall(self) -> float:
        return self.caught / self.events if self.events else 0.0

    @property
    def f1(self) -> float:
        """2 P R / (P + R), which is 2 caught / (events + caught + false alerts); 0 with nothing caught."""
        return _f1(self.caught, self.events, self.false_alerts)

    @property
    def per_day(self) -> float:
        """False alerts per series-day."""
        return self.false_alerts / self.series_days if self.series_days > 0 else 0.0


def _f1(caught: int, events: int, false_alerts: int) -> float:
    return 2.0 * caught / (events + caught + false_alerts) if caught else 0.0


@dataclass(frozen=True)
class EventLayout:
    """A corpus laid end to end: a row that never alerts, then each file's scored rows and such a row again.

    `first` and `scored_from` say where each file goes; `lo` and `hi` are the events'
    extended windows ``[s - W, e]`` as positions in the layout; `outside` marks the rows
    outside every extended window (the separators are not); `refire` is each row's R.
    """

    first: IntArray
    scored_from: IntArray
    n: IntArray
    lo: IntArray
    hi: IntArray
    outside: BoolArray
    refire: IntArray
    series_days: float

    @property
    def events(self) -> int:
        return int(self.lo.shape[0])

    @property
    def size(self) -> int:
        return int(self.outside.shape[0])


def layout(index: Sequence[FileIndex], early: int = EARLY) -> EventLayout:
    """Lay out the files of `index`, in its order, for scoring.

    >>> lay = layout([FileIndex(10, 2, 60.0, [(5, 6)]), FileIndex(4, 0, 3600.0, [])])
    >>> lay.first.tolist(), lay.lo.tolist(), lay.hi.tolist(), lay.outside.astype(int).tolist()
    ([1, 10], [1], [5], [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0])
    """
    n = np.array([ix.n for ix in index], dtype=np.int64)
    scored_from = np.array([ix.scored_from for ix in index], dtype=np.int64)
    m = n - scored_from
    first = 1 + np.cumsum(np.concatenate([[0], m + 1]))[:-1].astype(np.int64)
    size = 1 + int((m + 1).sum())
    lo, hi = [], []
    for f, ix in enumerate(index):
        b, at = ix.scored_from, int(first[f])
        for s, e in ix.windows:
            if e >= b:
                lo.append(max(s - early, b) - b + at)
                hi.append(e - b + at)
    lo_a, hi_a = np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64)
    cover = np.zeros(size + 1, dtype=np.int64)
    np.add.at(cover, lo_a, 1)
    np.add.at(cover, hi_a + 1, -1)
    outside = np.zeros(size, dtype=np.bool_)
    for f in range(len(index)):
        outside[first[f] : first[f] + m[f]] = True
    outside &= np.cumsum(cover[:size]) == 0
    rows = np.array([refire_rows(ix.interval_s) for ix in index], dtype=np.int64)
    refire = np.concatenate([[1], np.repeat(rows, m + 1)]).astype(np.int64)
    days = float(sum((ix.n - ix.scored_from) * ix.interval_s for ix in index)) / 86400.0
    return EventLayout(first, scored_from, n, lo_a, hi_a, outside, refire, days)


def _lay(lay: EventLayout, per_file: Sequence[npt.ArrayLike], fill: float) -> FloatArray:
    """Each file's values from its `scored_from` on, at its place in the layout; `fill` elsewhere."""
    if len(per_file) != lay.n.shape[0]:
        raise ValueError(f"{len(per_file)} files of values for a layout of {lay.n.shape[0]}")
    out = np.full(lay.size, fill)
    for f, values in enumerate(per_file):
        x = np.asarray(values, dtype=np.float64)
        if x.shape != (int(lay.n[f]),):
            raise ValueError(f"file {f} has {x.shape} values; its index says {int(lay.n[f])} rows")
        out[lay.first[f] : lay.first[f] + lay.n[f] - lay.scored_from[f]] = x[lay.scored_from[f] :]
    return out


def count_events(lay: EventLayout, alerts: Sequence[npt.ArrayLike]) -> EventScore:
    """Score alerts (per file, True where one was sent, every row of the file) by the event rules.

    >>> lay = layout([FileIndex(20, 0, 300.0, [(10, 12)])])
    >>> a = np.zeros(20, bool); a[[6, 15]] = True
    >>> s = count_events(lay, [a]); s.caught, s.false_alerts, round(s.f1, 3)
    (1, 1, 0.667)
    """
    a = _lay(lay, alerts, 0.0) > 0
    seen = np.concatenate([[0], np.cumsum(a)])
    caught = int(np.count_nonzero(seen[lay.hi + 1] > seen[lay.lo]))
    edges = np.diff((a & lay.outside).astype(np.int8))  # the first and last rows are separators: no alert
    starts, ends = np.flatnonzero(edges == 1) + 1, np.flatnonzero(edges == -1) + 1
    false = int((-(-(ends - starts) // lay.refire[starts])).sum())
    return EventScore(caught, lay.events, false, lay.series_days)


def event_curve(lay: EventLayout, scores: Sequence[npt.ArrayLike],
                thresholds: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Caught events and false alerts at each threshold, alerts being rows with score >= threshold.

    Exact at every threshold at once. Caught: the events whose highest score in the
    extended window reaches it. False alerts: at a threshold, each run of alerting rows
    outside the windows is a stretch whose lowest score reaches it and whose two
    neighbours do not; every row finds its stretch (the widest around it of scores at
    least its own) by doubling steps over a table of range minima, and each stretch counts
    its ``ceil(len / R)`` for the thresholds in (higher neighbour, lowest score].
    Non-finite scores (NaN) never alert.

    >>> lay = layout([FileIndex(12, 0, 1800.0, [(9, 9)])])  # R = 2 rows; rows 4 to 9 are the event's
    >>> s = np.array([.5, .6, .6, .5, 0, 0, 0, 0, 0, .8, .7, 0])
    >>> [c.tolist() for c in event_curve(lay, [s], [.5, .6, .75, .9])]
    [[1, 1, 1, 0], [3, 2, 0, 0]]
    """
    th = np.asarray(thresholds, dtype=np.float64)
    s = _lay(lay, scores, -np.inf)
    s[np.isnan(s)] = -np.inf
    caught = np.zeros(th.shape, dtype=np.int64)
    if lay.events:
        tops = np.sort(np.maximum.reduceat(s, np.column_stack([lay.lo, lay.hi + 1]).ravel())[::2])
        caught = lay.events - np.searchsorted(tops, th, side="left").astype(np.int64)
    v = np.where(lay.outside, s, -np.inf)
    lo_v, hi_v, weight = _stretches(v, lay.refire)
    false = _at_least(hi_v, weight, th) - _at_least(lo_v, weight, th)
    return caught, false


def _stretches(v: FloatArray, refire: IntArray) -> tuple[FloatArray, FloatArray, IntArray]:
    """Every run of alerts `v` can make: its neighbours' higher score, its lowest score, its count of false alerts."""
    rows = np.flatnonzero(v > -np.inf)
    if rows.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    edges = np.diff(np.concatenate([[0], (v > -np.inf).astype(np.int8), [0]]))
    longest = int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())
    minima = [v]  # minima[k][j] = min(v[j : j + 2**k])
    while 2 ** len(minima) <= longest:
        prev, step = minima[-1], 2 ** (len(minima) - 1)
        minima.append(np.minimum(prev[:-step], prev[step:]))
    x = v[rows]
    left, right = rows.copy(), rows.copy()
    for k in range(len(minima) - 1, -1, -1):
        step, table = 2**k, minima[k]
        cand = left - step
        ok = np.flatnonzero(cand >= 0)
        ok = ok[table[cand[ok]] >= x[ok]]
        left[ok] = cand[ok]
        ok = np.flatnonzero(right + step < v.shape[0])
        ok = ok[table[right[ok] + 1] >= x[ok]]
        right[ok] += step
    _, one = np.unique(left * v.shape[0] + right, return_index=True)
    left, right = left[one], right[one]
    length = right - left + 1
    return np.maximum(v[left - 1], v[right + 1]), x[one], -(-length // refire[left])


def _at_least(values: FloatArray, weight: IntArray, th: FloatArray) -> IntArray:
    """For each threshold, the summed weight of the values at or above it."""
    order = np.argsort(values, kind="stable")
    below = np.concatenate([[0], np.cumsum(weight[order])])
    out: IntArray = (below[-1] - below[np.searchsorted(values[order], th, side="left")]).astype(np.int64)
    return out


def oracle(lay: EventLayout, scores: Sequence[npt.ArrayLike]) -> EventScore:
    """The score's best F1 on this corpus, over every threshold (each distinct score, and never firing).

    Ties go to the highest threshold. It chooses with the labels it is scored on: an
    oracle, an upper bound of what one fixed threshold can do on this corpus.

    >>> lay = layout([FileIndex(12, 0, 1800.0, [(9, 9)])])
    >>> best = oracle(lay, [np.array([.5, .6, .6, .5, 0, 0, 0, 0, 0, .8, .7, 0])])
    >>> best.threshold, best.caught, best.false_alerts, best.f1
    (0.8, 1, 0, 1.0)
    """
    s = _lay(lay, scores, np.nan)
    th = np.append(np.unique(s[np.isfinite(s)]), np.inf)
    caught, false = event_curve(lay, scores, th)
    f1 = np.where(caught > 0, 2.0 * caught / np.maximum(lay.events + caught + false, 1), 0.0)
    best = int(np.flatnonzero(f1 == f1.max())[-1])
    return EventScore(int(caught[best]), lay.events, int(false[best]), lay.series_days, float(th[best]))
