"""The /metrics text: every series' results, then Vigil's own health.

Per-series families are written straight from the arrays at scrape time (one line per
series and family, label strings cached per row by the engine's `Query`), not through
100,000 labelled Gauge children; the self-monitoring (`vigil.metrics`) follows.

The ``vigil_event_*`` families say the open event's values at its peak, one line per series
with an event open and none for the others: what an alert rule's annotations read, so they
show the anomaly and not the values at evaluation time (after the peak, or a held score).

Sharded (`vigil.sharding`), every per-series line also carries ``vigil_shard="2"`` (a
series' own label of that name becomes ``exported_vigil_shard``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
from prometheus_client import generate_latest

from vigil.engine.query import Query
from vigil.metrics import CATALOGUE, Metrics

__all__ = ["iter_render", "render"]

_SERIES_FAMILIES = (
    ("vigil_observed_value", "value"),
    ("vigil_expected_value", "expected"),
    ("vigil_upper_bound", "upper"),
    ("vigil_lower_bound", "lower"),
    ("vigil_anomaly_score", "score"),
    ("vigil_anomaly", "anomalous"),
    ("vigil_warming_up", "warming"),
)

# the open event's values at its peak, from the decision's state
_EVENT_FAMILIES = (
    ("vigil_event_observed_value", "observed"),
    ("vigil_event_expected_value", "expected"),
    ("vigil_event_upper_bound", "upper"),
    ("vigil_event_lower_bound", "lower"),
    ("vigil_event_peak_score", "peak_score"),
)


def _value(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x))


def iter_render(metrics: Metrics, queries: Iterable[Query]) -> Iterator[bytes]:
    """The /metrics text in chunks (one per family and query), so a scrape of 100,000
    series never holds the whole text in memory."""
    queries = list(queries)
    for family, field in _SERIES_FAMILIES:
        yield f"# HELP {family} {CATALOGUE[family][1]}\n# TYPE {family} gauge\n".encode()
        for q in queries:
            rows = q.table.active_rows()
            if not rows.size:
                continue
            labels = q.label_strings(rows)
            values = q.table.state[field][rows]
            if values.dtype == np.bool_:
                texts = ["1" if v else "0" for v in values.tolist()]
            else:
                texts = [_value(v) for v in values.tolist()]
            yield "".join(f"{family}{{{lab}}} {v}\n" for lab, v in zip(labels, texts, strict=True)).encode()
    for family, field in _EVENT_FAMILIES:
        yield f"# HELP {family} {CATALOGUE[family][1]}\n# TYPE {family} gauge\n".encode()
        for q in queries:
            rows = q.table.active_rows()
            decision = q.pipeline.decision_state
            rows = rows[rows < decision.n_rows]
            rows = rows[decision["open"][rows]]
            if not rows.size:
                continue
            labels = q.label_strings(rows)
            texts = [_value(v) for v in decision[field][rows].tolist()]
            yield "".join(f"{family}{{{lab}}} {v}\n" for lab, v in zip(labels, texts, strict=True)).encode()
    yield generate_latest(metrics.registry)


def render(metrics: Metrics, queries: Iterable[Query]) -> bytes:
    """The whole /metrics text: per-series families, then self-monitoring."""
    return b"".join(iter_render(metrics, queries))
