"""Alerting from Vigil itself: a persistent outbox, one module per channel and the delivery loop.

Events are queued in the outbox (`outbox`) in the same SQLite transaction that stores
them; the sender (`sender`) posts each queued message to its receiver (`targets`), its
body rendered by the receiver's channel (`channels`): Alertmanager's ``/api/v2/alerts``
(`alertmanager`), or a webhook taking the event JSON (`plain`), a Teams Adaptive Card
(`teams`) or a Slack message (`slack`), all saying the same things (`content`). It retries
with backoff and gives up on what a receiver rejects. A receiver that is down loses
nothing, and a restart sends nothing twice.
"""

from __future__ import annotations

from vigil.outputs.notify.outbox import Message, Outbox, Route
from vigil.outputs.notify.sender import Sender
from vigil.outputs.notify.targets import Target, base_url, build_targets

__all__ = ["Message", "Outbox", "Route", "Sender", "Target", "base_url", "build_targets"]
