"""The demo service's simulated traffic, gauges and injections, as a pure function of seed and clock.

Nothing is served for real: a background task simulates the traffic of a small HTTP API
every ``tick`` seconds (default 0.25). Everything is a pure function of the seed and of the
app's clock, so two apps with the same seed, created and read at the same clock values,
expose the same metrics, and a test can drive the clock instead of sleeping:

- the gauges are computed at scrape time from the clock: a daily sine whose period is
  ``day_seconds`` (peak at 0.625 of the "day", 15:00 for a real day), plus noise drawn from
  a generator seeded by ``(seed, tick index)``;
- the counters and the histogram add, for every tick index ``k`` from the app's creation
  up to the clock's current tick, the requests drawn from a generator seeded by
  ``(seed, k)``. Ticks are caught up whenever the background task runs and before every
  scrape or injection, so the values do not depend on when the task ran. A clock jump of
  more than ``max_catchup`` seconds (default 60) simulates only the last ``max_catchup``
  seconds of it.

Metrics (all on the app's own registry, never the global one):

==========================================  =========  ==============================
``demo_http_requests_total``                counter    ``method``, ``route``, ``status``
``demo_http_request_duration_seconds``      histogram  ``route``
``demo_cpu_utilization``                    gauge      percent, 0 to 100
``demo_queue_depth``                        gauge      jobs waiting
``demo_inflight_requests``                  gauge      requests being served
==========================================  =========  ==============================

Injections (``POST /inject`` with ``{"kind", "magnitude", "duration"}``):

- ``spike``: adds ``magnitude`` percentage points to the CPU (default 50, 0 < m <= 100);
- ``shift``: moves the CPU baseline by ``magnitude`` points (default 20, -100 <= m <= 100,
  not 0); ``"duration": null`` makes it permanent;
- ``latency``: multiplies request durations by ``magnitude`` (default 5, 0 < m <= 100);
  the in-flight count and the queue grow with it (Little's law);
- ``errors``: sets the share of 5xx answers to ``magnitude`` (default 0.5, 0 < m <= 1).

``duration`` is in seconds (default 60). Several injections add up: spikes and shifts add,
latency factors multiply, and the largest error share wins.

Examples
--------
>>> sim = Simulation(seed=3, day_seconds=600.0, tick=0.25, clock=lambda: 1000.0)
>>> calm = sim.cpu(1000.0)
>>> 0.0 < calm < 60.0
True
>>> _ = sim.inject(InjectionRequest(kind="spike", magnitude=50.0, duration=10.0))
>>> round(sim.cpu(1000.0) - calm, 6), round(sim.cpu(1010.0) - sim.cpu(1010.0, effects=False), 6)
(50.0, 0.0)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from vigil.errors import ConfigError
from vigil.tools.demo_injections import MAX_INJECTIONS, Injection, InjectionRequest

__all__ = ["Simulation"]

# Traffic model: total requests per second at the daily mean, then per route its share,
# median duration (seconds), log-normal sigma, and the status of a success and of a
# client error.
_BASE_RPS = 50.0


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    share: float
    median: float
    sigma: float
    ok: str
    client_error: str
    client_error_share: float


_ROUTES = (
    _Route("GET", "/api/items", 0.45, 0.040, 0.35, "200", "404", 0.002),
    _Route("GET", "/api/items/{id}", 0.30, 0.025, 0.30, "200", "404", 0.03),
    _Route("POST", "/api/orders", 0.15, 0.120, 0.40, "201", "400", 0.01),
    _Route("GET", "/api/search", 0.10, 0.250, 0.50, "200", "400", 0.005),
)
# Column order of the request counts: success, client error, 500, 503.
_STATUS_COLUMNS = 4
_BASE_ERROR_SHARE = 0.004
_SHARE_503 = 0.3  # of the 5xx answers
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

# Gauges: CPU percent = _CPU_MEAN + _CPU_AMPLITUDE * shape + noise (sd _CPU_NOISE).
_CPU_MEAN, _CPU_AMPLITUDE, _CPU_NOISE = 30.0, 15.0, 1.5
_LOAD_AMPLITUDE = 0.6  # requests per second = _BASE_RPS * (1 + _LOAD_AMPLITUDE * shape)
_PEAK_AT = 0.625  # fraction of the day where the sine peaks
_STREAM_GAUGES, _STREAM_TRAFFIC = 0, 1


@dataclass(frozen=True)
class _Effects:
    cpu_add: float = 0.0
    latency_factor: float = 1.0
    error_share: float = _BASE_ERROR_SHARE


def _rng(seed: int, stream: int, k: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, k % 2**63])


class Simulation:
    """The demo service's state: simulated traffic, gauges and injections.

    Thread-safe: every public method holds one lock.

    Parameters
    ----------
    seed
        Non-negative integer; the same seed and clock give the same metrics.
    day_seconds
        Period of the daily shape, in seconds.
    tick
        Seconds between simulated traffic steps.
    clock
        Returns the current time in seconds (``time.time`` for real use).
    max_catchup
        Longest clock jump, in seconds, that is simulated tick by tick.
    """

    def __init__(
        self,
        seed: int = 0,
        day_seconds: float = 86400.0,
        tick: float = 0.25,
        clock: Callable[[], float] = time.time,
        max_catchup: float = 60.0,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"demo app: seed is {seed!r}; give a non-negative integer")
        for name, value in (
            ("day_seconds", day_seconds),
            ("tick", tick),
            ("max_catchup", max_catchup),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"demo app: {name} is {value!r}; give a positive number of seconds"
                )
        self.seed = seed
        self.day_seconds = float(day_seconds)
        self.tick = float(tick)
        self.clock = clock
        self._max_ticks = max(1, math.ceil(max_catchup / self.tick))
        self._lock = threading.RLock()
        self._injections: list[Injection] = []
        self._next_id = 1
        self._requests = np.zeros((len(_ROUTES), _STATUS_COLUMNS), dtype=np.int64)
        self._buckets = np.zeros((len(_ROUTES), len(_BUCKETS) + 1), dtype=np.int64)
        self._duration_sum = np.zeros(len(_ROUTES), dtype=np.float64)
        self._bounds = np.asarray(_BUCKETS, dtype=np.float64)
        self._last_tick = self._tick_index(clock())
        self._noise_cache: tuple[int, tuple[float, float, float]] | None = None

    # --- shapes ------------------------------------------------------------------------

    def _tick_index(self, t: float) -> int:
        return math.floor(t / self.tick)

    def shape(self, t: float) -> float:
        """The daily shape at time ``t``, from -1 (night) to 1 (afternoon peak)."""
        return math.sin(2.0 * math.pi * (t / self.day_seconds - _PEAK_AT + 0.25))

    def rate(self, t: float) -> float:
        """Requests per second at time ``t`` (injections do not change it)."""
        return _BASE_RPS * (1.0 + _LOAD_AMPLITUDE * self.shape(t))

    def _noise(self, t: float) -> tuple[float, float, float]:
        """Standard normal noise for the gauges at ``t``: cpu, queue, inflight."""
        k = self._tick_index(t)
        if self._noise_cache is None or self._noise_cache[0] != k:
            z = _rng(self.seed, _STREAM_GAUGES, k).standard_normal(3)
            self._noise_cache = (k, (float(z[0]), float(z[1]), float(z[2])))
        return self._noise_cache[1]

    def _effects(self, t: float) -> _Effects:
        cpu_add, latency, errors = 0.0, 1.0, _BASE_ERROR_SHARE
        for inj in self._injections:
            if not inj.active(t):
                continue
            if inj.kind in ("spike", "shift"):
                cpu_add += inj.magnitude
            elif inj.kind == "latency":
                latency *= inj.magnitude
            else:
                errors = max(errors, inj.magnitude)
        return _Effects(cpu_add, latency, errors)

    def _mean_duration(self, t: float, latency_factor: float) -> float:
        """Mean request duration over all routes, seconds (busier hours are a bit slower)."""
        slowdown = 1.0 + 0.2 * self.shape(t)
        mean = sum(r.share * r.median * math.exp(r.sigma**2 / 2.0) for r in _ROUTES)
        return mean * slowdown * latency_factor

    # --- gauges ------------------------------------------------------------------------

    def cpu(self, t: float, *, effects: bool = True) -> float:
        """CPU utilisation in percent at time ``t``, clipped to [0, 100]."""
        with self._lock:
            value = _CPU_MEAN + _CPU_AMPLITUDE * self.shape(t) + _CPU_NOISE * self._noise(t)[0]
            if effects:
                value += self._effects(t).cpu_add
            return min(100.0, max(0.0, value))

    def queue_depth(self, t: float) -> float:
        """Jobs waiting at time ``t``: follows the load, grows with injected latency."""
        with self._lock:
            factor = self._effects(t).latency_factor
            depth = self.rate(t) / 10.0 * factor + self._noise(t)[1]
            return float(max(0, round(depth)))

    def inflight(self, t: float) -> float:
        """Requests in flight at time ``t``: rate times mean duration (Little's law)."""
        with self._lock:
            factor = self._effects(t).latency_factor
            busy = self.rate(t) * self._mean_duration(t, factor)
            return float(max(0, round(busy + math.sqrt(busy) * self._noise(t)[2])))

    # --- traffic -----------------------------------------------------------------------

    @property
    def simulated_until(self) -> float:
        """Start time of the last simulated tick, in clock seconds."""
        with self._lock:
            return self._last_tick * self.tick

    def advance(self, now: float | None = None) -> int:
        """Simulate every tick up to ``now`` (default: the clock); return how many ran."""
        with self._lock:
            now = self.clock() if now is None else now
            target = self._tick_index(now)
            if target <= self._last_tick:
                return 0
            first = max(self._last_tick + 1, target - self._max_ticks + 1)
            for k in range(first, target + 1):
                self._simulate_tick(k)
            self._last_tick = target
            return target - first + 1

    def _simulate_tick(self, k: int) -> None:
        t = k * self.tick
        rng = _rng(self.seed, _STREAM_TRAFFIC, k)
        eff = self._effects(t)
        rate = self.rate(t)
        slowdown = (1.0 + 0.2 * self.shape(t)) * eff.latency_factor
        share_500 = eff.error_share * (1.0 - _SHARE_503)
        for r, route in enumerate(_ROUTES):
            n = int(rng.poisson(rate * route.share * self.tick))
            if n == 0:
                continue
            u = rng.random(n)
            durations = route.median * slowdown * np.exp(route.sigma * rng.standard_normal(n))
            # status: 500, then 503, then the client error, then success
            col = np.full(n, 0, dtype=np.int64)
            col[u < eff.error_share + route.client_error_share] = 1
            col[u < eff.error_share] = 3
            col[u < share_500] = 2
            durations[col == 3] *= 0.1  # an overloaded backend answers 503 fast
            self._requests[r] += np.bincount(col, minlength=_STATUS_COLUMNS)
            idx = np.searchsorted(self._bounds, durations, side="left")
            self._buckets[r] += np.bincount(idx, minlength=len(_BUCKETS) + 1)
            self._duration_sum[r] += float(durations.sum())

    # --- injections --------------------------------------------------------------------

    def inject(self, request: InjectionRequest, now: float | None = None) -> Injection:
        """Start an injection now; raise `OverflowError` past 64 active ones."""
        with self._lock:
            now = self.clock() if now is None else now
            self.advance(now)
            self._prune(now)
            if len(self._injections) >= MAX_INJECTIONS:
                raise OverflowError(
                    f"{len(self._injections)} injections are active already; "
                    "DELETE /inject clears them"
                )
            ends = None if request.duration is None else now + request.duration
            inj = Injection(self._next_id, request.kind, request.value, now, ends)
            self._next_id += 1
            self._injections.append(inj)
            return inj

    def _prune(self, now: float) -> None:
        # Safe once the ticks up to ``now`` are simulated: an ended injection is not needed.
        self._injections = [
            i
            for i in self._injections
            if i.ends_at is None or i.ends_at > now or i.started_at > now
        ]

    def active(self, now: float | None = None) -> list[Injection]:
        """Injections in force at ``now`` (default: the clock)."""
        with self._lock:
            now = self.clock() if now is None else now
            self.advance(now)
            self._prune(now)
            return [i for i in self._injections if i.active(now)]

    def clear(self, now: float | None = None) -> int:
        """End every injection now; return how many were active."""
        with self._lock:
            n = len(self.active(now))
            self._injections = []
            return n

    # --- exposition --------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """Metric families at the clock's current time (the registry calls this)."""
        with self._lock:
            now = self.clock()
            self.advance(now)
            gauges = (self.cpu(now), self.queue_depth(now), self.inflight(now))
            requests = self._requests.copy()
            buckets = np.cumsum(self._buckets, axis=1)
            sums = self._duration_sum.copy()
        yield from self._families(gauges, requests, buckets, sums)

    def describe(self) -> Iterable[Metric]:
        """The families without samples, so the registry knows the names up front."""
        return list(self._families(None, None, None, None))

    @staticmethod
    def _families(
        gauges: tuple[float, float, float] | None,
        requests: np.ndarray | None,
        buckets: np.ndarray | None,
        sums: np.ndarray | None,
    ) -> Iterator[Metric]:
        counter = CounterMetricFamily(
            "demo_http_requests",
            "Requests served by the demo API, by method, route and status.",
            labels=["method", "route", "status"],
        )
        histogram = HistogramMetricFamily(
            "demo_http_request_duration_seconds",
            "Time to serve a request of the demo API.",
            labels=["route"],
            unit="seconds",
        )
        if requests is not None and buckets is not None and sums is not None:
            for r, route in enumerate(_ROUTES):
                statuses = (route.ok, route.client_error, "500", "503")
                for c, status in enumerate(statuses):
                    counter.add_metric([route.method, route.path, status], float(requests[r, c]))
                les = [*(repr(b) for b in _BUCKETS), "+Inf"]
                histogram.add_metric(
                    [route.path],
                    [(le, float(v)) for le, v in zip(les, buckets[r], strict=True)],
                    float(sums[r]),
                )
        yield counter
        yield histogram
        specs = (
            ("demo_cpu_utilization", "CPU utilisation of the demo host, percent (0 to 100)."),
            ("demo_queue_depth", "Jobs waiting in the demo service's work queue."),
            ("demo_inflight_requests", "Requests the demo API is serving right now."),
        )
        for i, (name, doc) in enumerate(specs):
            family = GaugeMetricFamily(name, doc)
            if gauges is not None:
                family.add_metric([], gauges[i])
            yield family
