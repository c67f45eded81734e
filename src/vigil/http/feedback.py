"""The feedback endpoints: verdicts on events (/api/v1/anomalies/{id}/feedback) and their list (/api/v1/feedback).

A verdict is signed with the name of the token the request carries (`server.tokens`),
else with the ``X-Vigil-Author`` header, else ``anonymous``. A body or parameter that is
not valid gets a 422 whose `detail` is one line saying what to write.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from vigil.http.models import refusals
from vigil.http.params import MAX_NAME, Author, Offset, signed_by
from vigil.http.parts import Parts
from vigil.outputs.feedback import (
    MAX_NOTE,
    VERDICTS,
    EventFeedback,
    FeedbackItem,
    NoSuchEvent,
    NoVerdict,
    Verdict,
    event_feedback,
    give_feedback,
    list_feedback,
    undo_feedback,
)

__all__ = ["FeedbackPage", "FeedbackRequest", "feedback_router"]

_EXAMPLE = '{"verdict": "not_an_incident", "note": "nightly backup"}'


class FeedbackRequest(BaseModel):
    """A verdict on an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict = Field(description="not_an_incident: the series learns that this deviation is normal; "
                                         "incident: recorded, teaches nothing")
    note: str | None = Field(None, max_length=MAX_NOTE, description="why, for the people who read it later")


class FeedbackPage(BaseModel):
    total: int
    offset: int
    items: list[FeedbackItem]


def _one_line(exc: RequestValidationError) -> str:
    """The first problem of a refused request, and what to write instead."""
    err = exc.errors()[0]
    origin, *path = [str(p) for p in err.get("loc", ())] or ["body"]
    where, kind, given = ".".join(path), err.get("type", ""), err.get("input")
    msg = str(err.get("msg", "not valid"))
    if kind == "string_too_long" and isinstance(given, str):
        return f"{where} is {len(given)} characters; write at most {err.get('ctx', {}).get('max_length')}"
    if origin != "body":
        return f"{where} is {str(given)[:80]!r}; {msg[:1].lower()}{msg[1:]}"
    if kind in ("json_invalid", "model_attributes_type") or not path:
        return f"the body is not a JSON object; send one such as {_EXAMPLE}"
    if kind == "extra_forbidden":
        return f"{where} is not a known key; send verdict and, if you like, note, such as {_EXAMPLE}"
    if where == "verdict":
        shown = "missing" if kind == "missing" else f"{str(given)[:40]!r}"
        return f"verdict is {shown}; write one of {', '.join(VERDICTS)}"
    return f"{where}: {msg[:1].lower()}{msg[1:]}; send a body such as {_EXAMPLE}"


class _OneLineErrors(APIRoute):
    """A route whose refused requests get a 422 with a one-line `detail` (FastAPI's is a list)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse({"detail": _one_line(exc)}, 422)

        return route


EventId = Path(min_length=1, max_length=MAX_NAME, description="an event's id, as /api/v1/anomalies lists them")


def feedback_router(parts: Parts) -> APIRouter:
    router = APIRouter(route_class=_OneLineErrors)
    on_event = refusals(404, 422)

    def missing(event_id: str) -> HTTPException:
        return HTTPException(404, f"no event with id {event_id[:80]!r}; list them at /api/v1/anomalies")

    @router.get("/api/v1/anomalies/{event_id}/feedback", response_model=EventFeedback,
                summary="The verdict in force on an event, and every verdict given on it", responses=on_event)
    def get_feedback(event_id: str = EventId) -> EventFeedback:
        try:
            return event_feedback(parts.store, event_id)
        except NoSuchEvent:
            raise missing(event_id) from None

    @router.post("/api/v1/anomalies/{event_id}/feedback", response_model=EventFeedback, responses=on_event,
                 summary="Give a verdict on an event; not_an_incident teaches its series that deviation")
    def post_feedback(request: Request, body: FeedbackRequest, event_id: str = EventId,
                      author: str | None = Author) -> EventFeedback:
        note = (body.note or "").strip() or None
        try:
            return give_feedback(parts.store, parts.engine, parts.metrics, event_id, body.verdict, note,
                                 signed_by(request, author))
        except NoSuchEvent:
            raise missing(event_id) from None

    @router.delete("/api/v1/anomalies/{event_id}/feedback", response_model=EventFeedback, responses=on_event,
                   summary="Undo the verdict in force on an event; what it taught is forgotten")
    def delete_feedback(request: Request, event_id: str = EventId, author: str | None = Author) -> EventFeedback:
        try:
            return undo_feedback(parts.store, parts.engine, parts.metrics, event_id, signed_by(request, author))
        except NoSuchEvent:
            raise missing(event_id) from None
        except NoVerdict:
            raise HTTPException(404, f"event {event_id!r} has no verdict in force to undo; give one with POST") from None

    @router.get("/api/v1/feedback", response_model=FeedbackPage, summary="Every verdict given, newest first",
                responses=refusals(422))
    def all_feedback(
        verdict: Verdict | None = None,
        state: Literal["in_force", "undone"] | None = Query(
            None, description="in_force: verdicts that hold; undone: those undone or replaced"),
        query: str | None = Query(None, max_length=MAX_NAME, description="only verdicts on this query's events"),
        limit: int = Query(100, ge=1, le=1000),
        offset: Offset = 0,
    ) -> FeedbackPage:
        in_force = None if state is None else state == "in_force"
        items, total = list_feedback(parts.store, verdict=verdict, in_force=in_force, query=query, limit=limit,
                                     offset=offset)
        return FeedbackPage(total=total, offset=offset, items=items)

    return router

