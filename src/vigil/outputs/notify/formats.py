"""Message bodies: pure functions from an event's JSON to what each receiver accepts.

- `json_body`: the event JSON (docs/architecture.md, `vigil.outputs.event`) plus
  ``idempotency_key`` and ``series_url``.
- `teams_body`: the message a Power Automate workflow started by "When a Teams webhook
  request is received" posts to a channel: ``{"type": "message", "attachments": [one
  Adaptive Card 1.4]}`` with a title, the summary, a FactSet and an ``Action.OpenUrl``
  back to Vigil.
- `slack_body`: a Slack incoming-webhook message: ``text`` (the notification fallback)
  and ``blocks`` (header, section, section fields, context), cut to Slack's limits.
- `alertmanager_alert`: one alert of Alertmanager's ``POST /api/v2/alerts`` list:
  labels (``alertname="VigilAnomaly"``, ``query``, ``metric``, ``detector``, the series'
  labels, ``severity``), annotations, ``startsAt``, ``endsAt`` and ``generatorURL``.

Every message carries its idempotency key ``"<event id>:<state>"`` (a field, a fact, a
context line or an annotation; the sender also sends it as the ``Idempotency-Key``
header), so a receiver can drop the rare message delivered twice.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from vigil.labels import series_id, series_key

__all__ = [
    "ALERTNAME", "alertmanager_alert", "idempotency_key", "json_body", "series_link", "slack_body",
    "teams_body", "title",
]

ALERTNAME = "VigilAnomaly"
_OURS = ("alertname", "query", "metric", "detector", "event_id")
_WHERE = ("instance", "host", "hostname", "node", "pod", "service", "job", "device", "mountpoint", "interface")
_BAD_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")

# Slack Block Kit limits (characters)
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_MAX = 10
SLACK_TEXT_MAX = 3000


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


def _subject(event: Mapping[str, Any]) -> str:
    labels = dict(event.get("series") or {})
    name = labels.get("__name__") or str(event.get("query", "series"))
    where = next((labels[k] for k in _WHERE if labels.get(k)), None)
    return f"{name} on {where}" if where else name


def title(event: Mapping[str, Any]) -> str:
    """``Anomaly: cpu_utilization on web-1`` or ``Resolved: ...``.

    >>> title({"state": "resolved", "query": "q", "series": {"__name__": "load1", "instance": "web-1"}})
    'Resolved: load1 on web-1'
    """
    return f"{'Resolved' if event.get('state') == 'resolved' else 'Anomaly'}: {_subject(event)}"


def _num(x: Any) -> str:
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
        return "?"
    return f"{x:.6g}"


def _score(x: Any) -> str:
    """Scores sit near 1: six decimals, cut rather than rounded, so 0.9999996 is not shown as 1.

    >>> _score(0.9999996), _score(1.0), _score(0.5)
    ('0.999999', '1.000000', '0.500000')
    """
    if not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x):
        return "?"
    return f"{math.floor(x * 1e6) / 1e6:.6f}"


def _labels_text(event: Mapping[str, Any]) -> str:
    labels = dict(event.get("series") or {})
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "(none)"


def _facts(event: Mapping[str, Any], key: str) -> list[tuple[str, str]]:
    """(title, value) pairs shared by the Teams and Slack messages."""
    facts = [
        ("State", str(event.get("state"))),
        ("Query", str(event.get("query"))),
        ("Series", _labels_text(event)),
        ("Observed", _num(event.get("observed"))),
    ]
    if event.get("expected") is not None:
        band = f"band {_num(event.get('lower'))} to {_num(event.get('upper'))}"
        facts.append(("Expected", f"{_num(event.get('expected'))} ({band})"))
    facts.append(("Score", _score(event.get("peak_score"))))
    detectors = event.get("detectors") or {}
    if detectors:
        facts.append(("Detectors", ", ".join(f"{k} {_score(v)}" for k, v in sorted(detectors.items()))))
    facts.append(("Started", str(event.get("started_at"))))
    if event.get("ended_at"):
        facts.append(("Ended", str(event.get("ended_at"))))
    facts.append(("Idempotency key", key))
    return facts


def json_body(event: Mapping[str, Any], link: str) -> dict[str, Any]:
    """The event JSON plus ``idempotency_key`` and ``series_url``."""
    return {**event, "idempotency_key": idempotency_key(event), "series_url": link}


def teams_body(event: Mapping[str, Any], link: str) -> dict[str, Any]:
    """A Teams message with one Adaptive Card, as a Power Automate workflow webhook takes it."""
    key = idempotency_key(event)
    firing = event.get("state") != "resolved"
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {
                "type": "TextBlock", "text": title(event), "size": "Large", "weight": "Bolder", "wrap": True,
                "color": "Attention" if firing else "Good",
            },
            {"type": "TextBlock", "text": str(event.get("summary", "")), "wrap": True},
            {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in _facts(event, key)]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Vigil", "url": link}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Slack's three escapes; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(event: Mapping[str, Any], link: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback ``text`` and header/section/context blocks."""
    key = idempotency_key(event)
    facts = _facts(event, key)
    shown = [(t, v) for t, v in facts if t not in ("State", "Idempotency key")][:SLACK_FIELDS_MAX]
    summary = str(event.get("summary", ""))
    tail = f"\n<{link}|Open in Vigil>"
    return {
        "text": _cut(f"{title(event)}. {summary}", SLACK_TEXT_MAX),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(title(event), SLACK_HEADER_MAX)}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(_mrkdwn(summary), SLACK_SECTION_MAX - len(tail)) + tail},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _cut(f"*{t}*\n{_mrkdwn(v)}", SLACK_FIELD_MAX)} for t, v in shown
                ],
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": _cut(f"{event.get('state')} · idempotency key `{key}`", SLACK_FIELD_MAX)}
                ],
            },
        ],
    }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


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
    key = idempotency_key(event)
    description = "\n".join(f"{t}: {v}" for t, v in _facts(event, key) if t not in ("State", "Idempotency key"))
    resolved = event.get("state") == "resolved"
    ends = event.get("ended_at") if resolved else None
    return {
        "labels": {k: v for k, v in out.items() if v != ""},
        "annotations": {
            "summary": str(event.get("summary", "")),
            "description": description,
            "event_id": str(event.get("id")),
            "idempotency_key": key,
        },
        "startsAt": event.get("started_at") or _iso(now),
        "endsAt": ends or _iso(now if resolved else now + hold),
        "generatorURL": link,
    }
