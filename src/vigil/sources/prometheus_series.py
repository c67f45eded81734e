"""What a Prometheus source keeps of each series between fetches, and how answers become `Samples`.

An `Answer` gathers the series of one fetch (a long window comes in several requests);
`Kept` holds, per series kept, the time of its last point returned and when an answer
last held it (and, for a raw counter, its last value), in arrays indexed by a slot, so
that a fetch of 100,000 series costs no step per series beyond a dictionary lookup.
Label sets seen in the previous fetch are not written out again (`Names`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vigil.labels import series_key
from vigil.sources.base import Samples

__all__ = ["Answer", "Kept", "Names"]

_NEVER = -(2**62)  # a time before any point
_FOREVER = 2**62  # "last seen" of a free slot: never forgotten again

Name = tuple[str, dict[str, str]]


class Names:
    """Label pairs as an answer gives them -> the series' key and labels, for the label sets
    of the previous fetch and of this one (so the cache never outgrows two answers)."""

    def __init__(self) -> None:
        self.before: dict[tuple[Any, ...], Name] = {}
        self.now: dict[tuple[Any, ...], Name] = {}

    def begin(self) -> None:
        self.now = {}

    def end(self) -> None:
        self.before, self.now = self.now, {}

    def of(self, metric: dict[str, Any]) -> Name:
        pairs = tuple(metric.items())
        name = self.now.get(pairs) or self.before.get(pairs)
        if name is None:
            labels = {str(k): str(v) for k, v in pairs}
            name = (series_key(labels), labels)
        self.now[pairs] = name
        return name


@dataclass
class Answer:
    """The series of one fetch's answers: series ``i`` of them is ``keys[i]`` with
    ``counts[i]`` points, in order, in the arrays of its request."""

    keys: list[str] = field(default_factory=list)
    labels: list[dict[str, str]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    t_ms: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)

    def add(self, result: list[Any], names: Names) -> None:
        """Add the items of a matrix answer's ``result``; KeyError, TypeError, ValueError,
        AttributeError or IndexError, and nothing added, when one is not a series."""
        points: list[Any] = []
        keys, labels, counts = [], [], []
        for item in result:
            values = item.get("values")
            if not values:  # e.g. native histograms only
                continue
            key, series_labels = names.of(item["metric"])
            keys.append(key)
            labels.append(series_labels)
            counts.append(len(values))
            points.extend(values)
        if not points:
            return
        table = np.array(points, dtype=object)
        if table.shape != (len(points), 2):
            raise ValueError("a point is not [time, value]")
        t_ms = np.rint(table[:, 0].astype(np.float64) * 1000).astype(np.int64)
        v = table[:, 1].astype(np.float64)
        self.keys += keys
        self.labels += labels
        self.counts += counts
        self.t_ms.append(t_ms)
        self.v.append(v)


@dataclass
class Commit:
    """What one answer brought: the samples, and what the source says of them."""

    samples: Samples | list[Any]  # [] when no series has anything to give
    lagging: int | None  # the oldest last point (ms) of the series kept in the answer
    series: int  # series in the answer
    dropped: int  # new series left out by the cap


class Kept:
    """The series a source keeps, each in a slot of the arrays below."""

    def __init__(self) -> None:
        self.slot: dict[str, int] = {}
        self._slot_key: list[str | None] = []
        self._free: list[int] = []
        self._last_ms = np.empty(0, dtype=np.int64)  # time of the last point returned (counter: consumed)
        self._seen_ms = np.empty(0, dtype=np.int64)  # end of the last window whose answer held the series
        self._prev_ms = np.empty(0, dtype=np.int64)  # counter: time of the last finite raw value, -1 before
        self._prev_v = np.empty(0, dtype=np.float64)  # counter: that raw value

    def __len__(self) -> int:
        return len(self.slot)

    def commit(
        self, raw: Answer, end: int, forget_after_ms: float, max_series: int, counter: bool,
        owns: Callable[[str], bool] | None,
    ) -> Commit:
        """Forget series not seen for `forget_after_ms`, keep new ones while fewer than
        `max_series` are kept (those `owns` refuses come back with no points), and return
        every kept series' points newer than the last returned, in key order (for a
        `counter`, rates)."""
        self._forget(end - forget_after_ms)
        first: dict[str, int] = {}  # key -> its series in the answer (a long window comes in several requests)
        series = np.array([first.setdefault(k, len(first)) for k in raw.keys], dtype=np.intp)
        keys = list(first)
        labels = [raw.labels[i] for i in np.unique(series, return_index=True)[1].tolist()]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        slots = np.full(len(keys), -1, dtype=np.intp)  # -1: not kept
        other: list[int] = []  # another shard's: returned with its labels and no points
        dropped = 0
        for i in order:
            slot = self.slot.get(keys[i])
            if slot is None:
                if owns is not None and not owns(keys[i]):
                    other.append(i)
                    continue
                if len(self.slot) >= max_series:
                    dropped += 1
                    continue
                slot = self._new_slot(keys[i])
            slots[i] = slot
        kept = slots[slots >= 0]
        self._seen_ms[kept] = end

        rank = np.empty(len(keys), dtype=np.intp)
        rank[order] = np.arange(len(keys))
        point_rank = rank[np.repeat(series, raw.counts)]
        t_ms = np.concatenate(raw.t_ms) if raw.t_ms else np.empty(0, dtype=np.int64)
        v = np.concatenate(raw.v) if raw.v else np.empty(0, dtype=np.float64)
        by = np.argsort(point_rank, kind="stable")  # key order; each series' requests in time order
        point_rank, t_ms, v = point_rank[by], t_ms[by], v[by]
        same = point_rank[1:] == point_rank[:-1]
        if np.any(same & (t_ms[1:] <= t_ms[:-1])):  # out of order or repeated: sort, keep the first of each time
            by = np.lexsort((t_ms, point_rank))
            point_rank, t_ms, v = point_rank[by], t_ms[by], v[by]
            first_of_time = np.append(True, (point_rank[1:] != point_rank[:-1]) | (t_ms[1:] != t_ms[:-1]))
            point_rank, t_ms, v = point_rank[first_of_time], t_ms[first_of_time], v[first_of_time]
        point_slot = slots[order][point_rank]
        new = point_slot >= 0
        new[new] = t_ms[new] > self._last_ms[point_slot[new]]
        point_rank, point_slot, t_ms, v = point_rank[new], point_slot[new], t_ms[new], v[new]
        if t_ms.size:
            ends = np.append(point_slot[1:] != point_slot[:-1], True)
            self._last_ms[point_slot[ends]] = t_ms[ends]
            if counter:
                point_rank, t_ms, v = self._rate(point_rank, point_slot, t_ms, v)
        lagging = int(self._last_ms[kept].min()) if kept.size else None
        counts = np.bincount(point_rank, minlength=len(keys))
        shown = counts > 0
        shown[rank[other]] = True
        if not shown.any():
            return Commit([], lagging, len(keys), dropped)
        out = np.asarray(order)[shown].tolist()
        samples = Samples(
            [keys[i] for i in out], [labels[i] for i in out],
            np.concatenate(([0], np.cumsum(counts[shown]))), t_ms / 1000.0, v,
        )
        return Commit(samples, lagging, len(keys), dropped)

    def _forget(self, before: float) -> None:
        for slot in np.flatnonzero(self._seen_ms[: len(self._slot_key)] < before).tolist():
            del self.slot[self._slot_key[slot] or ""]
            self._slot_key[slot] = None
            self._seen_ms[slot] = _FOREVER
            self._free.append(slot)

    def _new_slot(self, key: str) -> int:
        if self._free:
            slot = self._free.pop()
            self._slot_key[slot] = key
        else:
            slot = len(self._slot_key)
            self._slot_key.append(key)
            if slot >= self._last_ms.size:
                size = max(64, 2 * slot)
                self._last_ms = np.resize(self._last_ms, size)
                self._seen_ms = np.resize(self._seen_ms, size)
                self._prev_ms = np.resize(self._prev_ms, size)
                self._prev_v = np.resize(self._prev_v, size)
        self.slot[key] = slot
        self._last_ms[slot], self._seen_ms[slot], self._prev_ms[slot], self._prev_v[slot] = _NEVER, 0, -1, np.nan
        return slot

    def _rate(
        self, rank: np.ndarray, slot: np.ndarray, t_ms: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-second rate of raw counters (points sorted by series, then time), continuing from
        each series' previous value; a drop is a reset; a series' first value only primes it."""
        out = np.full(v.shape, np.nan)
        keep = np.ones(v.shape, dtype=bool)
        at = np.flatnonzero(np.isfinite(v))  # a non-finite value gives NaN; the next rate spans the gap
        if at.size:
            s, x, tx = slot[at], v[at], t_ms[at]
            starts = np.append(True, s[1:] != s[:-1])
            prev_t, prev_v = np.roll(tx, 1), np.roll(x, 1)
            prev_t[starts], prev_v[starts] = self._prev_ms[s[starts]], self._prev_v[s[starts]]
            primes = prev_t < 0
            increase = np.where(x >= prev_v, x - prev_v, x)
            out[at] = np.where(primes, np.nan, increase * 1000.0 / np.where(primes, 1, tx - prev_t))
            keep[at[primes]] = False
            ends = np.append(s[1:] != s[:-1], True)
            self._prev_ms[s[ends]], self._prev_v[s[ends]] = tx[ends], x[ends]
        return rank[keep], t_ms[keep], out[keep]
