"""The MCP tools: what an AI agent may ask Vigil, answered by the API's own functions.

Each read tool calls what the matching endpoint calls (`events.event_page`,
`events.event_detail`, `series.series_page`, `series.series_detail_of`,
`series.summary_of`) and trims the answer to what an agent reads: listings carry one line
per event instead of its points. A refusal of the API (a bad matcher, an unknown id) comes
back as a tool error with the API's one-line message. The write tools call what
their endpoints call too (`outputs.feedback.give_feedback`, `mutes.create_mute`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from vigil.errors import VigilError
from vigil.http.events import event_detail, event_page
from vigil.http.models import EventItem, SeriesItem, SeriesPage, Status, Summary
from vigil.http.mutes import MuteRequest, create_mute
from vigil.http.params import MAX_MATCHERS, MAX_NAME, MAX_PATTERN, MAX_SEARCH, MAX_TIME
from vigil.http.parts import Parts
from vigil.http.series import series_detail_of, series_page, summary_of
from vigil.outputs.feedback import NoSuchEvent, event_feedback, give_feedback

__all__ = ["AnomalyBrief", "AnomalyList", "Explanation", "SeriesView", "Tools", "agreed"]

Matchers = Annotated[list[Annotated[str, Field(max_length=MAX_NAME + 2 + MAX_PATTERN)]], Field(  # name, =~, pattern
    max_length=MAX_MATCHERS,
    description="label matchers as in Prometheus, all must hold: job=node, instance!=web-1, mode=~user|system, "
                "device!~loop.*",
)]
Time = Annotated[str, Field(max_length=MAX_TIME, description="Unix seconds or RFC 3339, such as 2026-01-31T12:00:00Z")]
EventId = Annotated[str, Field(min_length=1, max_length=64, description="an event's id, as list_anomalies gives it")]
SeriesId = Annotated[str, Field(min_length=1, max_length=MAX_NAME,
                                description="a series' id, as list_series or list_anomalies gives it")]


class AnomalyBrief(BaseModel):
    """An event in one line: its ids, when, how strong, and the sentence for a person."""

    id: str
    series_id: str = Field(description="the series, for get_series")
    state: Literal["firing", "resolved"]
    query: str
    series: dict[str, str] = Field(description="the series' labels, its metric name in __name__")
    started_at: str
    ended_at: str | None
    peak_score: float | None = Field(description="anomaly score at the peak, 0 to 1")
    summary: str


class AnomalyList(BaseModel):
    total: int = Field(description="events that pass the filters, of which `items` are the newest")
    items: list[AnomalyBrief]


class SeriesView(BaseModel):
    """A series now: its value, band, score and the reason, its recent points, and its events."""

    series: SeriesItem
    points: dict[str, list[float | None]] = Field(description="t (Unix seconds), value, expected, lower, upper, score")
    anomalous: list[bool] = Field(description="per point: its score reached the threshold inside an event")
    threshold: float
    agreed: list[str] = Field(description="the detectors that agreed at the peak of the series' latest event")
    events: list[AnomalyBrief] = Field(description="the series' events, newest first")


class Explanation(BaseModel):
    """An event with what says why: the detectors that agreed, the series now, and people's verdicts."""

    event: EventItem = Field(description="the event document: summary, band at the peak, recent points, scores")
    agreed: list[str] = Field(description="the detectors whose score at the peak reached the threshold")
    series_now: SeriesItem | None = Field(description="the series as it is now; null when Vigil no longer sees it")
    feedback: dict[str, Any] | None = Field(
        description="the verdict in force and every verdict people gave on this event; null where Vigil has no feedback"
    )


def agreed(doc: dict[str, Any]) -> list[str]:
    """The detectors of an event document whose score at the peak reached its threshold."""
    edge = doc.get("threshold")
    scores = doc.get("detectors") or {}
    return [] if edge is None else [name for name, s in scores.items() if s is not None and s >= edge - 1e-9]


def _brief(doc: dict[str, Any]) -> AnomalyBrief:
    return AnomalyBrief.model_validate({k: doc.get(k) for k in AnomalyBrief.model_fields})


@contextmanager
def _refusals() -> Iterator[None]:
    """The API's refusals (HTTP 4xx with a `detail`) and Vigil's own errors (a store that cannot be read) as tool
    errors with their one line."""
    try:
        yield
    except HTTPException as exc:
        raise ToolError(str(exc.detail)) from None
    except VigilError as exc:
        raise ToolError(str(exc)) from None


