"""The HTTP API and the page: health per series, events, series with their bands, metrics, probes.

`create_app(service)` builds the FastAPI app. Every endpoint but /healthz, /readyz and
the page (``/`` and its files under ``/static/``, which hold no data) needs the bearer
token when one is configured; request bodies are capped; each client gets a token bucket
of `rate_limit` requests per second. Invalid parameters get a 4xx whose `detail` says what
was wrong. The OpenAPI document is at /openapi.json (the interactive docs pages are off:
they load scripts from a CDN), a JSON index of the endpoints at /api/v1.

Listings do their filtering, sorting and paging here, so the page asks for one page of
rows whatever the number of series: the cheap arrays pick and order the rows, and only the
rows of the page are turned into items.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from vigil import __version__
from vigil.config import parse_duration
from vigil.exporter import iter_render
from vigil.notify.outbox import statuses
from vigil.series import series_id
from vigil.sources.base import series_key

if TYPE_CHECKING:
    from vigil.engine import Query as EngineQuery
    from vigil.service import Service

__all__ = ["create_app", "parse_matchers", "parse_time"]

_MATCHER = re.compile(r"^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)(.*)$")
_OPEN = {"/healthz", "/readyz"}
_STATIC = {"app.js": "text/javascript", "chart.js": "text/javascript", "style.css": "text/css"}
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
Status = Literal["ok", "anomalous", "warming_up"]
_STATUSES: tuple[Status, Status, Status] = ("anomalous", "warming_up", "ok")


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


class Sparkline(BaseModel):
    value: list[float | None]
    lower: list[float | None]
    upper: list[float | None]
    anomalous: list[bool] = Field(description="per point: its score reached the threshold inside an event")


class SeriesItem(BaseModel):
    id: str
    query: str
    labels: dict[str, str]
    status: Status
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
    sparkline: Sparkline | None = Field(
        None, exclude_if=lambda v: v is None,
        description="the last points of the series, present when asked for with ?sparkline=N",
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
    anomalous: list[bool] = Field(description="per point: its score reached the threshold inside an event")
    threshold: float
    interval: float = Field(description="seconds between the query's fetches")
    history_points: int = Field(description="how many recent points Vigil keeps per series")
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


class SourceStatus(BaseModel):
    status: Literal["ok", "failing", "waiting"]
    detail: str
    series: int
    interval: float
    last_ok: str | None


class Summary(BaseModel):
    version: str
    now: str | None
    series: int
    anomalous: int
    warming_up: int
    events_firing: int
    events_last_hour: int
    events_last_day: int
    history_points: int
    sources: dict[str, SourceStatus]
    notifications: dict[str, dict[str, int]] = Field(description="receiver -> pending / sent / dead -> messages")


def _num(x: float) -> float | None:
    return round(float(x), 9) if math.isfinite(x) else None


def _iso(ts: float) -> str | None:
    if not math.isfinite(ts):
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _ts(text: str | None) -> float:
    """An ISO time of an event document -> Unix seconds (None: still open, +inf)."""
    return math.inf if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _statuses(q: EngineQuery, rows: np.ndarray) -> np.ndarray:
    """0 anomalous, 1 warming up, 2 ok (the order of a listing), per row."""
    s = q.table.state
    return np.where(s["anomalous"][rows], 0, np.where(s["warming"][rows], 1, 2))


def _search_text(q: EngineQuery, row: int) -> str:
    labels = q.table.labels[row] or {}
    return " ".join([q.name, *(f"{k}={v}" for k, v in labels.items())]).lower()


def _words(search: str | None) -> list[str]:
    return (search or "").lower().split()


@dataclass(frozen=True)
class _Pick:
    """A series a listing chose, before it is made an item (only the page's are)."""

    q: EngineQuery
    row: int
    status: Status


def _select(service: Service, query: str | None, matchers: list[Callable[[dict[str, str]], bool]],
            status: str | None, search: str | None = None) -> list[_Pick]:
    """The series that pass the filters, anomalous first, then by score (highest first)."""
    words = _words(search)
    keyed: list[tuple[int, float, str, str, _Pick]] = []
    for q in service.engine.queries.values():
        if query is not None and q.name != query:
            continue
        rows = q.table.active_rows()
        ranks = _statuses(q, rows)
        scores = np.nan_to_num(q.table.state["score"][rows], nan=0.0)
        for row, rank, score in zip(rows.tolist(), ranks.tolist(), scores.tolist(), strict=True):
            st = _STATUSES[rank]
            if status is not None and st != status:
                continue
            if matchers and not all(m(q.table.labels[row] or {}) for m in matchers):
                continue
            if words and not all(w in _search_text(q, row) for w in words):
                continue
            keyed.append((rank, -score, q.name, q.table.ids[row] or "", _Pick(q, row, st)))
    keyed.sort(key=lambda k: k[:4])
    return [k[4] for k in keyed]


def _item(pick: _Pick, sparkline: Sparkline | None = None) -> SeriesItem:
    q, row, st = pick.q, pick.row, pick.status
    s = q.table.state
    threshold = q.detection.threshold
    value, exp, lo, hi, score = (float(s[k][row]) for k in ("value", "expected", "lower", "upper", "score"))
    if st == "anomalous":
        reason = (
            f"value {value:.6g} outside the band {lo:.6g} to {hi:.6g} (expected {exp:.6g}), score {score:.6f}"
            if math.isfinite(exp) else f"anomaly score {score:.6f} at or above {threshold}"
        )
        if math.isfinite(score) and score < threshold:
            reason = f"anomaly event still open (last score {score:.6f}, resolves after quiet samples)"
    elif st == "warming_up":
        reason = "the detector is still learning this series"
    else:
        reason = "within the expected band" if math.isfinite(exp) else "score below the threshold"
    return SeriesItem(
        id=q.table.ids[row] or "", query=q.name, labels=q.table.labels[row] or {}, status=st, value=_num(value),
        expected=_num(exp), lower=_num(lo), upper=_num(hi), score=_num(score),
        last_sample_at=_iso(float(s["last_t"][row])), reason=reason,
        shard=None if q.shard is None else q.shard.text, sparkline=sparkline,
    )


def _marks(points: dict[str, list[float | None]], threshold: float, spans: Iterable[tuple[float, float]]) -> list[bool]:
    """Which points are anomalies: their score reached the threshold inside one of the events' spans."""
    edge = round(float(np.float32(threshold)), 9)  # history keeps scores as float32, rounded to 9 places
    spans = [(a - 1e-3, b + 1e-3) for a, b in spans]  # times went through ISO text (microseconds)
    return [
        t is not None and s is not None and s >= edge and any(a <= t <= b for a, b in spans)
        for t, s in zip(points["t"], points["score"], strict=True)
    ]


def _spans(events: Iterable[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(_ts(e["started_at"]), _ts(e["ended_at"])) for e in events]


def _sparklines(service: Service, picks: Sequence[_Pick], n: int) -> list[Sparkline]:
    """The last `n` points of each picked series, with one store query per query for their events."""
    points = [p.q.table.history(p.row) for p in picks]
    points = [{k: v[-n:] for k, v in pts.items()} for pts in points]
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name in {p.q.name for p in picks}:
        mine = [(p, pts) for p, pts in zip(picks, points, strict=True) if p.q.name == name]
        first = min((pts["t"][0] for _, pts in mine if pts["t"] and pts["t"][0] is not None), default=None)
        keys = [p.q.table.keys[p.row] or "" for p, _ in mine]
        events, _ = service.store.events(query=name, series=keys, start=first, limit=10_000)
        for e, span in zip(events, _spans(events), strict=True):
            spans.setdefault((name, series_key(e["series"])), []).append(span)
    out = []
    for p, pts in zip(picks, points, strict=True):
        marks = _marks(pts, p.q.detection.threshold, spans.get((p.q.name, p.q.table.keys[p.row] or ""), []))
        out.append(Sparkline(value=pts["value"], lower=pts["lower"], upper=pts["upper"], anomalous=marks))
    return out


def _delivery(service: Service, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add to each event its series id and, with receivers, how its notifications stand."""
    items = [{**e, "series_id": series_id(e["query"], series_key(e["series"]))} for e in items]
    if service.outbox is None:
        return items
    ids = [e["id"] for e in items]
    delivery = service.outbox.delivery(ids)
    sent = statuses(delivery)
    return [{**e, "notifications": sent.get(e["id"], {}), "delivery": delivery.get(e["id"], {})} for e in items]


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
        path = request.url.path
        if path in _OPEN:  # probes: never limited, never need the token
            return await call_next(request)
        client = request.client.host if request.client else "?"
        now = time.monotonic()
        b = buckets.setdefault(client, _Bucket(tokens=2 * cfg.rate_limit))
        b.tokens = min(2 * cfg.rate_limit, b.tokens + (now - b.at) * cfg.rate_limit)
        b.at = now
        if b.tokens < 1:
            return JSONResponse({"detail": "too many requests; slow down"}, 429, headers={"Retry-After": "1"})
        b.tokens -= 1
        page = path == "/" or path.startswith("/static/")  # no data in them; the page asks for the token
        if token is not None and not page:
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
        status: Status | None = None,
        limit: int = Query(1000, ge=1, le=10000),
        offset: int = Query(0, ge=0),
    ) -> JSONResponse:
        everything = _select(service, query, parse_matchers(label), None)
        anomalous = sum(p.status == "anomalous" for p in everything)
        warming = sum(p.status == "warming_up" for p in everything)
        shown = [p for p in everything if status is None or p.status == status]
        _, reasons = service.engine.ready()
        report = HealthReport(
            status="anomalous" if anomalous else "ok", series=len(everything), anomalous=anomalous,
            warming_up=warming,
            sources={name: reasons.get(name, "ok") for name in service.engine.queries},
            offset=offset, items=[_item(p) for p in shown[offset : offset + limit]],
        )
        return JSONResponse(report.model_dump(), 503 if anomalous else 200)

    @app.get("/api/v1/summary", response_model=Summary, summary="Counts for the page's health summary")
    def summary() -> Summary:
        now = service.engine.clock()
        counts = dict.fromkeys(_STATUSES, 0)
        sources = {}
        queries = list(service.engine.queries.values())
        for q in queries:
            rows = q.table.active_rows()
            for rank, n in zip(*np.unique(_statuses(q, rows), return_counts=True), strict=True):
                counts[_STATUSES[rank]] += int(n)
            if q.errors:
                state: Literal["ok", "failing", "waiting"] = "failing"
                detail = f"source failing: {q.last_error}"
            elif q.last_ok is None:
                state, detail = "waiting", "no successful fetch yet"
            else:
                state, detail = "ok", "ok"
            sources[q.name] = SourceStatus(
                status=state, detail=detail, series=int(rows.size), interval=q.interval,
                last_ok=None if q.last_ok is None else _iso(q.last_ok),
            )
        _, firing = service.store.events(state="firing", limit=0)
        return Summary(
            version=__version__, now=_iso(now), series=sum(counts.values()), anomalous=counts["anomalous"],
            warming_up=counts["warming_up"], events_firing=firing,
            events_last_hour=service.store.count_since(now - 3600), events_last_day=service.store.count_since(now - 86400),
            history_points=max((q.table.history_points for q in queries), default=service.config.limits.history_points),
            sources=sources,
            notifications={} if service.outbox is None else service.outbox.counts(),
        )

    @app.get("/api/v1/series", response_model=SeriesPage, summary="Series, anomalous first")
    def series(
        query: str | None = None,
        label: list[str] = Query(default=[]),  # noqa: B008
        status: Status | None = None,
        search: str | None = Query(None, description="words that must all appear in the query name or the labels"),
        limit: int = Query(100, ge=1, le=10000),
        offset: int = Query(0, ge=0),
        sparkline: int = Query(0, ge=0, le=1000, description="add each item's last N points (0: none)"),
    ) -> SeriesPage:
        picks = _select(service, query, parse_matchers(label), status, search)
        page = picks[offset : offset + limit]
        lines: Sequence[Sparkline | None] = _sparklines(service, page, sparkline) if sparkline else [None] * len(page)
        items = [_item(p, line) for p, line in zip(page, lines, strict=True)]
        return SeriesPage(total=len(picks), offset=offset, items=items)

    @app.get("/api/v1/series/{series_id}", response_model=SeriesDetail, summary="Recent points with bands, and events")
    def series_detail(
        series_id: str,
        since: str | None = None,
        window: str | None = Query(None, description="only the points this long before the latest one: 15m, 1h"),
    ) -> SeriesDetail:
        since_ts = parse_time(since, "since")
        try:
            span = None if window is None else parse_duration(window)
        except ValueError as exc:
            raise HTTPException(400, f"window is {window!r}; {exc}") from None
        for q in service.engine.queries.values():
            row = q.table.by_id.get(series_id)
            if row is None:
                continue
            if span is not None:
                since_ts = max(since_ts or -math.inf, float(q.table.state["last_t"][row]) - span)
            events, _ = service.store.events(query=q.name, series=[q.table.keys[row] or ""], limit=50)
            points = q.table.history(row, since_ts)
            return SeriesDetail(
                series=_item(_Pick(q, row, _STATUSES[int(_statuses(q, np.array([row]))[0])])), points=points,
                anomalous=_marks(points, q.detection.threshold, _spans(events)), threshold=q.detection.threshold,
                interval=q.interval, history_points=q.table.history_points, events=_delivery(service, events),
            )
        raise HTTPException(404, f"no series with id {series_id!r}; list them at /api/v1/series")

    @app.get("/api/v1/anomalies", response_model=EventPage, summary="Anomaly events, newest first")
    def anomalies(
        start: str | None = Query(None, description="events still open at or ended after this time"),
        end: str | None = Query(None, description="events started at or before this time"),
        state: Literal["firing", "resolved"] | None = None,
        query: str | None = None,
        label: list[str] = Query(default=[]),  # noqa: B008
        search: str | None = Query(None, description="words that must all appear in the summary, query or labels"),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> EventPage:
        t0, t1 = parse_time(start, "start"), parse_time(end, "end")
        if t0 is not None and t1 is not None and t0 > t1:
            raise HTTPException(400, f"start ({start}) is after end ({end})")
        matchers, words = parse_matchers(label), _words(search)
        if not matchers and not words:
            items, total = service.store.events(start=t0, end=t1, state=state, query=query, limit=limit, offset=offset)
        else:
            every, _ = service.store.events(start=t0, end=t1, state=state, query=query, limit=1_000_000)
            hits = [
                e for e in every if all(m(e["series"]) for m in matchers)
                and all(w in _event_text(e) for w in words)
            ]
            items, total = hits[offset : offset + limit], len(hits)
        return EventPage(total=total, offset=offset, items=_delivery(service, items))

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

    @app.get("/api/v1", summary="What this is: the endpoints")
    def index() -> dict[str, Any]:
        return {
            "name": "vigil", "version": __version__,
            "endpoints": ["/", "/check_health", "/api/v1/summary", "/api/v1/anomalies", "/api/v1/series",
                          "/api/v1/series/{id}", "/api/v1/notifications", "/metrics", "/healthz", "/readyz",
                          "/openapi.json"],
        }

    web = files("vigil") / "web"
    page_html = (web / "index.html").read_bytes()
    assets = {name: (web / name).read_bytes() for name in _STATIC}

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return Response(page_html, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no file {name!r} here")
        return Response(assets[name], media_type=f"{_STATIC[name]}; charset=utf-8", headers=_PAGE_HEADERS)

    return app


def _event_text(e: dict[str, Any]) -> str:
    labels = " ".join(f"{k}={v}" for k, v in e["series"].items())
    return f"{e['query']} {labels} {e.get('summary', '')}".lower()
