"""Backtest: replay a recorded series through a pipeline, as `vigil run` would see it live.

`run_backtest` feeds a `CsvSeries` to a `Pipeline` block by block (one series, row 0),
collects every per-point output and the events; `write_results_csv` writes the points.
The pipeline is the same object `vigil run` uses, so a backtest shows what the live
service would have reported on that data, sample for sample; `event_record` makes each
event the record the live engine makes, so it becomes the same event document.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vigil.detection.decision import Event
from vigil.detection.pipeline import Pipeline
from vigil.engine.records import EventRecord
from vigil.errors import ConfigError, DataError
from vigil.formatting import iso_times
from vigil.labels import series_key
from vigil.sources.csv import CsvSeries
from vigil.state import FloatArray

__all__ = [
    "BACKTEST_QUERY",
    "BacktestResult",
    "event_record",
    "multivariate_params",
    "run_backtest",
    "write_results_csv",
]

DEFAULT_CHUNK = 2048
BACKTEST_QUERY = "backtest"  # the query name of a backtest's events


@dataclass(frozen=True)
class BacktestResult:
    """Per-point outputs of a backtest, each of shape (n,), and the events.

    `value` is the observed value (the first value column of a multivariate series).
    `score` is the anomaly score in [0, 1] (NaN: no opinion); `hot` says the score was
    over the threshold and the gates passed; `anomalous` that an event was open after
    the point. `events` are in order of start; those still open at the end of the data
    have ``state == "firing"`` and ``ended_at is None``. Times are epoch seconds.
    """

    t: FloatArray
    value: FloatArray
    expected: FloatArray
    lower: FloatArray
    upper: FloatArray
    score: FloatArray
    hot: np.ndarray
    anomalous: np.ndarray
    warming_up: np.ndarray
    invalid: np.ndarray
    events: list[Event]
    threshold: float
    columns: tuple[str, ...] = ()
    members: dict[str, FloatArray] = field(default_factory=dict)
    elapsed: float = 0.0  # seconds spent in the pipeline

    @property
    def anomaly(self) -> np.ndarray:
        """1 where the point is hot while an event is open: the ``vigil_anomaly`` gauge."""
        out: np.ndarray = self.hot & self.anomalous
        return out

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def points_per_second(self) -> float:
        return len(self) / self.elapsed if self.elapsed > 0 else float("inf")


def multivariate_params(
    detector: str, params: dict[str, dict[str, Any]] | None, dims: int
) -> dict[str, dict[str, Any]]:
    """`params` completed for a series of `dims` values per sample.

    ``iforest`` reads several values per sample with ``features="raw"`` and
    ``dims=dims``; those are filled in unless given. Other detectors are left alone (the
    pipeline says clearly if they cannot take such samples).

    >>> multivariate_params("iforest", {"iforest": {"window": 50}}, 3)
    {'iforest': {'window': 50, 'features': 'raw', 'dims': 3}}
    >>> multivariate_params("ewma", None, 1)
    {}
    """
    out = {name: dict(p) for name, p in (params or {}).items()}
    if dims > 1 and detector == "iforest":
        own = out.setdefault("iforest", {})
        own.setdefault("features", "raw")
        own.setdefault("dims", dims)
    return out


def run_backtest(
    series: CsvSeries,
    pipeline: Pipeline,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BacktestResult:
    """Feed `series` through `pipeline` (as row 0) in blocks of `chunk` points.

    Parameters
    ----------
    series
        The data, sorted by time (as `read_csv` returns it).
    pipeline
        A fresh pipeline; its row 0 is used (made if missing).
    chunk
        Points per `Pipeline.update` call. Results do not depend on it.
    progress
        Called after each block with the number of points done so far.
    clock
        Measures the time spent, for `BacktestResult.points_per_second`.

    Examples
    --------
    >>> import numpy as np
    >>> from vigil.detection.pipeline import build_pipeline
    >>> x = 50 + np.random.default_rng(1).normal(0, 1, 500); x[400] = 80
    >>> s = CsvSeries(t=np.arange(500) * 60.0, values=x, columns=("cpu",))
    >>> r = run_backtest(s, build_pipeline("default"), chunk=128)
    >>> [(e.started_at, e.state, e.observed) for e in r.events], int(np.argmax(r.anomaly))
    ([(24000.0, 'resolved', 80.0)], 400)
    """
    if int(chunk) != chunk or chunk < 1:
        raise ConfigError(f"chunk is {chunk!r}; write a whole number >= 1")
    values = np.asarray(series.values, dtype=np.float64)
    t = np.asarray(series.t, dtype=np.float64)
    n = t.shape[0]
    if values.ndim not in (1, 2) or values.shape[0] != n:
        raise DataError(f"values of shape {values.shape} do not fit {n} timestamps")
    if pipeline.n_rows < 1:
        pipeline.resize(1)
    rows = np.array([0])
    out = {name: np.full(n, np.nan) for name in ("score", "expected", "lower", "upper")}
    flags = {
        name: np.zeros(n, dtype=bool) for name in ("hot", "anomalous", "warming_up", "invalid")
    }
    members = {name: np.full(n, np.nan) for name, _ in pipeline.members}
    latest: dict[int, Event] = {}  # event number -> its latest state
    started = clock()
    for a in range(0, n, int(chunk)):
        b = min(a + int(chunk), n)
        r = pipeline.update(rows, t[None, a:b], values[None, a:b])
        for name, column in (*out.items(), *flags.items()):
            column[a:b] = getattr(r, name)[0]
        for name, arr in r.members.items():
            members[name][a:b] = arr[0]
        for e in r.events:
            latest[e.number] = e
        if progress is not None:
            progress(b)
    for e in pipeline.open_events():
        if e.row == 0:
            latest[e.number] = e
    elapsed = clock() - started
    return BacktestResult(
        t=t,
        value=values if values.ndim == 1 else values[:, 0],
        events=sorted(latest.values(), key=lambda e: (e.started_at, e.number)),
        threshold=pipeline.decision.config.threshold,
        columns=series.columns,
        members=members,
        elapsed=elapsed,
        **out,
        **flags,
    )


def event_record(event: Event, result: BacktestResult, series: dict[str, str], detector: str) -> EventRecord:
    """An event of the backtest as the live engine records its own, for the one event document
    (`vigil.outputs.event.event_json`).

    `series` are the labels that name the series (for a backtest: file and column); the
    query is `BACKTEST_QUERY`, and the recent points come from the whole result.
    """
    recent = {
        "t": result.t, "value": result.value, "expected": result.expected, "lower": result.lower,
        "upper": result.upper, "score": result.score,
    }
    return EventRecord(
        event, BACKTEST_QUERY, series_key(series), dict(series), detector, result.threshold, recent
    )


def write_results_csv(result: BacktestResult, path: str | Path) -> None:
    """Write one line per point: timestamp (ISO-8601 UTC), value, expected, lower, upper,
    score, anomaly (1 while hot with an event open, else 0), warming_up (0/1).

    Missing numbers (no opinion yet, a missing value) are empty cells.
    """
    numbers = [result.value, result.expected, result.lower, result.upper, result.score]
    columns = [
        iso_times(result.t),
        *(_format_column(col) for col in numbers),
        np.where(result.anomaly, "1", "0").tolist(),
        np.where(result.warming_up, "1", "0").tolist(),
    ]
    header = "timestamp,value,expected,lower,upper,score,anomaly,warming_up\n"
    body = "\n".join(
        map(",".join, zip(*columns, strict=True))
    )  # numbers and times: nothing to quote
    try:
        Path(path).write_text(header + body + ("\n" if body else ""), encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write {path} ({exc.strerror})") from exc


def _format_column(col: FloatArray) -> list[str]:
    """Shortest round-trip text of each float; NaN as an empty cell."""
    out = list(map(repr, col.tolist()))
    for i in np.flatnonzero(np.isnan(col)).tolist():
        out[i] = ""
    return out
