"""The event endpoints: /api/v1/anomalies and /api/v1/notifications."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query

from vigil.http.listing import event_text, iso, with_delivery, words
from vigil.http.models import EventPage, NotificationPage, refusals
from vigil.http.params import MAX_NAME, MAX_SEARCH, MAX_TIME, Labels, Offset, parse_matchers, parse_time
from vigil.http.parts import Parts

__all__ = ["events_router"]


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