class Tools:
    """The tools over the running `parts`."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    def list_anomalies(
        self,
        state: Literal["firing", "resolved"] | None = None,
        query: Annotated[str | None, Field(max_length=MAX_NAME, description="only this query's events")] = None,
        labels: Matchers | None = None,
        since: Annotated[Time | None, Field(description="events still open at or ended after this time")] = None,
        search: Annotated[str | None, Field(max_length=MAX_SEARCH,
                                            description="words that must all appear in the summary or labels")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
    ) -> AnomalyList:
        """Anomaly events, newest first, one line each: what is or was anomalous, since when, how strongly.

        Filter by state (firing: still open), query name, label matchers, a start time or
        words. Take an item's `id` to explain_anomaly, its `series_id` to get_series.
        """
        with _refusals():
            page = event_page(self.parts, start=since, state=state, query=query, label=labels or (), search=search,
                              limit=limit)
        return AnomalyList(total=page.total, items=[_brief(e.model_dump()) for e in page.items])

    def explain_anomaly(self, event_id: EventId) -> Explanation:
        """One event in full, and why: the summary, the value against its band at the peak,
        each detector's score and which of them agreed, the points up to the event, the
        series as it is now, and the verdicts people gave on it."""
        with _refusals():
            event = event_detail(self.parts, event_id)
            try:
                now: SeriesItem | None = series_detail_of(self.parts, event.series_id, window="0s").series
            except HTTPException:  # the series is gone (evicted, or another shard's)
                now = None
            verdicts = event_feedback(self.parts.store, event_id).model_dump(mode="json")
        return Explanation(event=event, agreed=agreed(event.model_dump()), series_now=now, feedback=verdicts)

    def get_series(
        self,
        series_id: SeriesId,
        points: Annotated[int, Field(ge=1, le=1000, description="how many of the latest points")] = 60,
    ) -> SeriesView:
        """One series now: its latest value, expected value and band, anomaly score and the
        reason for its status, its latest points, the detectors that agreed in its latest
        event, and its events."""
        with _refusals():
            detail = series_detail_of(self.parts, series_id)
        latest = detail.events[0].model_dump() if detail.events else None
        return SeriesView(
            series=detail.series, points={k: v[-points:] for k, v in detail.points.items()},
            anomalous=detail.anomalous[-points:], threshold=detail.threshold,
            agreed=[] if latest is None else agreed(latest), events=[_brief(e.model_dump()) for e in detail.events],
        )

    def list_series(
        self,
        status: Status | None = None,
        query: Annotated[str | None, Field(max_length=MAX_NAME, description="only this query's series")] = None,
        labels: Matchers | None = None,
        search: Annotated[str | None, Field(max_length=MAX_SEARCH,
                                            description="words that must all appear in the query or labels")] = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 50,
    ) -> SeriesPage:
        """The series Vigil watches, anomalous first, with each one's value, band, score and status reason."""
        with _refusals():
            return series_page(self.parts, query=query, label=labels or (), status=status, search=search, limit=limit)

    def summary(self) -> Summary:
        """How things stand: series by status, events firing and recent, each source's health, notifications."""
        with _refusals():
            return summary_of(self.parts)

    def give_feedback(
        self,
        event_id: EventId,
        verdict: Literal["not_an_incident", "incident"],
        note: Annotated[str | None, Field(max_length=1000)] = None,
        author: Annotated[str, Field(min_length=1, max_length=MAX_NAME)] = "mcp",
    ) -> dict[str, Any]:
        """Say whether an event was a real incident. not_an_incident teaches its series that
        this deviation is normal: the same deviation no longer alerts. Kept with time and author."""
        p = self.parts
        try:
            given = give_feedback(p.store, p.engine, p.metrics, event_id, verdict, note, author)
        except NoSuchEvent:
            raise ToolError(f"no event with id {event_id!r}; list them with list_anomalies") from None
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        return given.model_dump(mode="json")

    def mute(
        self,
        matchers: Annotated[str, Field(min_length=1, max_length=4000, description=(
            'PromQL selector of the series to mute, such as {instance="db-1", job="node"}; '
            "the query's name is the label query"))],
        duration: Annotated[str | None, Field(max_length=MAX_TIME,
                                              description="how long from starts_at, such as 30m or 2h")] = None,
        ends_at: Annotated[Time | None, Field(description="when it ends, instead of a duration")] = None,
        starts_at: Annotated[Time | None, Field(description="when it begins; default now")] = None,
        comment: Annotated[str, Field(max_length=1000)] = "",
        author: Annotated[str, Field(min_length=1, max_length=MAX_NAME)] = "mcp",
    ) -> dict[str, Any]:
        """Mute the series the selector picks, from starts_at for a duration (or until ends_at):
        their events are still recorded and marked muted, but nothing is notified and the
        muted samples are not learned. Give duration or ends_at."""
        body = MuteRequest(matchers=matchers, starts_at=starts_at, ends_at=ends_at, duration=duration, comment=comment)
        with _refusals():
            return create_mute(self.parts, body, author).model_dump(mode="json")
