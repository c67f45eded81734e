"""Read one named PromQL query from a server that speaks the Prometheus HTTP API.

`PrometheusSource` works against Prometheus, Thanos, Mimir and VictoriaMetrics: it only
uses ``POST /api/v1/query`` (once, in `PrometheusSource.validate`) and
``POST /api/v1/query_range`` (every `PrometheusSource.fetch`).

How a fetch chooses its window
------------------------------
All times sit on the step grid (multiples of ``step`` seconds since the epoch), so every
series gets one point per step at the same instants. ``fetch(now)`` reads up to
``end = floor((now - delay) / step) * step``; ``delay`` leaves room for samples that are
ingested late (remote write, VictoriaMetrics' latency offset).

- The first fetch reads the whole look-back, ``end - lookback .. end``: every series that
  exists then gets its history at once.
- Later fetches read from just after the previous ``end``, or from just after the oldest
  last point of a series seen in the previous answer if that is older (a series whose
  last points were late gets them on the next fetch). The window never starts before
  ``end - lookback``: after a long outage the source catches up at most the look-back.
- A series seen for the first time on a later fetch gets what that incremental window
  holds, not a separate look-back: by then the look-back of the first fetch already
  showed everything the query returned, so a series new to the answer is new on the
  server too (apart from data backfilled behind the source's back), and re-reading a
  day per new series would cost the most exactly when labels churn.
- Per series, only points newer than the last one already returned come back: no
  duplicates, times strictly increasing. A series that vanishes simply stops appearing.
- A range longer than Prometheus' limit of 11,000 points per series is split into several
  requests; the answer is only used once all of them succeeded, so a failed fetch changes
  nothing and the next one retries the same window.

Values ``NaN``, ``+Inf`` and ``-Inf`` come back as floats (NaN is a gap; the engine treats
every non-finite value as invalid).

Counters
--------
With ``counter=True`` the query returns a raw counter (``http_requests_total``) and the
source returns its per-second rate between consecutive points. A drop is a counter reset:
the counter restarted from 0, so the increase is the new value itself, never negative.
The first point of a series only primes the rate; a non-finite raw value gives NaN and
the next rate spans the gap.

Bounded memory
--------------
At most ``max_series`` series are kept, the first ones in `series_key` order, and a kept
series keeps its place while it is remembered. When the cap leaves series out, one
WARNING is logged (again only after a fetch under the cap) and `capped_series` says how
many were left out by the last fetch. Per-series bookkeeping is forgotten for series not
seen for ``forget_after`` seconds.

Sharded (``owns``, see `vigil.sharding`), the whole query is still read, but a series the
predicate refuses gets no bookkeeping and does not count against ``max_series``: it comes
back as a batch with its labels and no points, so the engine counts it as another shard's.

Errors
------
The HTTP side is `vigil.sources.prometheus_api.PrometheusApi`: a server that is down,
slow or answers what the API does not document raises `SourceUnavailable`; a query it
refuses raises `QueryRejected` with Prometheus' own error text; an answer that is not a
matrix raises `SourceUnavailable` saying what came back. Messages name the query and the
URL, never the credentials, which are also kept out of logs and `repr`.

Examples
--------
>>> source = PrometheusSource("cpu", "http://127.0.0.1:9090", "up", step=15,
...                           auth=("bearer", "s3cret"))
>>> source
PrometheusSource(name='cpu', url='http://127.0.0.1:9090', query='up', step=15.0, auth='bearer')
>>> source.interval
15.0
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import httpx

from vigil.errors import ConfigError, QueryRejected
from vigil.sources.base import Samples, Source
from vigil.sources.prometheus_api import Auth, PrometheusApi, auth_headers, seconds, snippet, split_credentials
from vigil.sources.prometheus_series import Answer, Kept, Names

__all__ = ["MAX_POINTS_PER_QUERY", "PrometheusSource"]

log = logging.getLogger(__name__)

MAX_POINTS_PER_QUERY = 11_000
"""Prometheus refuses a ``query_range`` with more points per series than this."""

class PrometheusSource(Source):
    """A live source for one named PromQL query, read incrementally with ``query_range``.

    Parameters
    ----------
    name
        The query's name (the ``query`` label of Vigil's output).
    url
        Base URL of the API, with any path prefix (``http://thanos:10902``,
        ``https://mimir.example/prometheus``); ``/api/v1/...`` is appended. Credentials
        written in the URL are used as basic auth and removed from it.
    query
        The PromQL expression.
    step
        Seconds between points of a series; also the source's `interval`.
    lookback
        Seconds of history read on the first fetch.
    auth
        None, ``("basic", user, password)`` or ``("bearer", token)``.
    timeout
        Seconds allowed for each HTTP request (connect, read, write, pool).
    max_series
        Most series kept; see the module docstring.
    counter
        The query returns a raw counter; return its per-second rate.
    delay
        Seconds behind ``now`` to read, so that late samples are in.
    forget_after
        Seconds after which a series not seen is forgotten (default one day).
    client
        An `httpx.AsyncClient` to use (tests); the caller closes it. By default the source
        creates its own on first use and closes it in `close`.
    clock
        Returns the current Unix time; used by `validate`.
    owns
        Given a series' `series_key`, whether this replica's shard owns it (None: all).
    """

    def __init__(
        self,
        name: str,
        url: str,
        query: str,
        step: float,
        lookback: float = 86400,
        auth: Auth = None,
        timeout: float = 10,
        max_series: int = 10_000,
        counter: bool = False,
        delay: float = 0,
        forget_after: float = 86400,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        where = f"prometheus source {name!r}"
        self.owns = owns
        self.name = name
        self.query = query
        self.url, url_auth = split_credentials(url, where)
        self._check_positive(
            where, step=step, lookback=lookback, timeout=timeout, forget_after=forget_after
        )
        if not (math.isfinite(delay) and delay >= 0):
            raise ConfigError(f"{where}: delay is {delay!r}; write 0 or more seconds")
        if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 1:
            raise ConfigError(f"{where}: max_series is {max_series!r}; write an integer >= 1")
        self.step = float(step)
        self.interval = self.step
        self.lookback = float(lookback)
        self.timeout = float(timeout)
        self.max_series = max_series
        self.counter = bool(counter)
        self.delay = float(delay)
        self.forget_after = float(forget_after)
        self._step_ms = max(1, round(self.step * 1000))
        self._auth_kind, self._headers, secrets = auth_headers(auth if auth is not None else url_auth, where)
        self._api = PrometheusApi(name, query, self.url, self.timeout, self._headers, secrets, client)
        self._clock = clock
        self._kept = Kept()  # per series kept: what is remembered between fetches
        self._names = Names()
        self._cursor: int | None = None  # end (ms) of the last successful fetch
        self._lagging: int | None = None  # oldest last point (ms) of the last answer
        self._cap_warned = False
        self.capped_series = 0  # series the last fetch left out because of max_series

    @staticmethod
    def _check_positive(where: str, **values: float) -> None:
        for key, value in values.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ConfigError(f"{where}: {key} is {value!r}; write a number of seconds > 0")

    def __repr__(self) -> str:
        return (
            f"PrometheusSource(name={self.name!r}, url={self.url!r}, query={self.query!r}, "
            f"step={self.step!r}, auth={self._auth_kind!r})"
        )

    # -- public --------------------------------------------------------------------------

    async def validate(self) -> None:
        """Run the query once as an instant query; raise `QueryRejected` if it is refused.

        Call it at start so that a PromQL syntax error is reported there, with the query's
        name, the query and the server's own error text.
        """
        at = self._clock() - self.delay
        body = await self._api.post("/api/v1/query", {"query": self.query, "time": f"{at:.3f}"})
        data = body.get("data")
        if isinstance(data, dict) and data.get("resultType") == "string":
            raise QueryRejected(
                f"query {self.name!r} ({self.query}) returns a string; "
                "write a query that returns an instant vector or a scalar"
            )

    async def fetch(self, now: float) -> Samples | list[Any]:
        """New points of every kept series up to ``now - delay``, on the step grid."""
        step = self._step_ms
        end = math.floor((now - self.delay) * 1000 / step) * step
        earliest = end - int(self.lookback * 1000 // step) * step
        if self._cursor is None:
            start = earliest
        else:
            start = self._cursor + step
            if self._lagging is not None:
                start = min(start, self._lagging + step)
            start = max(-(-start // step) * step, earliest)
        if start > end:
            return []
        raw = Answer()
        self._names.begin()
        span = (MAX_POINTS_PER_QUERY - 1) * step
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + span)
            await self._query_range(chunk_start, chunk_end, raw)
            chunk_start = chunk_end + step
        return await asyncio.to_thread(self._commit, raw, end)

    async def close(self) -> None:
        """Close the HTTP client if the source created it."""
        await self._api.close()

    # -- the answer ----------------------------------------------------------------------

    def _commit(self, raw: Answer, end: int) -> Samples | list[Any]:
        done = self._kept.commit(raw, end, self.forget_after * 1000, self.max_series, self.counter, self.owns)
        self._names.end()
        self._cursor = end
        self._lagging = done.lagging
        self.capped_series = done.dropped
        if done.dropped and not self._cap_warned:
            log.warning(
                "query %r returned %d series; max_series is %d, so %d new ones are left out while the %d held "
                "keep their place (a series absent for %gs is forgotten and frees its place)",
                self.name, done.series, self.max_series, done.dropped, len(self._kept), self.forget_after,
            )
        self._cap_warned = done.dropped > 0
        return done.samples

    # -- HTTP ----------------------------------------------------------------------------

    async def _query_range(self, start: int, end: int, raw: Answer) -> None:
        params = {
            "query": self.query,
            "start": seconds(start),
            "end": seconds(end),
            "step": seconds(self._step_ms),
        }
        body = await self._api.post("/api/v1/query_range", params)
        # a worker thread: an answer of many series must not hold up the event loop (the API)
        await asyncio.to_thread(self._take, body, raw)

    def _take(self, body: dict[str, Any], raw: Answer) -> None:
        """Add the series of a query_range answer to `raw`."""
        try:
            data = body["data"]
            if data["resultType"] != "matrix":
                raise ValueError(f"resultType is {data['resultType']!r}, not 'matrix'")
            raw.add(data["result"], self._names)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise self._api.unavailable(
                f"unexpected query_range answer ({type(exc).__name__}: {exc}): {snippet(json.dumps(body))}"
            ) from exc
