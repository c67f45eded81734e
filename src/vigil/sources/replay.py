"""Replays a CSV file (seed format or ``timestamp,value``) as a live series.

The file's first sample is shown at the time the replay starts, and its time runs `speed`
times faster than the clock: with ``speed: 60`` a file of one sample per minute gives one
sample per second. Samples carry wall-clock times, so the exported `vigil_*` metrics line
up with everything else Prometheus scrapes. The metric name is the value column's name in
lower case (the seed's ``CPU_Utilization`` becomes ``cpu_utilization``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vigil.errors import DataError
from vigil.sources.base import SeriesBatch, Source
from vigil.sources.csv import read_csv

__all__ = ["ReplaySource"]


class ReplaySource(Source):
    """One CSV file replayed at `speed` times real time, from the first call to `fetch`."""

    def __init__(
        self,
        name: str,
        path: str | Path,
        value_column: str | None = None,
        speed: float = 1.0,
        loop: bool = False,
    ) -> None:
        data = read_csv(path, [value_column] if value_column else None, skip_bad_rows=True)
        finite = np.isfinite(data.t)
        self.t = data.t[finite] - data.t[finite][0] if finite.any() else data.t[:0]
        self.v = data.values[finite] if data.values.ndim == 1 else data.values[finite, 0]
        if self.t.size < 2:
            raise DataError(f"{path}: needs at least two rows with a time and a value to replay")
        self.name = name
        self.speed = float(speed)
        self.loop = loop
        self.metric = re.sub(r"[^a-zA-Z0-9_:]", "_", data.columns[0]).lower()
        step = float(np.median(np.diff(self.t)))
        self.interval = max(step / self.speed, 0.05)
        self._span = float(self.t[-1]) + step  # one pass of the file, in file seconds
        self._start: float | None = None
        self._done = -1.0  # file seconds up to which samples were emitted (across loops)

    async def fetch(self, now: float) -> list[SeriesBatch]:
        if self._start is None:
            self._start = now
        upto = (now - self._start) * self.speed
        if not self.loop:
            upto = min(upto, self._span)
        if upto <= self._done:
            return []
        lap = max(np.floor(self._done / self._span), 0.0)
        times, values = [], []
        while lap * self._span <= upto:
            base = lap * self._span
            pick = (self.t + base > self._done) & (self.t + base <= upto)
            times.append(self.t[pick] + base)
            values.append(self.v[pick])
            lap += 1
            if not self.loop:
                break
        self._done = upto
        t = np.concatenate(times)
        if not t.size:
            return []
        wall = self._start + t / self.speed
        return [SeriesBatch({"__name__": self.metric}, wall, np.concatenate(values))]

    async def close(self) -> None:
        return None
