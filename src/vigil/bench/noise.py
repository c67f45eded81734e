"""The noise suite's calm series: seeded generators of metrics that behave normally, with no incident.

Each family is a function of ``(n, step, start, rng)``: `n` samples, `step` seconds apart,
the first at `start` (epoch seconds, UTC), drawing only from `rng`. `series` seeds that
generator from (family, seed, step), so a series is the same on every machine and run, and
a family's series at another step is another draw. The suite starts at `START`, Monday
2024-01-01 00:00 UTC, so a week of samples holds a weekend on days 6 and 7.

Every event a detector opens on these series is a false alarm: nothing happens in them
but what the family's docstring says, day after day.

>>> sorted(FAMILIES) == sorted(["gaussian", "student_t3", "poisson_0.2", "poisson_50", "integer_gauge",
...                             "daily", "weekly", "random_walk", "zero_blips", "counter_rate"])
True
>>> bool((series("gaussian", 3, 10, 15.0) == series("gaussian", 3, 10, 15.0)).all())
True
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from vigil.errors import ConfigError
from vigil.state import FloatArray

__all__ = [
    "DAY",
    "FAMILIES",
    "START",
    "Family",
    "counter_rate",
    "daily",
    "gaussian",
    "integer_gauge",
    "poisson_0_2",
    "poisson_50",
    "random_walk",
    "rng_for",
    "series",
    "student_t3",
    "times",
    "weekly",
    "zero_blips",
]

DAY = 86400.0
START = 1704067200.0  # 2024-01-01T00:00:00Z, a Monday

Family = Callable[[int, float, float, np.random.Generator], FloatArray]


def times(n: int, step: float, start: float = START) -> FloatArray:
    """Epoch seconds of `n` samples `step` seconds apart from `start`.

    >>> times(3, 15.0).tolist() == [START, START + 15, START + 30]
    True
    """
    return start + step * np.arange(n, dtype=np.float64)


def _day_wave(t: FloatArray) -> FloatArray:
    """sin(2π · seconds of the day / 86400): 0 at midnight, 1 at 06:00, -1 at 18:00 UTC."""
    return np.sin(2.0 * np.pi * np.mod(t, DAY) / DAY)


def _weekend(t: FloatArray) -> npt.NDArray[np.bool_]:
    """True on Saturday and Sunday (UTC); 1970-01-01 was a Thursday, weekday 3 from Monday."""
    weekday = (np.floor_divide(t, DAY).astype(np.int64) + 3) % 7
    return np.asarray(weekday >= 5)


def gaussian(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """A steady level with Gaussian noise, like a latency or CPU share: 100 + N(0, 5)."""
    return 100.0 + rng.normal(0.0, 5.0, n)


def student_t3(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """A steady level with heavy tails, like request latency: 100 + 5·t(3) (no sample is an incident)."""
    return 100.0 + 5.0 * rng.standard_t(3, n)


def poisson_0_2(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """Rare events counted per step, like errors or restarts: Poisson(0.2), about 82 % zeros."""
    return rng.poisson(0.2, n).astype(np.float64)


def poisson_50(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """Busy counts per step, like requests per scrape: Poisson(50)."""
    return rng.poisson(50.0, n).astype(np.float64)


def integer_gauge(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """An integer that mostly stays put and moves by one, like open connections or busy workers.

    Starts at 20; at each step, with probability 0.05, it moves +1 or -1, tilted back towards
    20: P(+1) = 0.5 + 0.02·(20 - x), clipped to [0.1, 0.9].
    """
    moves = (rng.random(n) < 0.05).tolist()
    draws = rng.random(n).tolist()
    out = np.empty(n)
    x = 20
    for i in range(n):
        out[i] = x
        if moves[i]:
            x += 1 if draws[i] < min(0.9, max(0.1, 0.5 + 0.02 * (20 - x))) else -1
    return out


def daily(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """A daily cycle, like traffic or CPU of a service: 50 + 20·sin(2π·(seconds of day)/86400) + N(0, 2)."""
    return 50.0 + 20.0 * _day_wave(times(n, step, start)) + rng.normal(0.0, 2.0, n)


def weekly(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """A daily cycle whose weekends differ, like office traffic: nights alike, a lower peak at weekends.

    30 + 40·h on Monday to Friday and 30 + 10·h on Saturday and Sunday (UTC), plus N(0, 2),
    where h = (1 - cos(2π·(seconds of day)/86400)) / 2 goes from 0 at midnight to 1 at noon.
    """
    t = times(n, step, start)
    hump = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.mod(t, DAY) / DAY)
    return 30.0 + np.where(_weekend(t), 10.0, 40.0) * hump + rng.normal(0.0, 2.0, n)


def random_walk(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """Memory used in %, a slow bounded random walk pulled back towards 50.

    x₀ = 50, x_{i+1} = clip(x_i + N(0, 0.05·sqrt(step/15)) + 0.0005·(step/15)·(50 - x_i), 0, 100):
    the same walk per unit of time whatever the step. Its spread around 50 is about 1.6.
    """
    scale = step / 15.0
    steps = rng.normal(0.0, 0.05 * math.sqrt(scale), n).tolist()
    pull = 0.0005 * scale
    out = np.empty(n)
    x = 50.0
    for i in range(n):
        out[i] = x
        x = min(100.0, max(0.0, x + steps[i] + pull * (50.0 - x)))
    return out


def zero_blips(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """Flat zero with rare small blips, like a queue that is almost always empty.

    Each sample is a blip with probability step/21600 (about 4 a day at any step up to
    6 h), of a whole value from 1 to 4; else 0.
    """
    blip = rng.random(n) < min(1.0, step / 21600.0)
    return np.where(blip, rng.integers(1, 5, n), 0).astype(np.float64)


def counter_rate(n: int, step: float, start: float, rng: np.random.Generator) -> FloatArray:
    """The per-second rate of a request counter on a daily cycle, as Vigil derives it from the counter.

    Per step the counter grows by Poisson(λ·step), λ = 5 + 3·sin(2π·(seconds of day)/86400)
    per second (taken at the middle of the step); the series is the difference of
    consecutive counter values over the step, one rate per sample after the counter's first
    reading at `start` - `step`. Its mean is 5 per second.
    """
    middle = times(n, step, start) - step / 2.0
    counts = rng.poisson((5.0 + 3.0 * _day_wave(middle)) * step)
    counter = np.concatenate([[0], np.cumsum(counts)]).astype(np.float64)
    return np.diff(counter) / step


FAMILIES: dict[str, Family] = {
    "gaussian": gaussian,
    "student_t3": student_t3,
    "poisson_0.2": poisson_0_2,
    "poisson_50": poisson_50,
    "integer_gauge": integer_gauge,
    "daily": daily,
    "weekly": weekly,
    "random_walk": random_walk,
    "zero_blips": zero_blips,
    "counter_rate": counter_rate,
}


def rng_for(family: str, seed: int, step: float) -> np.random.Generator:
    """NumPy's default generator seeded by (family, seed, step); the family enters by its CRC-32.

    >>> float(rng_for("gaussian", 0, 15).random()) == float(rng_for("gaussian", 0, 15.0).random())
    True
    """
    if family not in FAMILIES:
        raise ConfigError(f"family is {family!r}; write one of {', '.join(FAMILIES)}")
    if int(seed) != seed or seed < 0 or int(step) != step or step < 1:
        raise ConfigError(f"seed {seed!r} and step {step!r}: write whole numbers, seed >= 0 and step >= 1 s")
    return np.random.default_rng([zlib.crc32(family.encode()), int(seed), int(step)])


def series(family: str, seed: int, n: int, step: float, start: float = START) -> FloatArray:
    """The `n` samples of one series of the suite: `family` drawn from its seeded generator.

    >>> x = series("poisson_0.2", 0, 1000, 15.0)
    >>> x.shape, bool((x >= 0).all()), bool((x == np.round(x)).all())
    ((1000,), True, True)
    """
    return FAMILIES[family](n, float(step), start, rng_for(family, seed, step))
