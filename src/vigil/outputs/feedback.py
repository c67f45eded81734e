"""Feedback on events: people's verdicts, kept in the store, and what ``not_an_incident`` teaches.

A verdict on an event is ``not_an_incident`` or ``incident``, with an optional note, an
author and a time. Each event has at most one verdict in force: a new one replaces it
and `undo_feedback` withdraws it; neither deletes anything (the history stays, with who
undid or replaced what, and when). A ``not_an_incident`` teaches the event's series: the
deviation the event reached (`vigil.detection.acceptance`) no longer alerts on it; the
series accepts the widest deviation of all its verdicts in force, so undoing one gives
back exactly what the others accept. ``incident`` teaches nothing (it replaces, and so
undoes, an earlier ``not_an_incident``).

`give_feedback`, `undo_feedback` and `event_feedback` are what the API and the MCP server
call; `teach_all` puts every verdict in force back into the engine at start.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from vigil.detection.acceptance import Acceptance, accepted_from
from vigil.engine import Engine
from vigil.formatting import iso
from vigil.labels import series_id
from vigil.metrics import Metrics
from vigil.outputs.store import Store, where

__all__ = [
    "MAX_AUTHOR", "MAX_NOTE", "VERDICTS", "EventFeedback", "FeedbackItem", "NoSuchEvent", "NoVerdict", "Verdict",
    "event_feedback", "give_feedback", "list_feedback", "teach_all", "undo_feedback", "verdicts_in_force",
]

Verdict = Literal["not_an_incident", "incident"]
VERDICTS: tuple[str, ...] = get_args(Verdict)
MAX_NOTE = 1000  # characters of a note
MAX_AUTHOR = 64  # characters of an author's name

_COLUMNS = "seq, event_id, query, series, verdict, note, author, at, accepted, undone_at, undone_by"


class NoSuchEvent(LookupError):
    """No event has this id."""


class NoVerdict(LookupError):
    """The event has no verdict in force to undo."""


class FeedbackItem(BaseModel):
    """One verdict on one event, as it was given, and whether it still holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = Field(description="the verdict's number, in the order verdicts were given")
    event_id: str
    query: str
    series_id: str = Field(description="the series in /api/v1/series/{id}")
    verdict: Verdict
    note: str | None
    author: str = Field(description="the name of the token used, else the X-Vigil-Author header, else anonymous")
    at: str = Field(description="ISO-8601 UTC, when it was given")
    in_force: bool = Field(description="false once undone or replaced by a newer verdict on the event")
    undone_at: str | None = Field(description="ISO-8601 UTC, when it was undone or replaced")
    undone_by: str | None
    teaches: str | None = Field(description="what no longer alerts on the series, for a not_an_incident")


class EventFeedback(BaseModel):
    """The verdict in force on one event (null: none) and every verdict given on it, newest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    verdict: FeedbackItem | None
    history: list[FeedbackItem]


def _item(row: Sequence[Any]) -> FeedbackItem:
    seq, event, query, series, verdict, note, author, at, accepted, undone_at, undone_by = row
    taught = _acceptance(accepted).text() if accepted else ""
    return FeedbackItem(
        id=seq, event_id=event, query=query, series_id=series_id(query, series), verdict=verdict, note=note,
        author=author, at=iso(at) or "", in_force=undone_at is None, undone_at=iso(undone_at), undone_by=undone_by,
        teaches=taught or None,
    )


def _acceptance(text: str) -> Acceptance:
    return Acceptance(**{k: math.nan if v is None else float(v) for k, v in json.loads(text).items()})


def _acceptance_json(a: Acceptance) -> str:
    return json.dumps({k: None if math.isnan(v) else v for k, v in asdict(a).items()})


def _event(store: Store, event_id: str) -> tuple[str, str, float, float | None, str]:
    """The query, series key, start, end and document (JSON) of an event; NoSuchEvent if there is none."""
    with store.connection() as db:
        row = db.execute("SELECT query, series, started_at, ended_at, doc FROM events WHERE id = ?",
                         (event_id,)).fetchone()
    if row is None:
        raise NoSuchEvent(event_id)
    return row[0], row[1], row[2], row[3], row[4]


def _accepted_by(doc: dict[str, Any], started: float, ended: float | None) -> Acceptance:
    """The deviation an event reached: its points outside the band from its start to its end, and its peak."""
    until = math.inf if ended is None else ended
    points = [
        (p["value"], p["expected"], p["lower"], p["upper"]) for p in doc.get("recent", [])
        if started - 1e-6 <= p["t"] <= until + 1e-6
    ]
    points.append((doc.get("observed"), doc.get("expected"), doc.get("lower"), doc.get("upper")))
    return accepted_from(points)


def event_feedback(store: Store, event_id: str) -> EventFeedback:
    """The verdicts on an event; NoSuchEvent if there is no such event."""
    _event(store, event_id)
    with store.connection() as db:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM feedback WHERE event_id = ? ORDER BY seq DESC", (event_id,)  # noqa: S608
        ).fetchall()
    history = [_item(r) for r in rows]
    return EventFeedback(event_id=event_id, verdict=next((h for h in history if h.in_force), None), history=history)


def give_feedback(
    store: Store, engine: Engine, metrics: Metrics, event_id: str, verdict: Verdict, note: str | None = None,
    author: str = "anonymous", clock: Callable[[], float] = time.time,
) -> EventFeedback:
    """Record `verdict` on an event, replacing the one in force, and teach its series what it now accepts.

    NoSuchEvent if there is no such event; ValueError for a verdict, note or author out of bounds.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict is {verdict!r}; write one of {', '.join(VERDICTS)}")
    if note is not None and len(note) > MAX_NOTE:
        raise ValueError(f"note is {len(note)} characters; write at most {MAX_NOTE}")
    if not author or len(author) > MAX_AUTHOR:
        raise ValueError(f"author is {len(author)} characters; write 1 to {MAX_AUTHOR}")
    query, series, started, ended, doc = _event(store, event_id)
    accepted = None
    if verdict == "not_an_incident":
        accepted = _acceptance_json(_accepted_by(json.loads(doc), started, ended))
    now = clock()
    with store.connection(write=True) as db:
        db.execute("UPDATE feedback SET undone_at = ?, undone_by = ? WHERE event_id = ? AND undone_at IS NULL",
                   (now, author, event_id))
        db.execute(
            "INSERT INTO feedback (event_id, query, series, verdict, note, author, at, accepted) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (event_id, query, series, verdict, note, author, now, accepted),
        )
    _teach(store, engine, query, series)
    metrics.feedback.labels(verdict).inc()
    return event_feedback(store, event_id)


