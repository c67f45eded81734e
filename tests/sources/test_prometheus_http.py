"""PrometheusSource over `httpx.MockTransport`: HTTP failures, odd bodies, windows, state.

The real server is exercised in tests/sources/test_prometheus_source.py; here the
server's answers are made up to pin down each rule exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.errors import ConfigError, QueryRejected, SourceUnavailable
from vigil.sources.base import SeriesBatch
from vigil.sources.prometheus import MAX_POINTS_PER_QUERY, PrometheusSource
from vigil.sources.prometheus_api import decode_answer, seconds

URL = "http://prom.test:9090/prefix"
Handler = Callable[[httpx.Request], httpx.Response]


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> httpx.Response:
    result = [
        {"metric": labels, "values": [[t, v] for t, v in values]} for labels, values in series
    ]
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": "matrix", "result": result}}
    )


def grid(request: httpx.Request) -> list[float]:
    """The evaluation instants of a query_range request."""
    p = form(request)
    start, end, step = float(p["start"]), float(p["end"]), float(p["step"])
    return [start + i * step for i in range(round((end - start) / step) + 1)]


def run(
    handler: Handler, body: Callable[[PrometheusSource], Coroutine[Any, Any, Any]], **kwargs: Any
) -> Any:
    """Build a source on a mock transport, run ``body(source)``, close everything."""

    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            options: dict[str, Any] = {"step": 15, "lookback": 3600, **kwargs}
            source = PrometheusSource("q", URL, "up", client=client, **options)
            try:
                return await body(source)
            finally:
                await source.close()

    return asyncio.run(main())


def fetch_at(
    *nows: float,
) -> Callable[[PrometheusSource], Coroutine[Any, Any, list[list[SeriesBatch]]]]:
    async def body(source: PrometheusSource) -> list[list[SeriesBatch]]:
        return [await source.fetch(now) for now in nows]

    return body


# -- HTTP failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(
            httpx.Response(500, text="boom"), "HTTP 500 Internal Server Error: boom", id="500"
        ),
        pytest.param(
            httpx.Response(503, text="Service Unavailable"),
            "HTTP 503 Service Unavailable",
            id="503-not-ready",
        ),
        pytest.param(
            httpx.Response(
                503, json={"status": "error", "errorType": "timeout", "error": "query timed out"}
            ),
            "timeout: query timed out",
            id="503-json",
        ),
        pytest.param(
            httpx.Response(502, text=""), "HTTP 502 Bad Gateway: empty body", id="502-empty"
        ),
        pytest.param(httpx.Response(401, text="no"), "check the credentials", id="401"),
        pytest.param(httpx.Response(404, text="404 page not found"), "path prefix", id="404"),
        pytest.param(
            httpx.Response(
                200, text="<html><body>Grafana</body></html>", headers={"content-type": "text/html"}
            ),
            "got HTTP 200 text/html: <html><body>Grafana</body></html>",
            id="html",
        ),
        pytest.param(
            httpx.Response(200, text="[1, 2]"), "expected the Prometheus API's JSON", id="json-list"
        ),
        pytest.param(
            httpx.Response(
                200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
            ),
            "resultType is 'vector'",
            id="not-matrix",
        ),
        pytest.param(
            httpx.Response(
                200,
                json={
                    "status": "success",
                    "data": {"resultType": "matrix", "result": [{"values": [[1, "2"]]}]},
                },
            ),
            "unexpected query_range answer (KeyError",
            id="no-metric",
        ),
        pytest.param(
            matrix(({"a": "b"}, [(1, "many")])),
            "unexpected query_range answer (ValueError",
            id="bad-number",
        ),
        pytest.param(
            httpx.Response(400, text="bad request"),
            "HTTP 400 Bad Request: bad request",
            id="400-text",
        ),
    ],
)
def test_server_failures_are_unavailable_with_the_url_and_reason(
    response: httpx.Response, expected: str
) -> None:
    with pytest.raises(SourceUnavailable) as caught:
        run(lambda request: response, fetch_at(10_000))
    message = str(caught.value)
    assert message.startswith(f"query 'q': Prometheus at {URL} is unavailable: ")
    assert expected in message


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(httpx.ConnectError("[Errno 111] Connection refused"), id="refused"),
        pytest.param(httpx.ConnectError("[Errno -2] Name or service not known"), id="dns"),
        pytest.param(httpx.ReadTimeout("timed out"), id="read-timeout"),
        pytest.param(httpx.ConnectTimeout("timed out"), id="connect-timeout"),
        pytest.param(httpx.RemoteProtocolError("peer closed connection"), id="protocol"),
    ],
)
def test_transport_errors_are_unavailable_and_chained(error: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(SourceUnavailable) as caught:
        run(handler, fetch_at(10_000), timeout=3)
    assert caught.value.__cause__ is error
    assert URL in str(caught.value)
    if isinstance(error, httpx.TimeoutException):
        assert "no answer within 3 s" in str(caught.value)
    else:
        assert str(error) in str(caught.value)


@pytest.mark.parametrize("status", [400, 422])
def test_prometheus_json_error_is_query_rejected_with_its_text(status: int) -> None:
    answer = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=answer)

    for body in (lambda s: s.validate(), fetch_at(10_000)):
        with pytest.raises(QueryRejected) as caught:
            run(handler, body)
        assert str(caught.value) == (
            f"query 'q' (up) was rejected by Prometheus at {URL}: "
            "bad_data: 1:5: parse error: unexpected"
        )


def test_validate_rejects_a_query_that_returns_a_string() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/prefix/api/v1/query"
        data = {"resultType": "string", "result": [1, "x"]}
        return httpx.Response(200, json={"status": "success", "data": data})

    with pytest.raises(QueryRejected, match="returns a string"):
        run(handler, lambda s: s.validate())


# -- windows -------------------------------------------------------------------------------


def test_window_is_aligned_to_the_step_and_honours_delay_and_lookback() -> None:
    requests: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(form(request))
        return matrix()

    run(handler, fetch_at(100_000.7, 100_001, 100_016), step=15, lookback=3600, delay=30)
    end = (100_000.7 - 30) // 15 * 15  # 99960
    assert requests[0] == {
        "query": "up",
        "start": str(int(end - 3600)),
        "end": str(int(end)),
        "step": "15",
    }
    assert len(requests) == 2  # 100_001 - 30 is on the same step: no request
    assert requests[1]["start"] == requests[1]["end"] == str(int(end + 15))


def test_long_range_is_split_into_requests_of_at_most_11000_points() -> None:
    requests: list[tuple[float, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        times = grid(request)
        requests.append((times[0], times[-1]))
        assert len(times) <= MAX_POINTS_PER_QUERY
        return matrix(({"__name__": "x"}, [(t, str(t % 7)) for t in times]))

    (batches,) = run(handler, fetch_at(1_000_000.5), step=1, lookback=86_400)
    assert len(requests) == math.ceil(86_401 / MAX_POINTS_PER_QUERY) == 8
    assert requests[0][0] == 1_000_000 - 86_400 and requests[-1][1] == 1_000_000
    for (_, end), (start, _) in itertools.pairwise(requests):
        assert start == end + 1  # contiguous, no overlap
    (batch,) = batches
    np.testing.assert_array_equal(batch.t, np.arange(1_000_000 - 86_400, 1_000_001.0))
    np.testing.assert_array_equal(batch.v, batch.t % 7)


def test_failed_part_of_a_split_range_commits_nothing() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            return httpx.Response(503, text="not ready")
        return matrix(({"__name__": "x"}, [(t, "1") for t in grid(request)]))

    async def body(source: PrometheusSource) -> list[SeriesBatch]:
        with pytest.raises(SourceUnavailable):
            await source.fetch(30_000)
        return await source.fetch(30_000)

    (batch,) = run(handler, body, step=1, lookback=20_000)
    np.testing.assert_array_equal(batch.t, np.arange(10_000, 30_001.0))


def test_special_values_come_back_as_floats() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        values = ["NaN", "+Inf", "-Inf", "1e3", "-0.5"]
        return matrix(({"__name__": "x"}, list(zip(grid(request)[-5:], values, strict=True))))

    ((batch,),) = run(handler, fetch_at(1500))
    assert math.isnan(batch.v[0])
    np.testing.assert_array_equal(batch.v[1:], [math.inf, -math.inf, 1000.0, -0.5])
    assert batch.t.dtype == batch.v.dtype == np.float64


def test_late_points_of_a_lagging_series_come_on_the_next_fetch_once() -> None:
    """Series b's last two points are missing at the first fetch and arrive later."""
    fetches = 0
    starts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        times = grid(request)
        starts.append(times[0])
        late = times if fetches else times[:-2]
        return matrix(
            ({"s": "a"}, [(t, "1") for t in times]), ({"s": "b"}, [(t, "2") for t in late])
        )

    async def body(source: PrometheusSource) -> list[list[SeriesBatch]]:
        nonlocal fetches
        first = await source.fetch(1500)
        fetches += 1
        return [first, await source.fetch(1530)]

    first, second = run(handler, body, step=15, lookback=150)
    assert starts == [1350, 1485]  # the second window starts after b's last point
    a1, b1 = first
    a2, b2 = second
    assert a1.t[-1] == 1500 and b1.t[-1] == 1470
    np.testing.assert_array_equal(a2.t, [1515, 1530])  # a: no duplicates
    np.testing.assert_array_equal(b2.t, [1485, 1500, 1515, 1530])  # b: the late ones


