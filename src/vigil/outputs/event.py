"""The event document: one JSON document per anomaly, made here for every reader.

The API (``GET /api/v1/anomalies``), the store, every notification channel and
``vigil backtest --json`` all carry the document `event_json` makes from an `EventRecord`;
`EventDocument` is its shape, and its ``model_json_schema()`` the JSON schema
(`event_schema`). Fields: ``id`` (from the query, the series and the start), ``state``
(firing|resolved), ``series`` (labels, metric name in ``__name__``), ``query``,
``detector``, ``started_at``, ``ended_at``, ``peak_at`` (ISO-8601 UTC), ``peak_score``,
``peak_surprise`` (the peak score as -log10(1 - score): 3 is a 1-in-1,000 sample),
``threshold``, ``observed``, ``expected``, ``lower``, ``upper`` (at the peak),
``detectors`` (each detector's score at the peak), ``recent`` (the series' last points up
to the event's latest moment: t, value, expected, lower, upper, score), ``name`` (the series
as a person names it: the metric, else the query, with the labels that tell it from its
neighbours, and where it lives), ``summary`` (one sentence) and ``muted`` (null, or the
maintenance window ``maintenance:<name>`` or the mute ``mute:<id>`` that covered the series
when the event began: such an event is recorded and shown but notifies nobody). When Vigil
runs sharded (`vigil.sharding`), also ``shard``: ``"2/3"``, the shard that owns the series;
the id does not depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vigil.detection.decision import Event
from vigil.engine.records import EventRecord
from vigil.formatting import iso, json_number, number_text, number_texts, rarity_text, score_text, surprise
from vigil.labels import event_id

__all__ = ["RECENT", "EventDocument", "Point", "event_doc", "event_json", "event_schema", "subject", "summary"]

RECENT = 30  # points of history in a document
# Labels that best say where a series lives, in order of preference.
_WHERE = ("instance", "host", "hostname", "node", "pod")
# Labels that name the scrape job, not the series: left out of its name.
_NOT_NAMED = ("__name__", "job")
_POINT = ("t", "value", "expected", "lower", "upper", "score")


class Point(BaseModel):
    """One recent point of the series; a number the producer does not have is null."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    t: float = Field(description="Unix seconds")
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    score: float | None