def undo_feedback(
    store: Store, engine: Engine, metrics: Metrics, event_id: str, author: str = "anonymous",
    clock: Callable[[], float] = time.time,
) -> EventFeedback:
    """Withdraw the verdict in force on an event; its series alerts again on what only it accepted.

    NoSuchEvent if there is no such event, NoVerdict if it has no verdict in force.
    """
    query, series, *_ = _event(store, event_id)
    with store.connection(write=True) as db:
        undone = db.execute(
            "UPDATE feedback SET undone_at = ?, undone_by = ? WHERE event_id = ? AND undone_at IS NULL",
            (clock(), author, event_id),
        ).rowcount
    if not undone:
        raise NoVerdict(event_id)
    _teach(store, engine, query, series)
    metrics.feedback.labels("undone").inc()
    return event_feedback(store, event_id)


def _teach(store: Store, engine: Engine, query: str, series: str) -> None:
    """Give a series of `engine` the widest deviation its verdicts in force accept."""
    q = engine.queries.get(query)
    if q is None:  # a query no longer configured: nothing to teach
        return
    with store.connection() as db:
        rows = db.execute(
            "SELECT accepted FROM feedback WHERE query = ? AND series = ? AND undone_at IS NULL "
            "AND verdict = 'not_an_incident' AND accepted IS NOT NULL", (query, series),
        ).fetchall()
    accepted = Acceptance()
    for (text,) in rows:
        accepted = accepted.merge(_acceptance(text))
    q.accept(series, accepted)


def teach_all(store: Store, engine: Engine) -> int:
    """Put every verdict in force back into `engine` (at start); the number of series taught."""
    with store.connection() as db:
        pairs = db.execute(
            "SELECT DISTINCT query, series FROM feedback WHERE undone_at IS NULL AND verdict = 'not_an_incident'"
        ).fetchall()
    for query, series in pairs:
        _teach(store, engine, query, series)
    return len(pairs)


def list_feedback(
    store: Store, *, verdict: Verdict | None = None, in_force: bool | None = None, query: str | None = None,
    limit: int = 100, offset: int = 0,
) -> tuple[list[FeedbackItem], int]:
    """Verdicts, newest first, and how many match in all."""
    undone = None if in_force is None else ("undone_at IS NULL" if in_force else "undone_at IS NOT NULL")
    cond, args = where(("verdict = ?", verdict), ("query = ?", query))
    if undone is not None:
        cond += f" AND {undone}"
    with store.connection() as db:
        total = db.execute(f"SELECT COUNT(*) FROM feedback WHERE {cond}", args).fetchone()[0]  # noqa: S608
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM feedback WHERE {cond} ORDER BY seq DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*args, limit, offset],
        ).fetchall()
    return [_item(r) for r in rows], int(total)


def verdicts_in_force(store: Store, event_ids: Sequence[str]) -> dict[str, FeedbackItem]:
    """Event id -> the verdict in force on it, for those of `event_ids` that have one."""
    if not event_ids:
        return {}
    marks = ",".join("?" * len(event_ids))
    with store.connection() as db:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM feedback WHERE undone_at IS NULL AND event_id IN ({marks})",  # noqa: S608
            list(event_ids),
        ).fetchall()
    return {r[1]: _item(r) for r in rows}
