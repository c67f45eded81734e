"""Hostile query parameters: label regexes with Prometheus's semantics on RE2, and bounds on every parameter.

A regex that makes a backtracking engine take exponential time answers at once (RE2 is
linear), and the answer is right; what Prometheus would refuse (backreferences,
look-arounds, repeat counts over 1000, a pattern too large to compile) is a 400 that
says so. Every parameter out of range (huge integers, NaN, absurd times, overlong text) is
a 400 or 422 that names it, never a 500, and /openapi.json documents the bounds and each
refusal, which a property test holds the API to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_api import LOCAL, T0, WEB1, TestClient, batch, calm, feed, fill, make_service, put_event

from vigil.http.app import create_app
from vigil.http.params import MAX_MATCHERS, MAX_PATTERN, parse_matchers
from vigil.service import Service

CATASTROPHIC = "(.|.|.|.|.|.|.)*z"  # a backtracking engine tries 7**n paths on a name of n characters


def names_service(tmp_path: Path, n: int) -> tuple[Service, list[str]]:
    """One query with `n` series named like http_requests_007_total, every third ending in z."""
    service = make_service(tmp_path, names=("cpu",))
    names = [f"http_requests_{i:03d}_{'fizz' if i % 3 == 0 else 'total'}" for i in range(n)]
    t, v = calm(3)
    feed(service, "cpu", [batch({"__name__": name, "job": "api"}, t, v) for name in names])
    return service, names


# -- label matchers: Prometheus's semantics on RE2 -----------------------------------------


@pytest.mark.timeout(10)  # the guard: Python's re spends hours on these 300 names; RE2 milliseconds
@pytest.mark.parametrize("path", ["/api/v1/series", "/check_health"])
def test_a_catastrophic_regex_answers_right_without_backtracking(tmp_path: Path, path: str) -> None:
    service, names = names_service(tmp_path, 300)
    client = TestClient(create_app(service), base_url=LOCAL)
    response = client.get(path, params={"label": f"__name__=~{CATASTROPHIC}", "limit": 1000})
    assert response.status_code == 200, response.text
    found = sorted(item["labels"]["__name__"] for item in response.json()["items"])
    assert found == sorted(name for name in names if name.endswith("z"))
    assert len(found) == 100


@pytest.mark.parametrize(
    ("matcher", "labels", "hit"),
    [
        pytest.param("job=~ap", {"job": "api"}, False, id="anchored-at-the-end"),
        pytest.param("job=~pi", {"job": "api"}, False, id="anchored-at-the-start"),
        pytest.param("job=~ap.*", {"job": "api"}, True, id="prefix"),
        pytest.param("job=~api|web", {"job": "web"}, True, id="alternation-inside-the-anchors"),
        pytest.param("job!~ap.*", {"job": "api"}, False, id="not-regex"),
        pytest.param("job=~(?i)API", {"job": "api"}, True, id="re2-flag"),
        pytest.param(r"job=~\d+", {"job": "42"}, True, id="perl-class"),
        pytest.param("job=~[[:alpha:]]+", {"job": "api"}, True, id="posix-class"),
        pytest.param(r"job=~\pL+", {"job": "résumé"}, True, id="unicode-class"),
        pytest.param("job=~a.b", {"job": "a\nb"}, True, id="dot-matches-newline-as-prometheus"),
        pytest.param("zone=~", {"job": "api"}, True, id="empty-regex-matches-a-missing-label"),
        pytest.param("zone=~.+", {"job": "api"}, False, id="missing-label-is-empty"),
        pytest.param("job=~a{2,3}", {"job": "aaa"}, True, id="repeat"),
        pytest.param(r"job=~\{99999999999}", {"job": "{99999999999}"}, True, id="escaped-brace-is-literal"),
        pytest.param("job=~[{]99999999999}", {"job": "{99999999999}"}, True, id="brace-in-a-class-is-literal"),
        pytest.param(r"job=~\Qa{99999999999}\E", {"job": "a{99999999999}"}, True, id="quoted-text-is-literal"),
        pytest.param("job=~x{099999999999}", {"job": "x{099999999999}"}, True, id="leading-zero-brace-is-literal"),
        pytest.param("job=a\nb", {"job": "a\nb"}, True, id="equal-value-with-newline"),
        pytest.param("job=~.+", {"job": "\udc80"}, True, id="value-not-utf-8-as-json-can-give"),
    ],
)  # fmt: skip
def test_label_matchers_mean_what_they_mean_in_prometheus(matcher: str, labels: dict[str, str], hit: bool) -> None:
    (match,) = parse_matchers([matcher])
    assert match(labels) is hit


@pytest.mark.parametrize(
    ("pattern", "detail"),
    [
        pytest.param(r"(a)\1", r"bad regular expression (invalid escape sequence: \1)", id="backreference"),
        pytest.param("(?=a)a", "bad regular expression (invalid perl operator: (?=)", id="lookahead"),
        pytest.param("web)|(.*", "bad regular expression (unexpected ): web)|(.*)", id="cannot-escape-the-anchors"),
        pytest.param("a{99999999999}", "repeat count '{99999999999}' is over 1000; write at most {1000}",
                     id="repeat-count-re2-reads-as-text"),
        pytest.param("a{2,99999999999}", "repeat count '{2,99999999999}' is over 1000", id="repeat-maximum"),
        pytest.param("a{1001}", "repeat count '{1001}' is over 1000", id="repeat-just-over"),
        pytest.param("[a-z]{1000}" * 90, "too large to run (over 1 MiB compiled); write fewer or smaller repeats",
                     id="too-large-compiled"),
        pytest.param("a" * (MAX_PATTERN + 1), "the regular expression is 1001 characters; write at most 1000",
                     id="too-long"),
        pytest.param("web-(", "bad regular expression (missing ): web-()", id="unbalanced"),
    ],
)  # fmt: skip
def test_a_regex_prometheus_would_refuse_is_a_400_that_says_why(tmp_path: Path, pattern: str, detail: str) -> None:
    client = TestClient(create_app(make_service(tmp_path)), base_url=LOCAL)
    for path in ("/api/v1/series", "/api/v1/anomalies", "/check_health"):
        response = client.get(path, params={"label": f"instance=~{pattern}"})
        assert response.status_code == 400, (path, response.text)
        assert detail in response.json()["detail"], path
        assert "\n" not in response.json()["detail"]


# -- every parameter bounded ---------------------------------------------------------------

HUGE = "9223372036854775808"  # 2**63: one past SQLite's integers


@pytest.fixture(scope="module")
def stocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    service = make_service(tmp_path_factory.mktemp("params"))
    fill(service)
    put_event(service, "cpu", WEB1, T0, T0 + 100)
    yield TestClient(create_app(service), base_url=LOCAL, raise_server_exceptions=False)
    service.store.close()


@pytest.mark.parametrize(
    ("path", "params", "code", "detail"),
    [
        pytest.param("/api/v1/anomalies", {"offset": HUGE}, 422, "less than or equal to 1000000000", id="anomalies-offset-huge"),
        pytest.param("/api/v1/series", {"offset": HUGE}, 422, "less than or equal to 1000000000", id="series-offset-huge"),
        pytest.param("/check_health", {"offset": HUGE}, 422, "less than or equal to 1000000000", id="health-offset-huge"),
        pytest.param("/api/v1/notifications", {"offset": HUGE}, 422, "less than or equal to 1000000000",
                     id="notifications-offset-huge"),
        pytest.param("/api/v1/series", {"offset": "-1"}, 422, "greater than or equal to 0", id="offset-negative"),
        pytest.param("/api/v1/series", {"offset": "nan"}, 422, "valid integer", id="offset-nan"),
        pytest.param("/api/v1/series", {"limit": HUGE}, 422, "less than or equal to 10000", id="limit-huge"),
        pytest.param("/api/v1/series", {"limit": "1e3"}, 422, "valid integer", id="limit-float-text"),
        pytest.param("/api/v1/series", {"sparkline": "1001"}, 422, "less than or equal to 1000", id="sparkline-over"),
        pytest.param("/api/v1/series", {"sparkline": "-1"}, 422, "greater than or equal to 0", id="sparkline-negative"),
        pytest.param("/api/v1/notifications", {"limit": "0"}, 422, "greater than or equal to 1", id="notifications-limit"),
        pytest.param("/api/v1/anomalies", {"start": "1e308"}, 400, "start is '1e308'; write Unix seconds or RFC 3339",
                     id="start-far-future"),
        pytest.param("/api/v1/anomalies", {"end": "-1"}, 400, "from 1970 to 9999", id="end-before-1970"),
        pytest.param("/api/v1/anomalies", {"start": "-inf"}, 400, "start is '-inf'", id="start-minus-infinity"),
        pytest.param("/api/v1/anomalies", {"start": "10000-01-01T00:00:00Z"}, 400, "from 1970 to 9999",
                     id="start-year-10000"),
        pytest.param("/api/v1/anomalies", {"start": "1" * 65}, 422, "at most 64 characters", id="start-overlong"),
        pytest.param("/api/v1/anomalies", {"query": "q" * 101}, 422, "at most 100 characters", id="query-overlong"),
        pytest.param("/api/v1/anomalies", {"search": "s" * 501}, 422, "at most 500 characters", id="search-overlong"),
        pytest.param("/api/v1/series", {"label": ["job=node"] * (MAX_MATCHERS + 1)}, 422, "at most 50 items",
                     id="too-many-matchers"),
        pytest.param("/api/v1/notifications", {"receiver": "r" * 101}, 422, "at most 100 characters",
                     id="receiver-overlong"),
        pytest.param("/api/v1/series/" + "a" * 101, {}, 422, "at most 100 characters", id="series-id-overlong"),
        pytest.param("/api/v1/series/0123456789abcdef", {"since": "nan"}, 400, "since is 'nan'", id="since-nan"),
        pytest.param("/api/v1/series/0123456789abcdef", {"window": "9" * 65}, 422, "at most 64 characters",
                     id="window-overlong"),
        pytest.param("/api/v1/series/0123456789abcdef", {"window": "-5m"}, 400, "window is '-5m'; write a duration",
                     id="window-negative"),
    ],
)  # fmt: skip
def test_an_out_of_range_parameter_is_refused_with_what_to_write(
    stocked: TestClient, path: str, params: dict[str, Any], code: int, detail: str
) -> None:
    response = stocked.get(path, params=params)
    assert response.status_code == code, response.text
    assert detail in str(response.json()["detail"])


def test_a_long_error_echoes_only_the_start_of_the_input(stocked: TestClient) -> None:
    response = stocked.get("/api/v1/anomalies", params={"start": "x" * 64})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("start is '" + "x" * 64 + "'")  # up to 80 characters shown whole
    long = stocked.get("/api/v1/series", params={"label": "job=~(\n" + "a" * 200})
    assert long.status_code == 400
    detail = long.json()["detail"]
    assert detail.startswith("label 'job=~(\\n" + "a" * 70) and "a" * 100 not in detail
    assert "\n" not in detail


# -- the OpenAPI document says all of it ---------------------------------------------------


def operations(client: TestClient) -> dict[str, dict[str, Any]]:
    """The GET operation of each path that has one."""
    doc = client.get("/openapi.json").json()
    return {path: item["get"] for path, item in doc["paths"].items() if "get" in item}


def every_operation(client: TestClient) -> dict[str, dict[str, Any]]:
    """``"METHOD path"`` -> its operation, for every method."""
    doc = client.get("/openapi.json").json()
    return {f"{method.upper()} {path}": op for path, item in doc["paths"].items() for method, op in item.items()}


def test_openapi_bounds_every_parameter(stocked: TestClient) -> None:
    for path, op in every_operation(stocked).items():
        for param in op.get("parameters", []):
            schema = param["schema"]
            kinds = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
            for kind in kinds:
                where = f"{path} {param['name']}"
                if kind.get("type") == "integer":
                    assert "minimum" in kind and "maximum" in kind, where
                elif kind.get("type") == "string":
                    assert "maxLength" in kind or "enum" in kind, where
                elif kind.get("type") == "array":
                    assert "maxItems" in kind, where
                else:
                    assert "enum" in kind, where


def test_openapi_documents_every_refusal(stocked: TestClient) -> None:
    for path, op in every_operation(stocked).items():
        codes = set(op["responses"])
        assert "413" in codes, path
        if path not in ("GET /healthz", "GET /readyz"):
            assert {"401", "421", "429"} <= codes, path
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in codes, path
    ops = operations(stocked)
    for path in ("/api/v1/series", "/api/v1/anomalies", "/check_health", "/api/v1/series/{series_id}"):
        assert "400" in set(ops[path]["responses"]), path
    assert "404" in set(ops["/api/v1/series/{series_id}"]["responses"])


def test_openapi_says_metrics_are_text(stocked: TestClient) -> None:
    assert set(operations(stocked)["/metrics"]["responses"]["200"]["content"]) == {"text/plain"}
    assert stocked.get("/metrics").headers["content-type"].startswith("text/plain")


def test_openapi_says_refusals_are_json_on_the_text_route_too(stocked: TestClient) -> None:
    responses = operations(stocked)["/metrics"]["responses"]
    for code in ("401", "413", "421", "429"):
        assert responses[code]["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    refused = stocked.get("/metrics", headers={"Host": "elsewhere.example"})
    assert refused.status_code == 421 and refused.headers["content-type"] == "application/json"


def junk() -> st.SearchStrategy[str]:
    """What a hostile client puts in a parameter: numbers past every range, odd words, any text."""
    numbers = st.integers(min_value=-(2**70), max_value=2**70).map(str)
    words = st.sampled_from(["nan", "inf", "-inf", "1e308", "-0", "", " ", "0x10", "1_000", "15m", "1w", "9999w",
                             "job=~(.|.)*z", "job=~a{99999999999}", r"job=~(a)\1", "job=~", "=x", "firing", "ok"])
    return st.one_of(numbers, words, st.text(max_size=120))


QUERIED = [
    "/api/v1/series", "/api/v1/anomalies", "/check_health", "/api/v1/notifications", "/api/v1/series/{series_id}",
]


@pytest.mark.parametrize("path", QUERIED)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_parameter_makes_a_server_error_or_an_undocumented_status(
    stocked: TestClient, path: str, data: st.DataObject
) -> None:
    op = operations(stocked)[path]
    names = [p["name"] for p in op["parameters"] if p["in"] == "query"]
    params = data.draw(st.dictionaries(st.sampled_from(names), junk(), max_size=4))
    series_id = data.draw(st.one_of(st.just("0123456789abcdef"), st.text(
        alphabet=st.characters(blacklist_characters="/.", blacklist_categories=["Cs"]), min_size=1, max_size=120)))
    url = path.replace("{series_id}", quote(series_id, safe=""))
    response = stocked.get(url, params=params)
    assert str(response.status_code) in op["responses"], (url, params, response.status_code, response.text[:200])
    assert response.status_code < 500 or response.status_code == 503, (url, params, response.text[:200])
