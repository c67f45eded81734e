"""What every message says, whatever its channel: title, facts, idempotency key, link back.

Every message carries its idempotency key ``"<event id>:<state>"`` (a field, a fact, a
context line or an annotation; the sender also sends it as the ``Idempotency-Key``
header), so a receiver can drop the rare message delivered twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigil.formatting import number_texts, rarity_text, score_text
from vigil.labels import series_id, series_key
from vigil.outputs.event import subject

__all__ = ["facts", "idempotency_key", "series_link", "title"]


def idempotency_key(event: Mapping[str, Any]) -> str:
    """``"<event id>:<state>"``: the same for every delivery of one event's state.

    >>> idempotency_key({"id": "3fa4c1", "state": "firing"})
    '3fa4c1:firing'
    """
    return f"{event['id']}:{event['state']}"


def series_link(base_url: str, event: Mapping[str, Any]) -> str:
    """Vigil's page of the event's series (points, bands and events) under `base_url`.

    >>> series_link("http://127.0.0.1:8080/", {"query": "host", "series": {"__name__": "load1"}})
    'http://127.0.0.1:8080/api/v1/series/...'
    """
    sid = series_id(str(event["query"]), series_key(dict(event.get("series") or {})))
    return f"{base_url.rstrip('/')}/api/v1/series/{sid}"


def title(event: Mapping[str, Any]) -> str:
    """``Anomaly: cpu{mode="idle"} on web-1`` or ``Resolved: ...``.

    >>> title({"state": "resolved", "query": "q", "series": {"__name__": "load1", "instance": "web-1"}})
    'Resolved: load1 on web-1'
    >>> title({"state": "firing", "query": "cpu", "series": {"mode": "idle"}})
    'Anomaly: cpu{mode="idle"}'
    """
    what = subject(event.get("series") or {}, str(event.get("query", "")))
    return f"{'Resolved' if event.get('state') == 'resolved' else 'Anomaly'}: {what}"


def _labels_text(event: Mapping[str, Any]) -> str:
    labels = dict(event.get("series") or {})
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "(none)"


def facts(event: Mapping[str, Any], state_and_key: bool = True) -> list[tuple[str, str]]:
    """(title, value) pairs of the event as Teams, Slack and Alertmanager's description show
    them; with `state_and_key`, its state first and its idempotency key last."""
    out = [("State", str(event.get("state")))] if state_and_key else []
    out += [
        ("Query", str(event.get("query"))),
        ("Series", _labels_text(event)),
    ]
    observed, expected, lower, upper = number_texts(*(event.get(k) for k in ("observed", "expected", "lower", "upper")))
    out.append(("Observed", observed))
    if event.get("expected") is not None:
        out.append(("Expected", f"{expected} (band {lower} to {upper})"))
    score = event.get("peak_score")
    out.append(("Score", f"{score_text(score)} ({rarity_text(score)})"))
    detectors = event.get("detectors") or {}
    if detectors:
        out.append(("Detectors", ", ".join(f"{k} {score_text(v)}" for k, v in sorted(detectors.items()))))
    out.append(("Started", str(event.get("started_at"))))
    if event.get("ended_at"):
        out.append(("Ended", str(event.get("ended_at"))))
    if state_and_key:
        out.append(("Idempotency key", idempotency_key(event)))
    return out
