"""What the API answers: one pydantic model per response, as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from vigil.outputs.event import EventDocument
from vigil.outputs.feedback import FeedbackItem

__all__ = [
    "GUARDED", "GUARDED_TEXT", "STATUSES", "EventItem", "EventPage", "HealthReport", "NotificationPage", "Problem",
    "Readiness", "SeriesDetail", "SeriesItem", "SeriesPage", "SourceStatus", "Sparkline", "Status", "Summary",
    "refusals",
]

Status = Literal["ok", "anomalous", "warming_up"]
STATUSES: tuple[Status, Status, Status] = ("anomalous", "warming_up", "ok")


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


class Readiness(BaseModel):
    ready: bool
    reasons: dict[str, str] = Field(description="query (or store) -> why it is not ready, or degraded")


class HealthReport(BaseModel):
    status: Literal["ok", "anomalous"]
    series: int
    anomalous: int
    warming_up: int
    sources: dict[str, str]
    offset: int
    items: list[SeriesItem]


class EventItem(EventDocument):
    """An event as the API lists it: the event document, its series' id, its verdict and, with receivers, its notifications."""

    series_id: str = Field(description="the series in /api/v1/series/{id}")
    notifications: dict[str, dict[str, str]] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="receiver -> event state -> pending, sent or dead; present when Vigil has receivers",
    )
    delivery: dict[str, dict[str, str]] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="receiver -> event state -> queued, retrying, sent or dead; present when Vigil has receivers",
    )
    feedback: FeedbackItem | None = Field(
        None, exclude_if=lambda v: v is None,
        description="the verdict in force on the event (/api/v1/anomalies/{id}/feedback); present when there is one",
    )


class SeriesDetail(BaseModel):
    series: SeriesItem
    points: dict[str, list[float | None]]
    anomalous: list[bool] = Field(description="per point: its score reached the threshold inside an event")
    threshold: float
    interval: float = Field(description="seconds between the query's fetches")
    history_points: int = Field(description="how many recent points Vigil keeps per series")
    events: list[EventItem]


class EventPage(BaseModel):
    total: int
    offset: int
    items: list[EventItem]


class NotificationPage(BaseModel):
    total: int
    offset: int
    receivers: dict[str, dict[str, int]]
    items: list[dict[str, Any]]


class SourceStatus(BaseModel):
    status: Literal["ok", "failing", "waiting", "degraded"]
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


class Problem(BaseModel):
    """A refused request."""

    detail: str = Field(description="what was wrong and what to write instead")


_REFUSALS = {
    400: "a parameter is malformed or out of range; detail says what to write",
    401: "missing or wrong bearer token (server.token or server.tokens is set)",
    404: "no such item; detail says where to list them",
    413: "request body over server.max_request_bytes",
    421: "the Host header names a host this server does not answer to (server.allowed_hosts)",
    422: "the body or a parameter is not valid; detail, one line, says what to write",
    429: "more requests than server.rate_limit allows; retry after Retry-After seconds",
}


def refusals(*codes: int, text_route: bool = False) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these refusals, each a `Problem` in JSON.

    `text_route`: for a route whose own answer is text (/metrics). FastAPI lists a response's
    `model` under the route's media type, but a refusal is JSON on every route, so there
    each names its content itself (`Problem` is among the schemas: the other routes list it).
    """
    if text_route:
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        return {code: {"description": _REFUSALS[code], "content": content} for code in codes}
    return {code: {"model": Problem, "description": _REFUSALS[code]} for code in codes}


_GUARD = (401, 413, 421, 429)  # what the guard in front of every endpoint but the probes may answer
GUARDED = refusals(*_GUARD)
GUARDED_TEXT = refusals(*_GUARD, text_route=True)
