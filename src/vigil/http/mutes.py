"""The mute endpoints: /api/v1/mutes (list, create) and /api/v1/mutes/{id} (delete).

The list holds the one-off mutes not over yet and the config's maintenance windows, each
with whether it is active now and its next span; a mute is made by `MuteBook.create`,
signed as a verdict is: the name of the request's token, else ``X-Vigil-Author``, else
``anonymous``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from vigil.config import Window, parse_duration
from vigil.config.values import duration_text
from vigil.formatting import iso
from vigil.http.models import Problem, refusals
from vigil.http.params import MAX_TIME, Author, parse_time, signed_by
from vigil.http.parts import Parts
from vigil.matchers import MAX_SELECTOR
from vigil.outputs.mutes import MAX_COMMENT, MuteError

__all__ = ["MuteRequest", "create_mute", "mutes_router"]

_HORIZONS = (8 * 86400.0, 40 * 86400.0, 400 * 86400.0)  # how far ahead the next span of a window is looked for


class MuteRequest(BaseModel):
    """A new mute: the series it covers and when; give `ends_at` or `duration`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"matchers": '{instance="db-1"}', "duration": "2h", "comment": "disk swap"},
    ]})

    matchers: str = Field(max_length=MAX_SELECTOR, description='PromQL selector such as {instance="db-1", job="node"}; '
                                                               "the query's name is the label query")
    starts_at: str | None = Field(None, max_length=MAX_TIME, description="Unix seconds or RFC 3339; default now")
    ends_at: str | None = Field(None, max_length=MAX_TIME, description="Unix seconds or RFC 3339")
    duration: str | None = Field(None, max_length=MAX_TIME, description="from starts_at, such as 30m or 2h")
    comment: str = Field("", max_length=MAX_COMMENT)
    learn: bool = Field(False, description="true: the model learns the muted samples (default: it does not)")


class Mute(BaseModel):
    id: str
    matchers: str
    starts_at: str
    ends_at: str
    comment: str
    author: str
    learn: bool
    created_at: str
    active: bool = Field(description="the mute covers now")


class Span(BaseModel):
    starts_at: str
    ends_at: str


class MaintenanceWindow(BaseModel):
    name: str
    matchers: str
    schedule: str = Field(description="the window's times of day and weekdays, or its cron expression and duration")
    time_zone: str
    learn: bool
    active: bool = Field(description="the window covers now")
    next: Span | None = Field(description="the span covering now, else the next one (null: none within 400 days)")


class MuteList(BaseModel):
    mutes: list[Mute]
    windows: list[MaintenanceWindow]


_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": Problem, "description": "as many mutes are set as Vigil keeps; delete some first"}}
_LINKS: dict[int | str, dict[str, Any]] = {201: {"description": "the mute, made", "links": {
    "DeleteMute": {"operationId": "delete_mute", "parameters": {"mute_id": "$response.body#/id"}},
}}}


def mutes_router(parts: Parts) -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/mutes", response_model=MuteList, summary="Mutes not over yet, and the maintenance windows")
    def mutes() -> MuteList:
        now = parts.engine.clock()
        return MuteList(
            mutes=[Mute.model_validate(m) for m in parts.mutes.list()],
            windows=[_window(w, now) for w in parts.config.maintenance],
        )

    @router.post(
        "/api/v1/mutes", response_model=Mute, status_code=201, summary="Mute series from a start to an end",
        operation_id="create_mute", responses={**refusals(400), **_CONFLICT, **_LINKS},
    )
    def create(request: Request, body: MuteRequest, author: str | None = Author) -> Mute:
        return create_mute(parts, body, signed_by(request, author))

    @router.delete(
        "/api/v1/mutes/{mute_id}", status_code=204, summary="Delete a mute (it is over at once)",
        operation_id="delete_mute", responses=refusals(404),
    )
    def delete(mute_id: Annotated[str, Path(max_length=64, description="the mute's id")]) -> Response:
        if not parts.mutes.delete(mute_id):
            raise HTTPException(404, f"no mute {mute_id[:64]!r}; GET /api/v1/mutes lists them")
        return Response(status_code=204)

    return router


def create_mute(parts: Parts, body: MuteRequest, author: str) -> Mute:
    """Make the mute `body` asks for (the API's and the MCP server's `mute`); HTTPException to refuse."""
    start = parse_time(body.starts_at, "starts_at")
    end = parse_time(body.ends_at, "ends_at")
    if (end is None) == (body.duration is None):
        raise HTTPException(400, "give either ends_at (a time) or duration (such as 2h), not both or neither")
    if end is None:
        try:
            length = parse_duration(body.duration)
        except ValueError as exc:
            raise HTTPException(400, f"duration is {body.duration!r}; {exc}") from None
        end = (parts.engine.clock() if start is None else start) + length
    try:
        made = parts.mutes.create(body.matchers, end, start, body.comment, author, body.learn)
    except MuteError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return Mute.model_validate(made)


def _window(w: Window, now: float) -> MaintenanceWindow:
    nxt = None
    for horizon in _HORIZONS:
        spans = w.spans(now, now + horizon)
        if spans:
            nxt = Span(starts_at=iso(spans[0][0]) or "", ends_at=iso(spans[0][1]) or "")
            break
    if w.cron is not None:
        schedule = f"cron {w.cron}, {duration_text(float(w.duration or 0))} each"
    else:
        days = "every day" if w.weekdays is None else ", ".join(_DAY_NAMES[d] for d in w.weekdays)
        schedule = f"{_clock(w.start)} to {_clock(w.end)}, {days}"
    active = nxt is not None and spans[0][0] <= now < spans[0][1]
    return MaintenanceWindow(name=w.name, matchers=w.matchers, schedule=schedule, time_zone=w.time_zone,
                             learn=w.learn, active=active, next=nxt)


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(seconds: int | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}" + (f":{s % 60:02d}" if s % 60 else "")
