"""Test sources: a source whose replies the test queues, and a CSV with a spike to replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vigil.sources.base import SeriesBatch


class FakeSource:
    """A source whose replies are queued by the test: batches, or an exception to raise."""

    def __init__(self, name: str = "q", interval: float = 15.0) -> None:
        self.name = name
        self.interval = interval
        self.replies: list[list[SeriesBatch] | BaseException] = []
        self.calls: list[float] = []
        self.closed = False

    async def fetch(self, now: float) -> list[SeriesBatch]:
        self.calls.append(now)
        reply = self.replies.pop(0) if self.replies else []
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def close(self) -> None:
        self.closed = True


def spike_csv(path: Path, rows: int = 240, spike: int = 200) -> None:
    """A `cpu` column, one sample a minute around 40, and 95 for three rows from `spike`."""
    values = 40 + np.random.default_rng(7).normal(0, 1.5, rows)
    values[spike : spike + 3] = 95.0
    lines = ["timestamp,cpu"] + [f"{1_700_000_000 + 60 * i},{v:.3f}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
