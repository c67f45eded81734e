"""Stream the noise suite through the pipeline `vigil run` builds and count the events it opens.

Every series of the suite is calm (`vigil.bench.noise`), so every event is a false alarm.
For one step, each (family, seed) is one series, one row of a single `Pipeline` built by
`vigil.engine.build_query_pipeline`; all rows share the suite's time grid and are fed in
blocks of `block` steps, as `vigil.bench.nab_run.run_detector` feeds a corpus. Rows are
independent (a detector's contract), so each series runs as if it was watched alone.
What counts is `Result.opened`: an event opened at that sample, the moment `vigil run`
notifies (an escalation that ends one event and opens the next counts as a new one).

The rate reported is false events per series-day: events / (series × simulated days),
per family, for the family with the most, and for the whole suite; and the same on the
even seeds (the *choose* half, on which later work may choose settings) and the odd
seeds (the *check* half, on which it reports them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vigil.bench.nab_run import DEFAULT_BLOCK, detection, warm_up
from vigil.bench.noise import DAY, FAMILIES, START, series, times
from vigil.config import Detection
from vigil.config.values import duration_text, parse_duration
from vigil.engine import build_query_pipeline
from vigil.errors import ConfigError
from vigil.state import FloatArray, IntArray

__all__ = [
    "DEFAULT_SEEDS",
    "DEFAULT_STEPS",
    "HALVES",
    "Half",
    "NoiseRun",
    "Tally",
    "check_days",
    "check_seeds",
    "count_events",
    "default_days",
    "parse_step",
    "run_noise",
]

DEFAULT_SEEDS = 20
DEFAULT_STEPS = ("15s", "1m", "1h")
_POINTS = 80_640  # a series' default length: 14 days at 15 s, 56 days at 1 min
_MIN_DAYS, _MAX_DAYS = 14, 730
_MAX_STEP = 21_600.0  # zero_blips' blip probability is step / 6 h

Half = Literal["all", "choose", "check"]
HALVES: dict[Half, slice] = {"all": slice(None), "choose": slice(0, None, 2), "check": slice(1, None, 2)}


def parse_step(text: str) -> float:
    """A step such as ``15s`` in seconds: a whole number from 1 s to 6 h.

    >>> parse_step("15s"), parse_step("1h")
    (15.0, 3600.0)
    """
    try:
        step = parse_duration(text)
    except ValueError:
        step = math.nan
    if not (1.0 <= step <= _MAX_STEP and step == int(step)):
        raise ConfigError(f"step is {text!r}; write a whole number of seconds from 1s to 6h, such as 15s, 1m or 1h")
    return step


def check_seeds(seeds: int) -> int:
    if seeds < 2:
        raise ConfigError(f"seeds is {seeds}; write a whole number >= 2 (even seeds choose, odd seeds check)")
    return seeds


def check_days(days: float, step: float) -> float:
    if not (math.isfinite(days) and days * DAY >= 2 * step):
        raise ConfigError(f"days is {days:g}; write a number of days that holds at least two steps of {duration_text(step)}")
    return days


def default_days(step: float) -> int:
    """Days simulated at `step`: 80,640 samples' worth, at least 14 days (two weeks) and at most 730 (two years).

    >>> default_days(15.0), default_days(60.0), default_days(300.0), default_days(3600.0)
    (14, 56, 280, 730)
    """
    return min(_MAX_DAYS, max(_MIN_DAYS, math.ceil(_POINTS * step / DAY)))


def count_events(
    t: FloatArray,
    x: FloatArray,
    settings: Detection,
    block: int = DEFAULT_BLOCK,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[IntArray], float]:
    """Stream the rows of `x` through one pipeline and say where events opened.

    Parameters
    ----------
    t
        Epoch seconds of the samples, shape (steps,), shared by every row.
    x
        The series, shape (series, steps); NaN is a missing sample.
    settings
        The detection settings (``detection:`` keys of a query).
    block
        Steps per `Pipeline.update` call. Results do not depend on it.
    clock
        Measures the seconds returned: the updates alone, after a warm-up that compiles
        numba's code.

    Returns
    -------
    Per row, the sample indices where an event opened; and the seconds.

    Examples
    --------
    >>> x = np.full((2, 1000), 50.0); x[1, 500] = 80  # flat, and flat with one spike
    >>> opened, _ = count_events(60.0 * np.arange(1000), x, Detection(), block=256)
    >>> [a.tolist() for a in opened]
    [[], [500]]
    """
    if int(block) != block or block < 1:
        raise ConfigError(f"block is {block!r}; write a whole number >= 1")
    n_rows, n = x.shape
    if t.shape != (n,):
        raise ValueError(f"t {t.shape} does not fit x {x.shape}: one time per step")
    pipeline = build_query_pipeline(settings, "bench noise")
    warm_up(settings)
    pipeline.resize(n_rows)
    rows = np.arange(n_rows)
    found: list[list[IntArray]] = [[] for _ in range(n_rows)]
    started = clock()
    for a in range(0, n, int(block)):
        xb = x[:, a : a + int(block)]
        tb = np.tile(t[a : a + int(block)], (n_rows, 1))
        opened = pipeline.update(rows, tb, xb).opened
        for row in np.flatnonzero(opened.any(axis=1)).tolist():
            found[row].append(a + np.flatnonzero(opened[row]))
    seconds = clock() - started
    empty = np.zeros(0, dtype=np.intp)
    return [np.concatenate(f).astype(np.intp) if f else empty for f in found], seconds


@dataclass(frozen=True)
class Tally:
    """Events opened on some series over some days, and their rate per series-day."""

    events: int
    series_days: float

    @property
    def rate(self) -> float:
        """False events per series-day (NaN over no series).

        >>> Tally(7, 280.0).rate
        0.025
        """
        return self.events / self.series_days if self.series_days > 0 else math.nan


@dataclass(frozen=True)
class NoiseRun:
    """The events one detector opened on the suite at one step.

    `opened[f * seeds + s]` holds the sample indices where events opened on seed `s` of
    family `families[f]`; `seconds` is the wall time of the pipeline's updates.
    """

    name: str
    step: float
    days: float
    seeds: int
    families: tuple[str, ...]
    opened: list[IntArray]
    seconds: float

    @property
    def n(self) -> int:
        """Samples per series."""
        return _samples(self.days, self.step)

    @property
    def points(self) -> int:
        return self.n * len(self.opened)

    @property
    def points_per_second(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else math.inf

    def events(self) -> IntArray:
        """Events per series, shaped (families, seeds)."""
        counts = np.array([a.size for a in self.opened], dtype=np.intp)
        return counts.reshape(len(self.families), self.seeds)

    def tally(self, family: str | None = None, half: Half = "all") -> Tally:
        """Events and series-days of one family (None: every family), on the seeds of `half`."""
        events = self.events()
        if family is not None:
            events = events[[self.families.index(family)]]
        chosen = events[:, HALVES[half]]
        return Tally(int(chosen.sum()), chosen.size * self.days)

    def largest(self, half: Half = "all") -> tuple[str, Tally]:
        """The family with the most false events per series-day (the first of a tie) and its tally."""
        tallies = [(f, self.tally(f, half)) for f in self.families]
        return max(tallies, key=lambda item: item[1].rate)


def _samples(days: float, step: float) -> int:
    return max(2, int(round(days * DAY / step)))


def run_noise(
    step: float,
    days: float | None = None,
    seeds: int = DEFAULT_SEEDS,
    name: str = "default",
    settings: Detection | None = None,
    families: Sequence[str] = tuple(FAMILIES),
    block: int = DEFAULT_BLOCK,
    clock: Callable[[], float] = time.perf_counter,
) -> NoiseRun:
    """Generate seeds 0..`seeds`-1 of every family at `step` over `days` and count the events opened.

    `days` defaults to `default_days(step)`; `name` is a bench entry
    (`vigil.bench.nab_run.bench_names`) whose settings run unless `settings` is given.

    >>> r = run_noise(3600.0, days=30, seeds=2, families=["gaussian", "zero_blips"])
    >>> r.n, r.events().shape, r.tally().series_days
    (720, (2, 2), 120.0)
    """
    check_seeds(seeds)
    days = float(default_days(step) if days is None else check_days(days, step))
    d = settings if settings is not None else detection(name)
    n = _samples(days, step)
    x = np.empty((len(families) * seeds, n))
    for f, family in enumerate(families):
        for s in range(seeds):
            x[f * seeds + s] = series(family, s, n, step)
    opened, seconds = count_events(times(n, step, START), x, d, block, clock)
    return NoiseRun(name, step, days, seeds, tuple(families), opened, seconds)
