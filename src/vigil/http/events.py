"""The event endpoints: /api/v1/anomalies, /api/v1/anomalies/{id} and /api/v1/notifications.

`event_page` and `event_detail` are what the endpoints answer; the MCP tools
(`vigil.http.mcp_tools`) answer with them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query

from vigil.http.listing import event_text, iso, with_delivery, words
from vigil.http.models import EventItem, EventPage, NotificationPage, refusals
from vigil.http.params import MAX_NAME, MAX_SEARCH, MAX_TIME, Labels, Offset, parse_matchers, parse_time
from vigil.http.parts import Parts

__all__ = ["MAX_EVENT_ID", "event_detail", "event_page", "events_router"]

MAX_EVENT_ID = 64  # an event id is 20 hex characters; longer text is refused before the store is asked


def event_page(
    parts: Parts, *, start: str | None = None, end: str | None = None, state: str | None = None,
    query: str | None = None, label: Sequence[str] = (), search: str | None = None, limit: int = 100, offset: int = 0,
) -> EventPage:
    """The events that pass the filters, newest first; HTTP 400 that says what to write for a bad filter."""
    t0, t1 = parse_time(start, "start"), parse_time(end, "end")
    if t0 is not None and t1 is not None and t0 > t1:
        raise HTTPException(400, f"start ({start}) is after end ({end})")
    matchers, wanted = parse_matchers(label), words(search)
    if not matchers and not wanted:
        items, total = parts.store.events(start=t0, end=t1, state=state, query=query, limit=limit, offset=offset)
    else:
        every, _ = parts.store.events(start=t0, end=t1, state=state, query=query, limit=1_000_000)
        hits = [
            e for e in every if all(m(e["series"]) for m in matchers)
            and all(w in event_text(e) for w in wanted)
        ]
        items, total = hits[offset : offset + limit], len(hits)
    return EventPage(total=total, offset=offset, items=with_delivery(parts, items))


def event_detail(parts: Parts, event_id: str) -> EventItem:
    """One event by its id; HTTP 404 that says where to list them."""
    doc = parts.store.event(event_id)
    if doc is None:
        raise HTTPException(404, f"no event with id {event_id[:MAX_EVENT_ID]!r}; list them at /api/v1/anomalies")
    return EventItem.model_validate(with_delivery(parts, [doc])[0])


def events_router(parts: Parts) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/api/v1/anomalies", response_model=EventPage, summary="Anomaly events, newest first", responses=refusals(400)
    )
    def anomalies(
        start: str | None = Query(
            None, max_length=MAX_TIME, description="events still open at or ended after this time: Unix seconds or RFC 3339"
        ),
        end: str | None = Query(None, max_length=MAX_TIME,
                                description="events started at or before this time: Unix seconds or RFC 3339"),
        state: Literal["firing", "resolved"] | None = None,
        query: str | None = Query(None, max_length=MAX_NAME, description="only this query's events"),
        label: Labels = (),
        search: str | None = Query(None, max_length=MAX_SEARCH,
                                   description="words that must all appear in the summary, query or labels"),
        limit: int = Query(100, ge=1, le=1000),
        offset: Offset = 0,
    ) -> EventPage:
        return event_page(parts, start=start, end=end, state=state, query=query, label=label, search=search,
                          limit=limit, offset=offset)

    @router.get(
        "/api/v1/anomalies/{event_id}", response_model=EventItem, summary="One anomaly event by its id",
        responses=refusals(404),
    )
    def anomaly(
        event_id: str = Path(min_length=1, max_length=MAX_EVENT_ID, description="an event's id, as listed"),
    ) -> EventItem:
        return event_detail(parts, event_id)

    @router.get(
        "/api/v1/notifications", response_model=NotificationPage,
        summary="Outbox messages, newest first, and counts per receiver (never a URL, header or body)",
    )
    def notifications(
        state: Literal["pending", "sent", "dead"] | None = Query(None, description="delivery status"),
        receiver: str | None = Query(None, max_length=MAX_NAME, description="only this receiver's messages"),
        limit: int = Query(100, ge=1, le=1000),
        offset: Offset = 0,
    ) -> NotificationPage:
        if parts.outbox is None:
            return NotificationPage(total=0, offset=offset, receivers={}, items=[])
        items, total = parts.outbox.page(state, receiver, limit, offset)
        for message in items:
            for key in ("next_attempt_at", "created_at", "updated_at", "sent_at"):
                message[key] = None if message[key] is None else iso(message[key])
        return NotificationPage(total=total, offset=offset, receivers=parts.outbox.counts(), items=items)

    return router
