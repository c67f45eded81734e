"""The contract of a live source (`Source`) and what it yields: batches of samples per series.

A source is polled by the engine once per tick (`fetch(now)`); it returns, for each series
that has new samples, the series' labels and its new (time, value) pairs in time order.
Times are Unix seconds. A value may be NaN (a gap the source knows about). A source that
cannot reach its backend raises `SourceError` (the engine retries with backoff and counts
it); it never returns partial garbage. A source of a few series returns a list of
`SeriesBatch`; one of many returns `Samples`, the same sequence held column-wise, which
the engine takes in without a step per series. ``tests/sources/test_source_contract.py`` holds
every source to this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload

import numpy as np

from vigil.labels import series_key

__all__ = ["Samples", "SeriesBatch", "Source"]


@dataclass(frozen=True)
class SeriesBatch:
    """New samples of one series: `labels` includes the metric name as ``__name__``; `key`,
    when the source has it already, is `vigil.labels.series_key(labels)`."""

    labels: dict[str, str]
    t: np.ndarray  # float64 Unix seconds, increasing
    v: np.ndarray  # float64, NaN for a known gap
    key: str | None = None


class Samples(Sequence[SeriesBatch]):
    """New samples of many series, column-wise: series ``i`` is `keys` ``[i]`` with `labels`
    ``[i]``, and its points are ``t[offsets[i]:offsets[i + 1]]`` with the values `v` alongside.

    As a sequence it holds one `SeriesBatch` per series, made when asked for.

    >>> s = Samples.from_batches([SeriesBatch({"__name__": "up"}, np.array([1.0, 2.0]), np.array([1.0, 0.0]))])
    >>> s.keys, s.offsets.tolist(), s[0].v.tolist()
    (['up{}'], [0, 2], [1.0, 0.0])
    """

    __slots__ = ("keys", "labels", "offsets", "t", "v")

    def __init__(
        self, keys: list[str], labels: list[dict[str, str]], offsets: np.ndarray, t: np.ndarray, v: np.ndarray
    ) -> None:
        if not (len(keys) == len(labels) == offsets.size - 1 and t.shape == v.shape == (int(offsets[-1]),)):
            raise ValueError(f"{len(keys)} keys, {len(labels)} labels, {offsets.size} offsets, t {t.shape}, v {v.shape}")
        self.keys, self.labels, self.offsets, self.t, self.v = keys, labels, offsets, t, v

    @classmethod
    def from_batches(cls, batches: Sequence[SeriesBatch]) -> Samples:
        if isinstance(batches, Samples):
            return batches
        counts = np.fromiter((len(b.t) for b in batches), dtype=np.int64, count=len(batches))
        offsets = np.concatenate(([0], np.cumsum(counts)))
        empty = np.empty(0, dtype=np.float64)
        t = np.concatenate([np.asarray(b.t, dtype=np.float64) for b in batches]) if batches else empty
        v = np.concatenate([np.asarray(b.v, dtype=np.float64) for b in batches]) if batches else empty
        keys = [b.key or series_key(b.labels) for b in batches]
        return cls(keys, [b.labels for b in batches], offsets, t, v)

    def take(self, which: list[int]) -> Samples:
        """These series only, in this order."""
        counts = self.counts()[which]
        starts = self.offsets[which]
        at = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(int(counts.sum()))
        return Samples(
            [self.keys[i] for i in which], [self.labels[i] for i in which],
            np.concatenate(([0], np.cumsum(counts))), self.t[at], self.v[at],
        )

    def counts(self) -> np.ndarray:
        """Points of each series."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, i: int) -> SeriesBatch: ...

    @overload
    def __getitem__(self, i: slice) -> list[SeriesBatch]: ...

    def __getitem__(self, i: int | slice) -> SeriesBatch | list[SeriesBatch]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("series index out of range")
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return SeriesBatch(self.labels[i], self.t[a:b], self.v[a:b], self.keys[i])

    def __eq__(self, other: Any) -> bool:
        return list(self) == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Samples({len(self)} series, {self.t.size} points)"


class Source(Protocol):
    """A live source of samples for one named query (`name` is the `query` label).

    The engine calls `validate` once at start, then `fetch(now)` every `interval` seconds,
    and `close` at stop. `fetch` returns the samples that are new since the previous call
    (none: ``[]``) and raises `SourceUnavailable` when its backend is down (or slower than
    the source's timeout, if it has one); it never blocks the event loop. A source that can check
    its query before the first fetch does so in `validate`, raising `QueryRejected` for a
    query its backend refuses; subclasses inherit a `validate` with nothing to check.
    """

    name: str
    interval: float  # seconds between samples of a series (the step)

    async def validate(self) -> None:
        """Check what can be checked before the first fetch; by default there is nothing to check."""
        return None

    async def fetch(self, now: float) -> Sequence[SeriesBatch]: ...

    async def close(self) -> None: ...

