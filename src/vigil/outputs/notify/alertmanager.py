"""Alertmanager: one alert of its ``POST /api/v2/alerts`` list per event.

The alert has labels (``alertname="VigilAnomaly"``, ``query``, ``metric``, ``detector``,
``event_id``, the series' labels, ``severity``), annotations (the summary, the facts, the
event id and the idempotency key), ``startsAt``, ``endsAt`` and ``generatorURL``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vigil.formatting import iso
from vigil.outputs.notify.content import facts, idempotency_key

__all__ = ["ALERTNAME", "alertmanager_alert"]

ALERTNAME = "VigilAnomaly"
_OURS = ("alertname", "query", "metric", "detector", "event_id")
_BAD_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def alertmanager_alert(
    event: Mapping[str, Any], link: str, *, now: float, hold: float, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One alert for Alertmanager's ``POST /api/v2/alerts``.

    While firing, ``endsAt`` is `hold` seconds after `now` (several re-post intervals), so
    Alertmanager keeps the alert open as long as Vigil re-posts it and closes it on its own
    if Vigil stops. Resolved, ``endsAt`` is the event's end. The series' own labels come
    first; one named like ours (``query``, ``metric``, ...) becomes ``exported_<name>``;
    `labels` (from the receiver's config) come last and win. ``severity`` defaults to
    ``warning``. ``event_id`` is a label: Alertmanager knows an alert by its labels, and
    each event is its own alert, so a new incident on a series right after another (an
    escalation ends one event and opens the next at once) is notified, not taken for the
    one before.
    """
    series = dict(event.get("series") or {})
    out: dict[str, str] = {}
    for k, v in series.items():
        if k == "__name__":
            continue
        name = _BAD_LABEL_CHARS.sub("_", k)
        if name[:1].isdigit() or name.startswith("__"):
            name = f"label_{name.lstrip('_')}"
        out[f"exported_{name}" if name in _OURS or name == "severity" else name] = str(v)
    out.update({
        "alertname": ALERTNAME, "query": str(event.get("query", "")),
        "metric": series.get("__name__", ""), "detector": str(event.get("detector", "")), "severity": "warning",
        "event_id": str(event.get("id")),
    })
    out.update(labels or {})
    resolved = event.get("state") == "resolved"
    ends = event.get("ended_at") if resolved else None
    return {
        "labels": {k: v for k, v in out.items() if v != ""},
        "annotations": {
            "summary": str(event.get("summary", "")),
            "description": "\n".join(f"{t}: {v}" for t, v in facts(event, state_and_key=False)),
            "event_id": str(event.get("id")),
            "idempotency_key": idempotency_key(event),
        },
        "startsAt": event.get("started_at") or iso(now),
        "endsAt": ends or iso(now if resolved else now + hold),
        "generatorURL": link,
    }
