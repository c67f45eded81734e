"""Microsoft Teams: the message a Power Automate workflow posts to a channel.

The workflow is the one started by "When a Teams webhook request is received": it takes
``{"type": "message", "attachments": [one Adaptive Card 1.4]}``. The card holds the title,
the summary, a FactSet and an ``Action.OpenUrl`` back to Vigil.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigil.outputs.notify.content import facts, title

__all__ = ["teams_body"]


def teams_body(event: Mapping[str, Any], link: str) -> dict[str, Any]:
    """A Teams message with one Adaptive Card, as a Power Automate workflow webhook takes it."""
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
            {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts(event)]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Vigil", "url": link}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }
