"""Message bodies, field by field, against the shapes each receiver documents.

- Teams: the message a Power Automate "When a Teams webhook request is received" workflow
  posts: ``type: message``, one attachment of ``contentType
  application/vnd.microsoft.card.adaptive`` whose ``content`` is an Adaptive Card 1.4.
- Slack: incoming-webhook ``text`` plus ``blocks`` (header, section, context) within Block
  Kit's limits (header 150 characters, section text 3000, at most 10 fields of 2000).
- Alertmanager: an item of ``POST /api/v2/alerts``: labels, annotations, RFC 3339
  ``startsAt``/``endsAt``, ``generatorURL``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from vigil.detection.decision import Event
from vigil.engine import EventRecord
from vigil.labels import series_id, series_key
from vigil.outputs.event import event_doc
from vigil.outputs.notify.alertmanager import ALERTNAME, alertmanager_alert
from vigil.outputs.notify.content import idempotency_key, series_link
from vigil.outputs.notify.plain import json_body
from vigil.outputs.notify.slack import (
    SLACK_FIELD_MAX,
    SLACK_FIELDS_MAX,
    SLACK_HEADER_MAX,
    SLACK_SECTION_MAX,
    slack_body,
)
from vigil.outputs.notify.teams import teams_body

T0 = 1_700_000_000.0
LABELS = {"__name__": "cpu_utilization", "instance": "web-1", "job": "node"}
LINK = "http://vigil.example:8080/api/v1/series/0123456789abcdef"


def make_event(state: str = "firing", labels: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    labels = dict(LABELS if labels is None else labels)
    e = Event(
        row=0, number=1, state=state,  # type: ignore[arg-type]
        started_at=T0, ended_at=T0 + 300 if state == "resolved" else None,
        peak_score=kw.get("peak_score", 0.9999994), peak_at=T0 + 15, observed=97.2, expected=41.5,
        lower=30.1, upper=52.9, detectors={"ewma": 0.99999, "zscore": 0.98},
    )
    recent = {"t": [T0, T0 + 15], "value": [40.0, 97.2]}
    doc = event_doc(EventRecord(e, "cpu", series_key(labels), labels, "default", 0.99996, recent))
    return dict(doc["event"])


def parse_rfc3339(text: str) -> dt.datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text), text
    return dt.datetime.fromisoformat(text)


def aggregated_event() -> dict[str, Any]:
    """An event of ``sum by (mode) (rate(node_cpu_seconds_total[1m]))``: no metric name, no instance."""
    e = Event(
        row=0, number=1, state="firing", started_at=T0, ended_at=None, peak_score=0.99992, peak_at=T0 + 15,
        observed=0.91234, expected=0.90012, lower=0.9, upper=0.9003, detectors={"level": 0.99992},
    )
    labels = {"mode": "idle"}
    doc = event_doc(EventRecord(e, "cpu", series_key(labels), labels, "default", 0.99996, {"t": [T0 + 15]}))
    return dict(doc["event"])


AGGREGATED_SUMMARY = 'cpu{mode="idle"} is 0.9123, expected 0.9001 (band 0.9000 to 0.9003); as rare as 1 in 12,000 samples'


def test_an_aggregated_series_is_named_by_its_query_and_labels_with_a_band_that_reads_apart() -> None:
    event = aggregated_event()
    assert event["name"] == 'cpu{mode="idle"}'
    assert event["summary"] == AGGREGATED_SUMMARY
    assert event["peak_surprise"] == pytest.approx(4.097, abs=1e-3)


@pytest.mark.parametrize("channel", ["json", "teams", "slack", "alertmanager"])
def test_every_channel_names_the_mode_of_an_aggregated_series(channel: str) -> None:
    event = aggregated_event()
    if channel == "json":
        texts = [json_body(event, LINK)["summary"]]
    elif channel == "teams":
        card = teams_body(event, LINK)["attachments"][0]["content"]
        texts = [card["body"][0]["text"], card["body"][1]["text"]]
        facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
        assert facts["Expected"] == "0.9001 (band 0.9000 to 0.9003)"
    elif channel == "slack":
        body = slack_body(event, LINK)
        texts = [body["text"], body["blocks"][0]["text"]["text"]]
    else:
        alert = alertmanager_alert(event, LINK, now=T0, hold=60)
        assert alert["labels"]["mode"] == "idle"
        texts = [alert["annotations"]["summary"]]
        assert "Observed: 0.9123" in alert["annotations"]["description"]
    assert all('cpu{mode="idle"}' in t for t in texts), texts
    assert AGGREGATED_SUMMARY in " ".join(texts) or channel == "slack" and "mode" in texts[1]


# -- keys and links ------------------------------------------------------------------------


def test_idempotency_key_is_event_id_and_state() -> None:
    firing, resolved = make_event(), make_event("resolved")
    assert firing["id"] == resolved["id"]
    assert idempotency_key(firing) == f"{firing['id']}:firing"
    assert idempotency_key(resolved) == f"{firing['id']}:resolved"


def test_series_link_points_at_the_series_in_the_api() -> None:
    event = make_event()
    sid = series_id("cpu", series_key(LABELS))
    assert series_link("http://v:8080/", event) == f"http://v:8080/api/v1/series/{sid}"


# -- json ----------------------------------------------------------------------------------


def test_json_body_is_the_event_json_plus_key_and_link() -> None:
    event = make_event()
    body = json_body(event, LINK)
    assert {k: v for k, v in body.items() if k not in ("idempotency_key", "series_url")} == event
    assert body["idempotency_key"] == f"{event['id']}:firing"
    assert body["series_url"] == LINK
    assert set(body) >= {
        "id", "state", "series", "query", "detector", "started_at", "ended_at", "peak_score", "observed",
        "expected", "lower", "upper", "detectors", "recent", "summary",
    }
    json.dumps(body, allow_nan=False)  # plain JSON


# -- Teams ---------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["firing", "resolved"])
def test_teams_message_is_one_adaptive_card_attachment(state: str) -> None:
    event = make_event(state)
    body = teams_body(event, LINK)
    assert body["type"] == "message"
    assert len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "contentUrl" in attachment and attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    kinds = [block["type"] for block in card["body"]]
    assert kinds == ["TextBlock", "TextBlock", "FactSet"]
    heading = card["body"][0]
    assert heading["text"] == ("Anomaly" if state == "firing" else "Resolved") + ": cpu_utilization on web-1"
    assert heading["wrap"] is True and heading["weight"] == "Bolder"
    assert heading["color"] == ("Attention" if state == "firing" else "Good")
    assert card["body"][1]["text"] == event["summary"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert all(isinstance(v, str) for v in facts.values()), "FactSet values must be strings"
    assert facts["Idempotency key"] == f"{event['id']}:{state}"
    assert facts["State"] == state
    assert facts["Query"] == "cpu"
    assert facts["Series"] == "instance=web-1, job=node"
    assert facts["Observed"] == "97.2"
    assert facts["Expected"] == "41.5 (band 30.1 to 52.9)"
    assert facts["Score"] == "0.999999 (1 in 1.7e6 samples)"
    assert facts["Detectors"] == "ewma 0.999990, zscore 0.980000"
    assert ("Ended" in facts) == (state == "resolved")
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in Vigil", "url": LINK}]


def test_teams_score_is_not_rounded_up_to_one() -> None:
    event = make_event()
    event["peak_score"] = 0.9999996  # the event JSON keeps 6 decimals; a receiver must not see 1
    card = teams_body(event, LINK)["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Score"].startswith("0.999999 (")


# -- Slack ---------------------------------------------------------------------------------


def test_slack_message_has_fallback_text_and_blocks() -> None:
    event = make_event()
    body = slack_body(event, LINK)
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("Anomaly: cpu_utilization on web-1. ")
    assert event["summary"] in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    header, summary, fields, context = body["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "Anomaly: cpu_utilization on web-1"}
    assert summary["text"]["type"] == "mrkdwn"
    assert summary["text"]["text"].endswith(f"\n<{LINK}|Open in Vigil>")
    assert 1 <= len(fields["fields"]) <= SLACK_FIELDS_MAX
    assert all(f["type"] == "mrkdwn" for f in fields["fields"])
    assert "*Observed*\n97.2" in [f["text"] for f in fields["fields"]]
    assert context["elements"][0]["type"] == "mrkdwn"
    assert f"`{event['id']}:firing`" in context["elements"][0]["text"]


def test_slack_blocks_stay_within_block_kit_limits() -> None:
    long = {"__name__": "m" * 400, "instance": "<script>&" + "x" * 5000}
    event = make_event(labels=long)
    event["summary"] = "s" * 10_000
    body = slack_body(event, LINK)
    header, summary, fields, _ = body["blocks"]
    assert len(header["text"]["text"]) <= SLACK_HEADER_MAX
    assert len(summary["text"]["text"]) <= SLACK_SECTION_MAX
    assert summary["text"]["text"].endswith(f"<{LINK}|Open in Vigil>"), "the link survives the cut"
    assert all(len(f["text"]) <= SLACK_FIELD_MAX for f in fields["fields"])
    assert len(body["text"]) <= 3000
    series_field = next(f["text"] for f in fields["fields"] if f["text"].startswith("*Series*"))
    assert "&lt;script&gt;&amp;" in series_field, "Slack's mrkdwn escapes &, < and >"


# -- Alertmanager --------------------------------------------------------------------------


def test_alertmanager_firing_alert() -> None:
    event = make_event()
    now = T0 + 100
    alert = alertmanager_alert(event, LINK, now=now, hold=240, labels={"team": "ops"})
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert alert["labels"] == {
        "alertname": ALERTNAME, "query": "cpu", "metric": "cpu_utilization", "detector": "default",
        "severity": "warning", "instance": "web-1", "job": "node", "team": "ops", "event_id": event["id"],
    }
    assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k) for k in alert["labels"])
    assert alert["annotations"]["summary"] == event["summary"]
    assert "Observed: 97.2" in alert["annotations"]["description"]
    assert alert["annotations"]["idempotency_key"] == f"{event['id']}:firing"
    assert alert["annotations"]["event_id"] == event["id"]
    assert parse_rfc3339(alert["startsAt"]).timestamp() == T0
    assert parse_rfc3339(alert["endsAt"]).timestamp() == now + 240, "firing: endsAt is now + hold"
    assert alert["generatorURL"] == LINK


def test_alertmanager_resolved_alert_ends_when_the_event_ended() -> None:
    event = make_event("resolved")
    alert = alertmanager_alert(event, LINK, now=T0 + 10_000, hold=240)
    assert parse_rfc3339(alert["endsAt"]).timestamp() == T0 + 300
    assert parse_rfc3339(alert["startsAt"]) <= parse_rfc3339(alert["endsAt"])
    assert alert["annotations"]["idempotency_key"] == f"{event['id']}:resolved"


def test_alertmanager_labels_named_like_ours_are_exported_and_config_labels_win() -> None:
    labels = {"__name__": "up", "query": "theirs", "severity": "page", "alertname": "X", "bad-name": "v",
              "empty": ""}
    alert = alertmanager_alert(make_event(labels=labels), LINK, now=T0, hold=60, labels={"severity": "critical"})
    got = alert["labels"]
    assert got["query"] == "cpu" and got["exported_query"] == "theirs"
    assert got["alertname"] == ALERTNAME and got["exported_alertname"] == "X"
    assert got["exported_severity"] == "page" and got["severity"] == "critical"
    assert got["bad_name"] == "v"
    assert "empty" not in got, "an empty label is no label"
