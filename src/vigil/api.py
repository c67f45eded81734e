"""The HTTP API: health per series, events, series with their bands, metrics, probes.

`create_app(service)` builds the FastAPI app. Every endpoint but /healthz and /readyz
needs the bearer token when one is configured; request bodies are capped; each client gets
a token bucket of `rate_limit` requests per second. Invalid parameters get a 4xx whose
`detail` says what was wrong. The OpenAPI document is at /openapi.json (the interactive
docs pages are off: they load scripts from a CDN).
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import operator
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from vigil import __version__
from vigil.exporter import iter_render

if TYPE_CHECKING:
    from vigil.service import Service

__all__ = ["create_app", "parse_matchers", "parse_time"]

_MATCHER = re.compile(r"^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)(.*)$")
_OPEN = {"/healthz", "/readyz"}


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds or RFC 3339 -> Unix seconds; HTTP 400 that says what to write."""
    if value is None:
        return None
    advice = f"{name} is {value!r}; write Unix seconds or RFC 3339 such as 2026-01-31T12:00:00Z"
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(400, advice) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    if not math.isfinite(seconds):  # nan, inf: not a time
        raise HTTPException(400, advice)
    return seconds


def parse_matchers(values: list[str]) -> list[Callable[[dict[str, str]], bool]]:
    """``job=api``, ``job!=api``, ``job=~ap.*``, ``job!~ap.*`` (the metric name is ``__name__``)."""
    out: list[Callable[[dict[str, str]], bool]] = []
    for raw in values:
        m = _MATCHER.match(raw) or re.match(r"^(__name__)(=~|!~|!=|=)(.*)$", raw)
        if not m:
            raise HTTPException(400, f"label is {raw!r}; write name=value, name!=value, name=~regex or name!~regex")
        name, op, want = m.groups()
        if op in ("=~", "!~"):
            try:
                rx = re.compile(want)
            except re.error as exc:
                raise HTTPException(400, f"label {raw!r}: bad regular expression ({exc})") from None
            out.append(_regex_matcher(name, rx, op == "=~"))
        else:
            out.append(_equal_matcher(name, want, op == "="))
    return out


def _regex_matcher(name: str, rx: re.Pattern[str], hit: bool) -> Callable[[dict[str, str]], bool]:
    return lambda labels: bool(rx.fullmatch(labels.get(name, ""))) == hit


def _equal_matcher(name: str, want: str, same: bool) -> Callable[[dict[str, str]], bool]:
    return lambda labels: (labels.get(name, "") == want) == same


class SeriesItem(BaseModel):
    id: str
    query: str
    labels: dict[str, str]
    status: Literal["ok", "anomalous", "warming_up"]
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    score: float | None
    last_sample_at: str | None
    reason: str
    shard: str | None = Field(
        None, exclude_if=lambda v: v is None,
        description="i/N, the shard that owns the series; present only when Vigil runs sharded",
    )


class SeriesPage(BaseModel):
    total: int
    offset: int
    items: list[SeriesItem]


class HealthReport(BaseModel):
    status: Literal["ok", "anomalous"]
    series: int
    anomalous: int
    warming_up: int
    sources: dict[str, str]
    offset: int
    items: list[SeriesItem]


class SeriesDetail(BaseModel):
    series: SeriesItem
    points: dict[str, list[float | None]]
    events: list[dict[str, Any]]


class EventPage(BaseModel):
    total: int
    offset: int
    items: list[dict[str, Any]]


class NotificationPage(BaseModel):
    total: int
    offset: int
    receivers: dict[str, dict[str, int]]
    items: list[dict[str, Any]]


def _num(x: float) -> float | None:
    return round(float(x), 9) if math.isfinite(x) else None


def _iso(ts: float) -> str | None:
    if not math.isfinite(ts):
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _series_items(service: Service, query: str | None, matchers: list[Callable[[dict[str, str]], bool]],
                  status: str | None) -> list[SeriesItem]:
    items = []
    for q in service.engine.queries.values():
        if query is not None and q.name != query:
            continue
        s = q.table.state
        threshold = q.detection.threshold
        for row in q.table.active_rows().tolist():
            labels = q.table.labels[row] or {}
            if not all(m(labels) for m in matchers):
                continue
            value, exp, lo, hi, score = (float(s[k][row]) for k in ("value", "expected", "lower", "upper", "score"))
            if s["anomalous"][row]:
                st: Literal["ok", "anomalous", "warming_up"] = "anomalous"
                reason = (
                    f"value {value:.6g} outside the band {lo:.6g} to {hi:.6g} (expected {exp:.6g}), score {score:.6f}"
                    if math.isfinite(exp) else f"anomaly score {score:.6f} at or above {threshold}"
                )
                if math.isfinite(score) and score < threshold:
                    reason = f"anomaly event still open (last score {score:.6f}, resolves after quiet samples)"
            elif s["warming"][row]:
                st, reason = "warming_up", "the detector is still learning this series"
            else:
                st, reason = "ok", "within the expected band" if math.isfinite(exp) else "score below the threshold"
            if status is not None and st != status:
                continue
            items.append(SeriesItem(
                id=q.table.ids[row] or "", query=q.name, labels=labels, status=st, value=_num(value),
                expected=_num(exp), lower=_num(lo), upper=_num(hi), score=_num(score),
                last_sample_at=_iso(float(s["last_t"][row])), reason=reason,
                shard=None if q.shard is None else q.shard.text,
            ))
    rank = {"anomalous": 0, "warming_up": 1, "ok": 2}
    items.sort(key=lambda i: (rank[i.status], -(i.score or 0), i.query, i.id))
    return items


@dataclass
class _Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)


