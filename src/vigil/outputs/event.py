"""The event JSON: one stable document per anomaly, for the API, the store and webhooks.

Fields: ``id``, ``state`` (firing|resolved), ``series`` (labels, metric name in
``__name__``), ``query``, ``detector``, ``started_at``, ``ended_at`` (ISO-8601 UTC),
``peak_score``, ``observed``, ``expected``, ``lower``, ``upper`` (at the peak),
``detectors`` (each detector's score at the peak), ``recent`` (the last points of the
series: t, value, expected, lower, upper, score) and ``summary`` (one sentence). When
Vigil runs sharded (`vigil.sharding`), also ``shard``: ``"2/3"``, the shard that owns the
series; the id does not depend on it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from vigil.detection.decision import Event
from vigil.labels import event_id

__all__ = ["event_doc", "iso", "summary"]

# Labels that best say where a series lives, in order of preference.
_WHERE = ("instance", "host", "hostname", "node", "pod", "service", "job", "device", "mountpoint", "interface")


def iso(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _num(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "?"
    return f"{x:.3g}" if abs(x) >= 1e6 or (x != 0 and abs(x) < 0.01) else f"{x:.1f}"


def summary(labels: dict[str, str], e: Event) -> str:
    """One sentence such as "cpu_utilization on web-1 is 97.2, expected 41.5 (band 30.1 to 52.9)"."""
    name = labels.get("__name__", "series")
    where = next((labels[k] for k in _WHERE if k in labels), None)
    if where is None:
        rest = [f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__"]
        where = ", ".join(rest) if rest else None
    subject = f"{name} on {where}" if where else name
    verb = "is" if e.state == "firing" else "was"
    text = f"{subject} {verb} {_fmt(e.observed)}"
    if math.isfinite(e.expected):
        text += f", expected {_fmt(e.expected)} (band {_fmt(e.lower)} to {_fmt(e.upper)})"
    else:
        text += f", anomaly score {e.peak_score:.4f}"
    if e.state == "resolved" and e.ended_at is not None:
        minutes = max(e.ended_at - e.started_at, 0) / 60
        text += f"; resolved after {minutes:.0f} min" if minutes >= 1 else "; resolved"
    return text


def event_doc(
    e: Event, query: str, key: str, labels: dict[str, str], detector: str, recent: dict[str, list[Any]],
    shard: str | None = None,
) -> dict[str, Any]:
    """The stored record: the event JSON plus the columns the store indexes (`shard`: ``"i/N"``)."""
    eid = event_id(query, key, e.started_at)
    points = [dict(zip(recent, values, strict=True)) for values in zip(*recent.values(), strict=True)]
    event = {
        "id": eid,
        "state": e.state,
        "series": dict(labels),
        "query": query,
        "detector": detector,
        "started_at": iso(e.started_at),
        "ended_at": iso(e.ended_at),
        "peak_score": _num(e.peak_score),
        "observed": _num(e.observed),
        "expected": _num(e.expected),
        "lower": _num(e.lower),
        "upper": _num(e.upper),
        "detectors": {k: _num(v) for k, v in e.detectors.items()},
        "recent": points,
        "summary": summary(labels, e),
    }
    if shard is not None:
        event["shard"] = shard
    return {
        "id": eid, "query": query, "series_key": key, "state": e.state, "started_ts": e.started_at,
        "ended_ts": e.ended_at, "peak_score": _num(e.peak_score), "event": event,
    }
