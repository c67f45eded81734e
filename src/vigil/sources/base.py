"""The contract of a live source (`Source`) and what it yields: batches of samples per series.

A source is polled by the engine once per tick (`fetch(now)`); it returns, for each series
that has new samples, the series' labels and its new (time, value) pairs in time order.
Times are Unix seconds. A value may be NaN (a gap the source knows about). A source that
cannot reach its backend raises `SourceError` (the engine retries with backoff and counts
it); it never returns partial garbage. ``tests/sources/test_source_contract.py`` holds
every source to this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["SeriesBatch", "Source"]


@dataclass(frozen=True)
class SeriesBatch:
    """New samples of one series: `labels` includes the metric name as ``__name__``; `key`,
    when the source has it already, is `vigil.labels.series_key(labels)`."""

    labels: dict[str, str]
    t: np.ndarray  # float64 Unix seconds, increasing
    v: np.ndarray  # float64, NaN for a known gap
    key: str | None = None


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

    async def fetch(self, now: float) -> list[SeriesBatch]: ...

    async def close(self) -> None: ...

