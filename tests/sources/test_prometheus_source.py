"""PrometheusSource against the real Prometheus binary (and a header-recording server).

One Prometheus serves the whole module: backfilled history (known values on a 15 s grid,
in the past, so `fetch(now)` can be replayed at any past instant) plus a live scrape
target whose exposition the tests change.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest

from support.servers import (
    MetricsTarget,
    PrometheusServer,
    free_port,
    openmetrics,
    show_log_on_failure,
)
from vigil.errors import QueryRejected, SourceUnavailable
from vigil.labels import series_key
from vigil.sources.base import SeriesBatch
from vigil.sources.prometheus import PrometheusSource

# Backfilled history: hour-aligned, from BASE to BASE + 3 h (and a little more), 15 s apart.
BASE = (int(time.time()) // 3600 - 5) * 3600
SCRAPE = 15
N = 3 * 3600 // SCRAPE + 20
LATE_START = BASE + 2 * 3600 + 600  # vt_gauge{i="b"} starts here
RESET_AT = 100  # the counter restarts from 0 at this sample


def _counter(k: int) -> float:
    """10 per sample, restarting from 0 at RESET_AT: the rate is 10/15 everywhere."""
    return 10.0 * (k + 1) if k < RESET_AT else 10.0 * (k - RESET_AT + 1)


HISTORY = openmetrics(
    {
        "vt_gauge": (
            "gauge",
            [({"i": "a"}, BASE + SCRAPE * k, float(k)) for k in range(N)]
            + [
                ({"i": "b"}, t, 1000.0 + (t - LATE_START) / SCRAPE)
                for t in range(LATE_START, BASE + SCRAPE * N, SCRAPE)
            ],
        ),
        "vt_requests": (
            "counter",
            [({"job": "api"}, BASE + SCRAPE * k, _counter(k)) for k in range(N)],
        ),
        "vt_many": (
            "gauge",
            [({"i": str(i)}, BASE + SCRAPE * k, float(i)) for i in range(5) for k in range(N)],
        ),
    }
)


@pytest.fixture(scope="module")
def target() -> Iterator[MetricsTarget]:
    with MetricsTarget('vt_live{id="1"} 1\n') as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, target: MetricsTarget
) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), targets=[target.address])
    server.backfill(HISTORY)
    with server:
        yield server


@pytest.fixture(autouse=True)
def _log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    if "prometheus" not in request.fixturenames:
        yield
        return
    with show_log_on_failure(request, request.getfixturevalue("prometheus")):
        yield


def run(source: PrometheusSource, body: Callable[[PrometheusSource], Any]) -> Any:
    """Run ``body(source)`` in a fresh event loop and close the source after it."""

    async def main() -> Any:
        try:
            return await body(source)
        finally:
            await source.close()

    return asyncio.run(main())


def by_key(batches: list[SeriesBatch]) -> dict[str, SeriesBatch]:
    return {series_key(b.labels): b for b in batches}


GAUGE_A = 'vt_gauge{i="a"}'
GAUGE_B = 'vt_gauge{i="b"}'


def test_first_fetch_returns_the_lookback_on_the_step_grid(prometheus: PrometheusServer) -> None:
    source = PrometheusSource("g", prometheus.url, 'vt_gauge{i="a"}', step=60, lookback=3600)
    now = BASE + 2 * 3600 + 42  # not on the grid: end is BASE + 2 h

    async def body(s: PrometheusSource) -> list[SeriesBatch]:
        await s.validate()
        return await s.fetch(now)

    (batch,) = run(source, body)
    assert batch.labels == {"__name__": "vt_gauge", "i": "a"}
    expected_t = np.arange(BASE + 3600, BASE + 2 * 3600 + 1, 60, dtype=np.float64)
    np.testing.assert_array_equal(batch.t, expected_t)  # look-back honoured, aligned
    np.testing.assert_array_equal(batch.v, (expected_t - BASE) / SCRAPE)


def test_incremental_fetches_return_each_point_once(prometheus: PrometheusServer) -> None:
    """Fetches at irregular instants add up to one full read of the same range."""
    nows = [BASE + 3600 + d for d in (0, 5, 59, 60, 61, 300, 301, 1234, 1800, 1800, 3599)]

    async def body(s: PrometheusSource) -> list[list[SeriesBatch]]:
        return [await s.fetch(now) for now in nows]

    answers = run(PrometheusSource("g", prometheus.url, "vt_gauge", step=30, lookback=1800), body)
    seen: dict[str, list[float]] = {}
    for batches in answers:
        for batch in batches:
            assert np.all(np.diff(batch.t) > 0)
            times = seen.setdefault(series_key(batch.labels), [])
            assert not times or batch.t[0] > times[-1], "a point came back twice"
            times.extend(batch.t.tolist())
    assert answers[1] == []  # same step as the first fetch: nothing new
    assert seen[GAUGE_A] == list(range(BASE + 1800, BASE + 7171, 30))


def test_series_that_appears_later_is_picked_up_from_its_first_point(
    prometheus: PrometheusServer,
) -> None:
    source = PrometheusSource("g", prometheus.url, "vt_gauge", step=60, lookback=3600)

    async def body(s: PrometheusSource) -> tuple[list[SeriesBatch], list[SeriesBatch]]:
        return await s.fetch(LATE_START - 120), await s.fetch(LATE_START + 600)

    first, second = run(source, body)
    assert set(by_key(first)) == {GAUGE_A}
    b = by_key(second)[GAUGE_B]
    np.testing.assert_array_equal(b.t, np.arange(LATE_START, LATE_START + 601, 60))
    np.testing.assert_array_equal(b.v, 1000 + (b.t - LATE_START) / SCRAPE)
    a = by_key(second)[GAUGE_A]
    assert a.t[0] == LATE_START - 120 + 60  # continues where the first fetch ended


def test_counter_with_a_reset_gives_a_steady_rate(prometheus: PrometheusServer) -> None:
    """Raw counter read in two fetches across a reset: 10 per 15 s, never negative."""
    split = BASE + 40 * SCRAPE
    end = BASE + (N - 1) * SCRAPE
    source = PrometheusSource(
        "req", prometheus.url, "vt_requests_total", step=SCRAPE, lookback=4 * 3600, counter=True
    )

    async def body(s: PrometheusSource) -> list[list[SeriesBatch]]:
        return [await s.fetch(split), await s.fetch(end)]

    answers = run(source, body)
    t = np.concatenate([b.t for batches in answers for b in batches])
    v = np.concatenate([b.v for batches in answers for b in batches])
    assert answers[0][0].labels == {"__name__": "vt_requests_total", "job": "api"}
    np.testing.assert_array_equal(t, np.arange(BASE + SCRAPE, end + 1, SCRAPE))  # 1st primes
    np.testing.assert_allclose(v, 10 / SCRAPE)
    assert BASE + RESET_AT * SCRAPE in t  # the reset itself is inside


def test_fetch_splits_ranges_longer_than_11000_points(prometheus: PrometheusServer) -> None:
    source = PrometheusSource("g", prometheus.url, 'vt_gauge{i="a"}', step=0.5, lookback=3 * 3600)
    now = BASE + 3 * 3600

    (batch,) = run(source, lambda s: s.fetch(now))
    assert batch.t.size == 3 * 3600 * 2 + 1  # 21,601 points: two requests
    np.testing.assert_array_equal(batch.t, BASE + 0.5 * np.arange(batch.t.size))
    np.testing.assert_array_equal(batch.v, np.floor((batch.t - BASE) / SCRAPE))


def test_max_series_keeps_the_first_by_labels_and_warns_once(
    prometheus: PrometheusServer, caplog: pytest.LogCaptureFixture
) -> None:
    source = PrometheusSource("many", prometheus.url, "vt_many", step=60, max_series=3)
    start = BASE + 3600

    async def body(s: PrometheusSource) -> list[list[SeriesBatch]]:
        return [await s.fetch(start + 60 * i) for i in range(3)]

    with caplog.at_level(logging.WARNING, logger="vigil.sources.prometheus"):
        answers = run(source, body)
    for batches in answers:
        assert [b.labels["i"] for b in batches] == ["0", "1", "2"]
    assert source.capped_series == 2
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "'many'" in record.getMessage() and "5 series" in record.getMessage()
    assert "max_series is 3" in record.getMessage()


def test_promql_syntax_error_is_rejected_at_start_with_prometheus_text(
    prometheus: PrometheusServer,
) -> None:
    query = "rate(vt_gauge[5m)"
    source = PrometheusSource("broken", prometheus.url, query, step=15)
    with pytest.raises(QueryRejected) as caught:
        run(source, lambda s: s.validate())
    message = str(caught.value)
    assert "'broken'" in message and query in message
    assert "bad_data" in message and "parse error" in message
    with pytest.raises(QueryRejected):
        run(PrometheusSource("broken", prometheus.url, query, step=15), lambda s: s.fetch(BASE))


def test_live_scraped_value_changes_and_new_series_show_up(
    prometheus: PrometheusServer, target: MetricsTarget
) -> None:
    """The first scrape is queryable about 5.5 s after Prometheus starts: poll."""
    source = PrometheusSource("live", prometheus.url, "vt_live", step=1, lookback=60)
    points: dict[str, list[tuple[float, float]]] = {}

    async def collect_until(done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s; have {points}")
            for batch in await source.fetch(time.time()):
                got = points.setdefault(series_key(batch.labels), [])
                assert not got or batch.t[0] > got[-1][0], "a point came back twice"
                got.extend(zip(batch.t.tolist(), batch.v.tolist(), strict=True))
            await asyncio.sleep(0.2)

    def latest(key: str) -> float:
        return points[key][-1][1] if points.get(key) else math.nan

    one, two = (f'vt_live{{id="{i}",instance="{target.address}",job="targets"}}' for i in "12")

    async def body(s: PrometheusSource) -> None:
        await collect_until(lambda: latest(one) == 1, 30)
        target.set('vt_live{id="1"} 2\nvt_live{id="2"} 5\n')
        await collect_until(lambda: latest(one) == 2 and latest(two) == 5, 15)

    run(source, body)
    assert points[one][0][1] == 1
    for series in points.values():
        times = [t for t, _ in series]
        assert times == sorted(set(times)) and all(t == int(t) for t in times)


# -- without Prometheus --------------------------------------------------------------------


def test_nothing_listening_is_unavailable_within_the_timeout() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    source = PrometheusSource("down", url, "up", step=15, timeout=2)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        run(source, lambda s: s.fetch(time.time()))
    assert time.monotonic() - started < 2
    assert url in str(caught.value) and "'down'" in str(caught.value)


class Recorder:
    """A local HTTP server that records request headers; answers JSON or an echoing 500."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.fail = False
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.headers.append(dict(self.headers))
                if recorder.fail:  # a careless server that echoes the request
                    body = f"no access for {self.headers.get('Authorization')}".encode()
                    code = 500
                else:
                    data = {"resultType": "matrix", "result": []}
                    body = json.dumps({"status": "success", "data": data}).encode()
                    code = 200
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/prefix"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.mark.parametrize(
    ("auth", "header", "secrets"),
    [
        pytest.param(
            ("basic", "vigil", "pa55-word"),
            "Basic " + base64.b64encode(b"vigil:pa55-word").decode(),
            ["pa55-word", base64.b64encode(b"vigil:pa55-word").decode()],
            id="basic",
        ),
        pytest.param(("bearer", "t0ken-xyz"), "Bearer t0ken-xyz", ["t0ken-xyz"], id="bearer"),
    ],
)
def test_auth_header_is_sent_and_never_shown(auth: Any, header: str, secrets: list[str]) -> None:
    with Recorder() as recorder:
        source = PrometheusSource("q", recorder.url, "up", step=15, auth=auth)

        async def body(s: PrometheusSource) -> None:
            await s.validate()
            await s.fetch(time.time())
            recorder.fail = True
            await s.fetch(time.time() + 15)

        with pytest.raises(SourceUnavailable) as caught:
            run(source, body)
    assert [h.get("Authorization") for h in recorder.headers] == [header] * 3
    shown = f"{caught.value} {caught.value!r} {source!r}"
    assert "HTTP 500" in shown and recorder.url in shown and " ***" in shown
    for secret in secrets:
        assert secret not in shown


def test_missing_prometheus_binary_fails_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIGIL_PROMETHEUS_BIN", str(tmp_path / "no-prometheus"))
    with pytest.raises(pytest.fail.Exception, match="run scripts/setup --test as root, or apt-get"):
        PrometheusServer(tmp_path)