def create_app(service: Service) -> FastAPI:
    cfg = service.config.server
    token = cfg.token.get() if cfg.token else None
    buckets: dict[str, _Bucket] = {}
    app = FastAPI(
        title="Vigil", version=__version__, docs_url=None, redoc_url=None,
        description="Real-time anomaly detection for metrics: per-series health, events and bands.",
    )

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > cfg.max_request_bytes):
            return JSONResponse({"detail": f"request body over {cfg.max_request_bytes} bytes"}, 413)
        if request.url.path in _OPEN:  # probes: never limited, never need the token
            return await call_next(request)
        client = request.client.host if request.client else "?"
        now = time.monotonic()
        b = buckets.setdefault(client, _Bucket(tokens=2 * cfg.rate_limit))
        b.tokens = min(2 * cfg.rate_limit, b.tokens + (now - b.at) * cfg.rate_limit)
        b.at = now
        if b.tokens < 1:
            return JSONResponse({"detail": "too many requests; slow down"}, 429, headers={"Retry-After": "1"})
        b.tokens -= 1
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse(
                    {"detail": "missing or wrong bearer token"}, 401, headers={"WWW-Authenticate": "Bearer"}
                )
        return await call_next(request)

    @app.get("/healthz", summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Every source answered its last fetch", responses={503: {"description": "not ready"}})
    def readyz() -> JSONResponse:
        ready, reasons = service.engine.ready()
        return JSONResponse({"ready": ready, "reasons": reasons}, 200 if ready else 503)

    @app.get("/metrics", summary="Prometheus exposition of every series' results and Vigil's own health")
    def metrics() -> StreamingResponse:
        chunks = iter_render(service.metrics, list(service.engine.queries.values()))
        return StreamingResponse(chunks, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get(
        "/check_health", response_model=HealthReport,
        summary="Per series: ok, anomalous or warming up, with the reason; 503 while any is anomalous",
        responses={503: {"description": "at least one series is anomalous"}},
    )
    def check_health(
        query: str | None = None,
        label: list[str] = Query(default=[], description="label matcher, repeatable: job=api, job=~a.*"),  # noqa: B008
        status: Literal["ok", "anomalous", "warming_up"] | None = None,
        limit: int = Query(1000, ge=1, le=10000),
        offset: int = Query(0, ge=0),
    ) -> JSONResponse:
        everything = _series_items(service, query, parse_matchers(label), None)
        anomalous = sum(i.status == "anomalous" for i in everything)
        warming = sum(i.status == "warming_up" for i in everything)
        shown = [i for i in everything if status is None or i.status == status]
        _, reasons = service.engine.ready()
        report = HealthReport(
            status="anomalous" if anomalous else "ok", series=len(everything), anomalous=anomalous,
            warming_up=warming,
            sources={name: reasons.get(name, "ok") for name in service.engine.queries},
            offset=offset, items=shown[offset : offset + limit],
        )
        return JSONResponse(report.model_dump(), 503 if anomalous else 200)

    @app.get("/api/v1/series", response_model=SeriesPage, summary="Series, anomalous first")
    def series(
        query: str | None = None,
        label: list[str] = Query(default=[]),  # noqa: B008
        status: Literal["ok", "anomalous", "warming_up"] | None = None,
        limit: int = Query(100, ge=1, le=10000),
        offset: int = Query(0, ge=0),
    ) -> SeriesPage:
        items = _series_items(service, query, parse_matchers(label), status)
        return SeriesPage(total=len(items), offset=offset, items=items[offset : offset + limit])

    @app.get("/api/v1/series/{series_id}", response_model=SeriesDetail, summary="Recent points with bands, and events")
    def series_detail(series_id: str, since: str | None = None) -> SeriesDetail:
        since_ts = parse_time(since, "since")
        for q in service.engine.queries.values():
            row = q.table.by_id.get(series_id)
            if row is None:
                continue
            labels = q.table.labels[row] or {}
            item = next(i for i in _series_items(service, q.name, [partial(operator.eq, labels)], None) if i.id == series_id)
            events, _ = service.store.events(query=q.name, series=[q.table.keys[row] or ""], limit=50)
            return SeriesDetail(series=item, points=q.table.history(row, since_ts), events=events)
        raise HTTPException(404, f"no series with id {series_id!r}; list them at /api/v1/series")

    @app.get("/api/v1/anomalies", response_model=EventPage, summary="Anomaly events, newest first")
    def anomalies(
        start: str | None = Query(None, description="events still open at or ended after this time"),
        end: str | None = Query(None, description="events started at or before this time"),
        state: Literal["firing", "resolved"] | None = None,
        query: str | None = None,
        label: list[str] = Query(default=[]),  # noqa: B008
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> EventPage:
        t0, t1 = parse_time(start, "start"), parse_time(end, "end")
        if t0 is not None and t1 is not None and t0 > t1:
            raise HTTPException(400, f"start ({start}) is after end ({end})")
        matchers = parse_matchers(label)
        if not matchers:
            items, total = service.store.events(start=t0, end=t1, state=state, query=query, limit=limit, offset=offset)
        else:
            every, _ = service.store.events(start=t0, end=t1, state=state, query=query, limit=1_000_000)
            hits = [e for e in every if all(m(e["series"]) for m in matchers)]
            items, total = hits[offset : offset + limit], len(hits)
        if service.outbox is not None:  # receiver -> event state -> delivery status
            sent = service.outbox.summary([e["id"] for e in items])
            items = [{**e, "notifications": sent.get(e["id"], {})} for e in items]
        return EventPage(total=total, offset=offset, items=items)

    @app.get(
        "/api/v1/notifications", response_model=NotificationPage,
        summary="Outbox messages, newest first, and counts per receiver (never a URL, header or body)",
    )
    def notifications(
        state: Literal["pending", "sent", "dead"] | None = Query(None, description="delivery status"),
        receiver: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> NotificationPage:
        if service.outbox is None:
            return NotificationPage(total=0, offset=offset, receivers={}, items=[])
        items, total = service.outbox.page(state, receiver, limit, offset)
        for item in items:
            for key in ("next_attempt_at", "created_at", "updated_at", "sent_at"):
                item[key] = None if item[key] is None else _iso(item[key])
        return NotificationPage(total=total, offset=offset, receivers=service.outbox.counts(), items=items)

    @app.get("/", summary="What this is")
    def index() -> dict[str, Any]:
        return {
            "name": "vigil", "version": __version__,
            "endpoints": ["/check_health", "/api/v1/anomalies", "/api/v1/series", "/api/v1/series/{id}",
                          "/api/v1/notifications", "/metrics", "/healthz", "/readyz", "/openapi.json"],
        }

    return app
