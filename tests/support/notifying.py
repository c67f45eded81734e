"""Helpers for the notification tests: event records and a clock. Nothing here is a test."""

from __future__ import annotations

from typing import Any

from vigil.detection.decision import Event
from vigil.engine import EventRecord
from vigil.labels import series_key
from vigil.outputs.event import event_doc

__all__ = ["T0", "Clock", "make_doc"]

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_doc(
    state: str = "firing",
    query: str = "cpu",
    instance: str = "web-1",
    started: float = T0,
    peak_score: float = 0.99999,
) -> dict[str, Any]:
    """A store record (as `Engine.tick` writes) of one event on ``cpu_utilization{instance}``."""
    labels = {"__name__": "cpu_utilization", "instance": instance}
    e = Event(
        row=0, number=1, state=state,  # type: ignore[arg-type]
        started_at=started, ended_at=started + 60 if state == "resolved" else None,
        peak_score=peak_score, peak_at=started, observed=97.2, expected=41.5, lower=30.1, upper=52.9,
        detectors={"ewma": peak_score},
    )
    return event_doc(EventRecord(e, query, series_key(labels), labels, "default", 0.99996, {"t": [started], "value": [97.2]}))
