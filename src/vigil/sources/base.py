"""What every live source yields: batches of samples per series.

A source is polled by the engine once per tick (`fetch(now)`); it returns, for each series
that has new samples, the series' labels and its new (time, value) pairs in time order.
Times are Unix seconds. A value may be NaN (a gap the source knows about). A source that
cannot reach its backend raises `SourceError` (the engine retries with backoff and counts
it); it never returns partial garbage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["SeriesBatch", "Source"]


@dataclass(frozen=True)
class SeriesBatch:
    """New samples of one series: `labels` includes the metric name as ``__name__``."""

    labels: dict[str, str]
    t: np.ndarray  # float64 Unix seconds, increasing
    v: np.ndarray  # float64, NaN for a known gap


class Source(Protocol):
    """A live source of samples for one named query (`name` is the `query` label)."""

    name: str
    interval: float  # seconds between samples of a series (the step)

    async def fetch(self, now: float) -> list[SeriesBatch]: ...

    async def close(self) -> None: ...

