"""The channels: the function that renders a message's body, by the receiver's channel name.

A body function takes the event document, the link back to Vigil, the receiver and the
time now, and returns the JSON to post: the plain event JSON (`plain`), a Teams card
(`teams`), a Slack message (`slack`), or a list of one Alertmanager alert (`alertmanager`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vigil.outputs.notify.alertmanager import alertmanager_alert
from vigil.outputs.notify.plain import json_body
from vigil.outputs.notify.slack import slack_body
from vigil.outputs.notify.targets import Target
from vigil.outputs.notify.teams import teams_body

__all__ = ["BODIES", "Body"]

Body = Callable[[Mapping[str, Any], str, Target, float], Any]

BODIES: dict[str, Body] = {
    "json": lambda event, link, t, now: json_body(event, link),
    "teams": lambda event, link, t, now: teams_body(event, link),
    "slack": lambda event, link, t, now: slack_body(event, link),
    "alertmanager": lambda event, link, t, now: [
        alertmanager_alert(event, link, now=now, hold=t.hold, labels=t.labels)
    ],
}
