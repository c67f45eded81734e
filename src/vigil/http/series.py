"""The series endpoints: /api/v1/summary, /api/v1/series and /api/v1/series/{id}.

`summary_of`, `series_page` and `series_detail_of` are what the endpoints answer; the MCP tools
(`vigil.http.mcp_tools`) answer with them too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from vigil import __version__
from vigil.config import parse_duration
from vigil.http.cache import AnswerCache
from vigil.http.listing import (
    Pick,
    event_spans,
    iso,
    item,
    point_marks,
    select,
    sparklines,
    statuses_of,
    with_delivery,
)
from vigil.http.models import (
    STATUSES,
    SeriesDetail,
    SeriesPage,
    SourceStatus,
    Sparkline,
    Status,
    Summary,
    refusals,
)
from vigil.http.params import MAX_NAME, MAX_SEARCH, MAX_TIME, Labels, Offset, parse_matchers, parse_time
from vigil.http.parts import Parts

__all__ = ["series_detail_of", "series_page", "series_router", "summary_of"]


def summary_of(parts: Parts) -> Summary:
    """Counts of series by status, events and notifications, and how each source stands."""
    now = parts.engine.clock()
    counts = dict.fromkeys(STATUSES, 0)
    sources = {}
    queries = list(parts.engine.queries.values())
    _, reasons = parts.engine.ready()
    for q in queries:
        rows = q.table.active_rows()
        for rank, n in zip(*np.unique(statuses_of(q, rows), return_counts=True), strict=True):
            counts[STATUSES[rank]] += int(n)
        if q.errors:
            state: Literal["ok", "failing", "waiting", "degraded"] = "failing"
            detail = f"source failing: {q.last_error}"
        elif q.last_ok is None:
            state, detail = "waiting", "no successful fetch yet"
        elif q.refused_now:
            state, detail = "degraded", reasons[q.name]
        else:
            state, detail = "ok", "ok"
        sources[q.name] = SourceStatus(
            status=state, detail=detail, series=int(rows.size), interval=q.interval,
            last_ok=None if q.last_ok is None else iso(q.last_ok),
        )
    _, firing = parts.store.events(state="firing", limit=0)
    return Summary(
        version=__version__, now=iso(now), series=sum(counts.values()), anomalous=counts["anomalous"],
        warming_up=counts["warming_up"], events_firing=firing,
        events_last_hour=parts.store.count_since(now - 3600), events_last_day=parts.store.count_since(now - 86400),
        history_points=max((q.table.history_points for q in queries), default=parts.config.limits.history_points),
        sources=sources,
        notifications={} if parts.outbox is None else parts.outbox.counts(),
    )


def series_page(
    parts: Parts, *, query: str | None = None, label: Sequence[str] = (), status: str | None = None,
    search: str | None = None, limit: int = 100, offset: int = 0, sparkline: int = 0,
) -> SeriesPage:
    """The series that pass the filters, anomalous first; HTTP 400 that says what to write for a bad matcher."""
    picks = select(parts, query, parse_matchers(label), status, search)
    page = picks[offset : offset + limit]
    lines: Sequence[Sparkline | None] = sparklines(parts, page, sparkline) if sparkline else [None] * len(page)
    items = [item(p, line) for p, line in zip(page, lines, strict=True)]
    return SeriesPage(total=len(picks), offset=offset, items=items)


def series_detail_of(parts: Parts, series_id: str, since: str | None = None, window: str | None = None) -> SeriesDetail:
    """A series' recent points with bands, and its events; HTTP 400 for a bad time, 404 for an unknown id."""
    since_ts = parse_time(since, "since")
    try:
        span = None if window is None else parse_duration(window)
    except ValueError as exc:
        raise HTTPException(400, f"window is {window!r}; {exc}") from None
    for q in parts.engine.queries.values():
        row = q.table.row_of_id(series_id)
        if row is None:
            continue
        if span is not None:
            since_ts = max(since_ts or -math.inf, float(q.table.state["last_t"][row]) - span)
        events, _ = parts.store.events(query=q.name, series=[q.table.keys[row] or ""], limit=50)
        points = q.table.history(row, since_ts)
        status = STATUSES[int(statuses_of(q, np.array([row]))[0])]
        return SeriesDetail(
            series=item(Pick(q, row, status)), points=points,
            anomalous=point_marks(points, q.detection.threshold, event_spans(events)),
            threshold=q.detection.threshold, interval=q.interval, history_points=q.table.history_points,
            events=with_delivery(parts, events),
        )
    raise HTTPException(404, f"no series with id {series_id[:MAX_NAME]!r}; list them at /api/v1/series")


def series_router(parts: Parts) -> APIRouter:
    router = APIRouter()
    answers = AnswerCache()

    @router.get("/api/v1/summary", response_model=Summary, summary="Counts for the page's health summary")
    def summary() -> Summary:
        return summary_of(parts)

    @router.get("/api/v1/series", response_model=SeriesPage, summary="Series, anomalous first", responses=refusals(400))
    async def series(
        query: str | None = Query(None, max_length=MAX_NAME, description="only this query's series"),
        label: Labels = (),
        status: Status | None = None,
        search: str | None = Query(None, max_length=MAX_SEARCH,
                                   description="words that must all appear in the query name or the labels"),
        limit: int = Query(100, ge=1, le=10000),
        offset: Offset = 0,
        sparkline: int = Query(0, ge=0, le=1000, description="add each item's last N points (0: none)"),
    ) -> Response:
        parse_matchers(label)  # a bad matcher is refused here, on the event loop, not in the cache's thread

        def answer() -> bytes:
            page = series_page(parts, query=query, label=label, status=status, search=search, limit=limit,
                               offset=offset, sparkline=sparkline)
            return page.model_dump_json().encode()

        key = (query, tuple(label), status, search, limit, offset, sparkline)
        generation = parts.engine.generation
        body = answers.fresh(key, generation)  # on the event loop: no thread for an answer already made
        if body is None:
            body = await run_in_threadpool(answers.get, key, generation, answer)
        return Response(body, media_type="application/json")

    @router.get(
        "/api/v1/series/{series_id}", response_model=SeriesDetail, summary="Recent points with bands, and events",
        responses=refusals(400, 404),
    )
    def series_detail(
        series_id: str = Path(
            min_length=1, max_length=MAX_NAME, description="a series' id, as /api/v1/series lists them"
        ),
        since: str | None = Query(
            None, max_length=MAX_TIME, description="only points at or after: Unix seconds or RFC 3339"
        ),
        window: str | None = Query(None, max_length=MAX_TIME,
                                   description="only the points this long before the latest one: 15m, 1h"),
    ) -> SeriesDetail:
        return series_detail_of(parts, series_id, since, window)

    return router
