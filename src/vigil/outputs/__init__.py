"""Outputs: what Vigil makes of the engine's results for people and programs.

`event` builds the event document (the one JSON per anomaly), `store` keeps events and
state in SQLite, `feedback` keeps people's verdicts on events and teaches the series what
they accepted, `exporter` writes /metrics, `rules` writes Prometheus alert rules, and
`notify/` delivers events to Alertmanager and webhooks from a persistent outbox.
"""

from __future__ import annotations

__all__: list[str] = []
