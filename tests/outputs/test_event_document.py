"""The event document: made in one place from an `EventRecord`, and held to its JSON schema."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator, ValidationError

from vigil.detection.decision import Event
from vigil.engine import EventRecord
from vigil.labels import event_id, series_key
from vigil.outputs.event import RECENT, event_doc, event_json, event_schema

T0 = 1_700_000_000.0
LABELS = {"__name__": "cpu_utilization", "instance": "web-1"}
SCHEMA = Draft202012Validator(event_schema())


def record(
    ended: float | None = None, expected: float = 41.5, labels: dict[str, str] | None = None,
    recent: dict[str, Any] | None = None, shard: str | None = None,
) -> EventRecord:
    e = Event(
        row=0, number=1, state="firing" if ended is None else "resolved", started_at=T0, ended_at=ended,
        peak_score=0.9999996, peak_at=T0 + 60, observed=97.2, expected=expected, lower=30.1, upper=52.9,
        detectors={"level": 0.9999996, "shift": math.nan},
    )  # fmt: skip
    labels = LABELS if labels is None else labels
    t = T0 + 15.0 * np.arange(-40, 40)
    if recent is None:
        recent = {"t": t, "value": t - T0, "expected": np.full(t.size, np.nan), "lower": t, "upper": t, "score": t}
    return EventRecord(e, "cpu", series_key(labels), labels, "default", 0.99996, recent, shard)


def test_the_document_has_every_field_and_validates() -> None:
    doc = event_json(record())
    SCHEMA.validate(doc)
    assert doc["id"] == event_id("cpu", series_key(LABELS), T0)
    assert (doc["started_at"], doc["peak_at"], doc["ended_at"]) == ("2023-11-14T22:13:20Z", "2023-11-14T22:14:20Z", None)
    assert (doc["peak_score"], doc["threshold"]) == (0.9999996, 0.99996)
    assert doc["detectors"] == {"level": 0.9999996, "shift": None}
    assert doc["summary"] == (
        "cpu_utilization on web-1 is 97.2, expected 41.5 (band 30.1 to 52.9); as rare as 1 in 2.5e6 samples"
    )
    assert "shard" not in doc
    assert event_json(record(shard="2/3"))["shard"] == "2/3"


def test_the_schema_refuses_an_unknown_field_and_a_missing_one() -> None:
    doc = event_json(record())
    with pytest.raises(ValidationError):
        SCHEMA.validate({**doc, "extra": 1})
    with pytest.raises(ValidationError):
        SCHEMA.validate({k: v for k, v in doc.items() if k != "summary"})


@pytest.mark.parametrize(
    ("ended", "last"),
    [pytest.param(None, T0 + 60, id="firing-ends-at-the-peak"), pytest.param(T0 + 300, T0 + 300, id="resolved-at-the-end")],
)
def test_recent_points_are_the_last_ones_up_to_the_events_latest_moment(ended: float | None, last: float) -> None:
    points = event_json(record(ended=ended))["recent"]
    assert len(points) == RECENT
    assert points[-1]["t"] == last
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert points[-1]["value"] == last - T0 and points[-1]["expected"] is None


def test_a_column_the_producer_does_not_have_is_null() -> None:
    (point,) = event_json(record(recent={"t": [T0], "value": [97.2]}))["recent"]
    assert point == {"t": T0, "value": 97.2, "expected": None, "lower": None, "upper": None, "score": None}


def test_without_an_expected_value_the_summary_gives_the_score_cut_not_rounded() -> None:
    doc = event_json(record(ended=T0 + 300, expected=math.nan, labels={"file": "a.csv", "column": "cpu"}))
    assert doc["expected"] is None
    assert doc["summary"] == (
        'cpu{column="cpu",file="a.csv"} was 97.2, anomaly score 0.999999; as rare as 1 in 2.5e6 samples; '
        "resolved after 5 min"
    )


def test_the_stored_record_indexes_the_document() -> None:
    r = record(ended=T0 + 300)
    stored = event_doc(r)
    assert stored["event"] == event_json(r)
    assert (stored["id"], stored["series_key"], stored["started_ts"], stored["ended_ts"]) == (
        stored["event"]["id"], r.key, T0, T0 + 300,
    )