def test_duplicate_and_unsorted_points_from_the_server_are_cleaned() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return matrix(({"s": "a"}, [(1500, "3"), (1485, "2"), (1500, "3"), (1470, "1")]))

    ((batch,),) = run(handler, fetch_at(1500), lookback=30)
    np.testing.assert_array_equal(batch.t, [1470, 1485, 1500])
    np.testing.assert_array_equal(batch.v, [1, 2, 3])


# -- counters ------------------------------------------------------------------------------


def test_counter_rate_handles_resets_gaps_and_carries_over_fetches() -> None:
    raw = {0: 100.0, 15: 115.0, 30: 130.0, 45: 4.0, 60: math.nan, 75: 34.0, 90: 49.0, 105: 64.0}

    def handler(request: httpx.Request) -> httpx.Response:
        return matrix(
            ({"__name__": "x_total"}, [(t, str(raw[t])) for t in grid(request) if t in raw])
        )

    first, second = run(handler, fetch_at(60, 105), step=15, lookback=60, counter=True)
    (a,) = first
    (b,) = second
    # 0 primes; 45 is a reset (4 since 0); NaN stays a gap; 75 spans the gap from 45
    np.testing.assert_array_equal(a.t, [15, 30, 45, 60])
    np.testing.assert_array_equal(a.v[:3], [1, 1, 4 / 15])
    assert math.isnan(a.v[3])
    np.testing.assert_array_equal(b.t, [75, 90, 105])
    np.testing.assert_array_equal(b.v, [1, 1, 1])
    assert np.all(np.concatenate([a.v, b.v])[~np.isnan(np.concatenate([a.v, b.v]))] >= 0)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_counter_rates_of_many_series_over_many_fetches_match_a_point_by_point_reference(data: Any) -> None:
    """Series interleaved in one answer, each with resets and gaps, read in windows of any size."""
    n_series = data.draw(st.integers(1, 5))
    steps = 24
    raw = {
        s: data.draw(st.lists(st.sampled_from([0.0, 1.0, 5.0, 50.0, math.nan]), min_size=steps, max_size=steps))
        for s in range(n_series)
    }
    absent = {s: data.draw(st.sets(st.integers(0, steps - 1), max_size=6)) for s in range(n_series)}
    cuts = sorted(data.draw(st.sets(st.integers(1, steps - 1), max_size=5)))
    counters = {s: np.cumsum(np.nan_to_num(raw[s])) % 97 for s in range(n_series)}  # % 97: resets
    for s in range(n_series):
        counters[s][np.isnan(raw[s])] = math.nan

    def handler(request: httpx.Request) -> httpx.Response:
        answer = []
        for s in reversed(range(n_series)):  # not in key order
            points = [(t, repr(float(counters[s][int(t) // 15]))) for t in grid(request)
                      if 0 <= int(t) // 15 < steps and int(t) // 15 not in absent[s]]
            answer.append(({"s": str(s)}, points))
        return matrix(*answer)

    nows = [15.0 * c for c in [*cuts, steps - 1]]
    answers = run(handler, fetch_at(*nows), step=15, lookback=15 * steps, counter=True)
    got: dict[str, list[tuple[float, float]]] = {}
    for answer in answers:
        for b in answer:
            got.setdefault(b.labels["s"], []).extend(zip(b.t.tolist(), b.v.tolist(), strict=True))
    for s in range(n_series):
        expected, prev = [], None
        for i in range(steps):
            if i in absent[s]:
                continue
            x = float(counters[s][i])
            if math.isnan(x):  # a gap: NaN, and the next rate spans it
                expected.append((15.0 * i, math.nan))
                continue
            if prev is None:
                prev = (i, x)  # primes the rate
                continue
            expected.append((15.0 * i, (x - prev[1] if x >= prev[1] else x) / (15.0 * (i - prev[0]))))
            prev = (i, x)
        assert [t for t, _ in got.get(str(s), [])] == [t for t, _ in expected]
        np.testing.assert_allclose([v for _, v in got.get(str(s), [])], [v for _, v in expected])


def test_a_large_answer_is_decoded_item_by_item_to_the_same_json() -> None:
    result = [{"metric": {"s": f"a{i}", "odd": 'x"result":[1]'}, "values": [[1.5, "NaN"], [3, "+Inf"]]}
              for i in range(20_000)]
    text = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}, "warnings": []},
                      indent=1)
    assert len(text) > 1 << 20
    assert decode_answer(text) == json.loads(text)
    elsewhere = json.dumps({"stats": {"result": [1, 2]}, "data": {"result": result}, "pad": " " * (1 << 20)})
    assert decode_answer(elsewhere) == json.loads(elsewhere)
    with pytest.raises(ValueError, match="expected ',' or ']'"):
        decode_answer(json.dumps({"data": {"result": result}}).replace("}, {", "} {", 1))


# -- bounded memory ------------------------------------------------------------------------


def test_cap_keeps_the_first_series_logs_once_and_rearms(caplog: pytest.LogCaptureFixture) -> None:
    present = {1: "abcd", 2: "abcd", 3: "ab", 4: "abcde"}
    fetch_no = 0

    def handler(request: httpx.Request) -> httpx.Response:
        times = grid(request)
        return matrix(*[({"s": s}, [(t, "1") for t in times]) for s in present[fetch_no]])

    async def body(source: PrometheusSource) -> list[tuple[list[str], int]]:
        nonlocal fetch_no
        out = []
        for fetch_no in present:
            batches = await source.fetch(1000 + 15 * fetch_no)
            out.append(([b.labels["s"] for b in batches], source.capped_series))
        return out

    with caplog.at_level(logging.WARNING, logger="vigil.sources.prometheus"):
        got = run(handler, body, max_series=2)
    assert got == [(["a", "b"], 2), (["a", "b"], 2), (["a", "b"], 0), (["a", "b"], 3)]
    assert [r.getMessage() for r in caplog.records] == [
        "query 'q' returned 4 series; max_series is 2, so 2 new ones are left out while the 2 held keep their "
        "place (a series absent for 86400s is forgotten and frees its place)",
        "query 'q' returned 5 series; max_series is 2, so 3 new ones are left out while the 2 held keep their "
        "place (a series absent for 86400s is forgotten and frees its place)",
    ]


def test_series_not_seen_for_forget_after_are_forgotten_and_free_their_place() -> None:
    present = {990: "a", 1005: "b", 1110: "b"}  # by the end of each window

    def handler(request: httpx.Request) -> httpx.Response:
        times = grid(request)
        return matrix(({"s": present[int(times[-1])]}, [(times[-1], "1")]))

    async def body(source: PrometheusSource) -> list[list[str]]:
        out = []
        for now in (1000, 1015, 1120):
            out.append([b.labels["s"] for b in await source.fetch(now)])
        assert list(source._kept.slot) == ['{s="b"}']
        return out

    got = run(handler, body, step=15, max_series=1, forget_after=100)
    assert got == [["a"], [], ["b"]]  # b waits until a is forgotten (not seen for 100 s)


# -- configuration and secrets -------------------------------------------------------------


def test_repr_and_messages_never_show_credentials() -> None:
    source = PrometheusSource("q", "https://alice:s3cr%40t@prom.test/x", "up", step=15)
    assert source.url == "https://prom.test/x"
    assert "s3cr" not in repr(source) and "alice" not in repr(source)
    assert repr(source).endswith("auth='basic')")
    assert source._headers["Authorization"].startswith("Basic ")


def test_credentials_echoed_by_a_server_are_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text=f"bad header {request.headers['authorization']}")

    with pytest.raises(SourceUnavailable) as caught:
        run(handler, fetch_at(1000), auth=("bearer", "tok-123"))
    assert "tok-123" not in str(caught.value) and "bad header Bearer ***" in str(caught.value)


def test_a_url_password_echoed_by_a_server_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="upstream http://reader:hunter2@thanos:10902 refused the connection")

    with pytest.raises(SourceUnavailable) as caught:
        run(handler, fetch_at(1000))
    assert "hunter2" not in str(caught.value) and "http://reader:***@thanos:10902 refused" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("http://vigil:hunter2@prom.test:notaport", "'http://prom.test:notaport'", id="port-not-a-number"),
        pytest.param("http://vigil:hunter2@prom.test:99999/x", "'http://prom.test:99999/x'", id="port-over-65535"),
        pytest.param("http://vigil:hunter2@prom.test:0", "'http://prom.test:0'", id="port-zero"),
        pytest.param("vigil:hunter2@prom.test:9090", "'prom.test:9090'", id="no-scheme"),
        pytest.param("http://vigil:hunter2@[::1", "'http://[::1'", id="unclosed-bracket"),
    ],
)
def test_a_url_it_cannot_use_is_a_config_error_without_its_credentials(url: str, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PrometheusSource("q", url, "up", step=15)
    message = str(caught.value)
    assert message == (
        f"prometheus source 'q': url is {shown}; write http(s)://host:port[/prefix] with a port from 1 to 65535"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"step": 0}, "step is 0; write a number of seconds > 0", id="step"),
        pytest.param({"lookback": -1}, "lookback is -1", id="lookback"),
        pytest.param({"timeout": math.inf}, "timeout is inf", id="timeout"),
        pytest.param({"delay": -5}, "delay is -5", id="delay"),
        pytest.param({"max_series": 0}, "max_series is 0", id="max_series"),
        pytest.param({"auth": ("digest", "u", "p")}, "auth of kind 'digest'", id="auth"),
        pytest.param({"url": "prom.test:9090"}, "write http(s)://host:port[/prefix]", id="url"),
    ],
)
def test_bad_parameters_are_config_errors_naming_the_key(
    kwargs: dict[str, Any], message: str
) -> None:
    options: dict[str, Any] = {"name": "q", "url": URL, "query": "up", "step": 15, **kwargs}
    with pytest.raises(ConfigError, match=r"prometheus source 'q': ") as caught:
        PrometheusSource(**options)
    assert message in str(caught.value)
    assert "'p'" not in str(caught.value)


def test_close_leaves_an_injected_client_open() -> None:
    async def main() -> bool:
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: matrix())) as client:
            source = PrometheusSource("q", URL, "up", step=15, client=client)
            await source.fetch(1000)
            await source.close()
            await source.close()
            return client.is_closed

    assert asyncio.run(main()) is False


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0"), (1500, "1.5"), (15_000, "15"), (1, "0.001"), (-250, "-0.25"), (-2_100_000, "-2100")],
)
def test_times_are_sent_as_exact_seconds(ms: int, text: str) -> None:
    assert seconds(ms) == text