class EventDocument(BaseModel):
    """The event JSON; unknown numbers (no expected value, no band) are null."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="20 hex characters from the query, the series and the start")
    state: Literal["firing", "resolved"]
    series: dict[str, str] = Field(description="the series' labels, its metric name in __name__")
    query: str = Field(description="the configured query's name; 'backtest' for vigil backtest")
    detector: str
    started_at: str = Field(description="ISO-8601 UTC")
    ended_at: str | None = Field(description="ISO-8601 UTC; null while firing")
    peak_at: str | None = Field(None, description="ISO-8601 UTC, the time of the highest score (null in documents stored before Vigil wrote it)")
    peak_score: float | None = Field(description="anomaly score at the peak, 0 to 1")
    peak_surprise: float | None = Field(
        None, description="the peak score as -log10(1 - score), up to 12: 3 is a 1-in-1,000 sample "
        "(null in documents stored before Vigil wrote it)",
    )
    threshold: float | None = Field(None, description="the score from which a sample is hot (null in documents stored before Vigil wrote it)")
    observed: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    detectors: dict[str, float | None] = Field(description="each detector's score at the peak")
    recent: list[Point] = Field(description=f"the last points (at most {RECENT}) up to the event's latest moment")
    name: str | None = Field(
        None, description='the series as a person names it, such as cpu{mode="idle"} on web-1 '
        "(null in documents stored before Vigil wrote it)",
    )
    summary: str = Field(description="one sentence for a person")
    muted: str | None = Field(
        None, description="maintenance:<name> or mute:<id>, the silence that covered the series when the event "
                          "began (its notifications are not sent); null when none did",
    )
    shard: str | None = Field(
        None, exclude_if=lambda v: v is None,
        description="i/N, the shard that owns the series; present only when Vigil runs sharded",
    )


def event_schema() -> dict[str, Any]:
    """The JSON schema of the event document."""
    return EventDocument.model_json_schema()


def subject(labels: Mapping[str, str], query: str) -> str:
    """How a person names the series: its metric name (else the query's) with the labels that
    tell it from its neighbours, and where it lives.

    >>> subject({"__name__": "cpu", "instance": "web-1", "job": "node", "mode": "idle"}, "q")
    'cpu{mode="idle"} on web-1'
    >>> subject({"mode": "idle"}, "cpu")
    'cpu{mode="idle"}'
    >>> subject({"file": "a.csv", "column": "cpu"}, "backtest")
    'backtest{column="cpu",file="a.csv"}'
    """
    name = labels.get("__name__") or query
    where = next((k for k in _WHERE if labels.get(k)), None)
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k not in _NOT_NAMED and k != where)
    named = f"{name}{{{rest}}}" if rest else name
    return f"{named} on {labels[where]}" if where else named


def summary(labels: Mapping[str, str], query: str, e: Event) -> str:
    """One sentence such as "cpu{mode="user"} on web-1 is 97.2, expected 41.5 (band 30.1 to 52.9);
    as rare as 1 in 12,000 samples"."""
    verb = "is" if e.state == "firing" else "was"
    if math.isfinite(e.expected):
        observed, expected, lower, upper = number_texts(e.observed, e.expected, e.lower, e.upper)
        text = f"{subject(labels, query)} {verb} {observed}, expected {expected} (band {lower} to {upper})"
    else:
        text = f"{subject(labels, query)} {verb} {number_text(e.observed)}, anomaly score {score_text(e.peak_score)}"
    text += f"; as rare as {rarity_text(e.peak_score)}"
    if e.state == "resolved" and e.ended_at is not None:
        minutes = max(e.ended_at - e.started_at, 0) / 60
        text += f"; resolved after {minutes:.0f} min" if minutes >= 1 else "; resolved"
    return text


def _recent(r: EventRecord) -> list[dict[str, float | None]]:
    """The record's last `RECENT` points up to the event's latest moment (its peak or its end)."""
    e = r.event
    until = e.peak_at if e.ended_at is None else max(e.peak_at, e.ended_at)
    t = np.asarray(r.recent["t"], dtype=np.float64)
    upto = int(np.searchsorted(t, until, side="right"))
    start = max(upto - RECENT, 0)
    columns = [r.recent[k][start:upto] if k in r.recent else [None] * (upto - start) for k in _POINT]
    points = (dict(zip(_POINT, map(json_number, values), strict=True)) for values in zip(*columns, strict=True))
    return [p for p in points if p["t"] is not None]


def event_json(r: EventRecord) -> dict[str, Any]:
    """The event document of `r`, JSON-ready."""
    e = r.event
    doc = EventDocument(
        id=event_id(r.query, r.key, e.started_at),
        state=e.state,
        series=dict(r.labels),
        query=r.query,
        detector=r.detector,
        started_at=iso(e.started_at),
        ended_at=iso(e.ended_at),
        peak_at=iso(e.peak_at),
        peak_score=json_number(e.peak_score),
        peak_surprise=surprise(e.peak_score),
        threshold=r.threshold,
        observed=json_number(e.observed),
        expected=json_number(e.expected),
        lower=json_number(e.lower),
        upper=json_number(e.upper),
        detectors={k: json_number(v) for k, v in e.detectors.items()},
        recent=_recent(r),
        name=subject(r.labels, r.query),
        summary=summary(r.labels, r.query, e),
        muted=r.muted,
        shard=r.shard,
    )
    return doc.model_dump()


def event_doc(r: EventRecord) -> dict[str, Any]:
    """The stored record: the event document plus the columns the store indexes."""
    e = r.event
    event = event_json(r)
    return {
        "id": event["id"], "query": r.query, "series_key": r.key, "state": e.state, "started_ts": e.started_at,
        "ended_ts": e.ended_at, "peak_score": event["peak_score"], "event": event,
    }
