"""Alerting from Vigil itself: a persistent outbox, message formats and the delivery loop.

Events are queued in the outbox (`outbox`) in the same SQLite transaction that stores
them; the sender (`sender`) posts each queued message to its receiver (Alertmanager's
``/api/v2/alerts``, or a webhook taking the event JSON, a Teams Adaptive Card or a Slack
message, see `formats`), retries with backoff, and gives up on what a receiver rejects.
A receiver that is down loses nothing, and a restart sends nothing twice.
"""

from __future__ import annotations

from vigil.outputs.notify.outbox import Message, Outbox, Route
from vigil.outputs.notify.sender import Sender, Target, base_url, build_targets

__all__ = ["Message", "Outbox", "Route", "Sender", "Target", "base_url", "build_targets"]
