"""Slack: an incoming-webhook message, ``text`` (the notification fallback) and ``blocks``.

The blocks are a header, a section with the summary and a link back to Vigil, a section of
fields and a context line with the state and the idempotency key, cut to Block Kit's limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigil.outputs.notify.content import facts, idempotency_key, title

__all__ = ["SLACK_FIELDS_MAX", "SLACK_FIELD_MAX", "SLACK_HEADER_MAX", "SLACK_SECTION_MAX", "SLACK_TEXT_MAX", "slack_body"]

# Slack Block Kit limits (characters)
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_MAX = 10
SLACK_TEXT_MAX = 3000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Slack's three escapes; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(event: Mapping[str, Any], link: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback ``text`` and header/section/context blocks."""
    key = idempotency_key(event)
    shown = facts(event, state_and_key=False)[:SLACK_FIELDS_MAX]
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
