"""Vigil's own metrics: the catalogue of every family it exports, and its self-monitoring.

`CATALOGUE` lists every family /metrics may show, with its type and help; a test fails if
/metrics shows a name that is not in it. `Metrics` holds the self-monitoring counters and
gauges (ordinary prometheus_client objects) on a `CollectorRegistry` of Vigil's own, never
the global one; the engine, the notifier and the exporter all write to or read from it.

Sharded (`vigil.sharding`), the self-monitoring gains ``vigil_shard_info{shard="2",shards="3"} 1``
and ``vigil_series_not_owned{query}``; unsharded, neither appears.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from vigil.sharding import Shard

__all__ = ["CATALOGUE", "Metrics"]

# Creation-time series (`*_created`) double the self-monitoring output and are not in the
# catalogue; Vigil's process never wants them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# name -> (type, help); per-series families first.
CATALOGUE: dict[str, tuple[str, str]] = {
    "vigil_observed_value": ("gauge", "Latest value of the series as Vigil saw it."),
    "vigil_expected_value": ("gauge", "Value the detector expected for the latest sample."),
    "vigil_upper_bound": ("gauge", "Upper edge of the band the decision uses."),
    "vigil_lower_bound": ("gauge", "Lower edge of the band the decision uses."),
    "vigil_anomaly_score": ("gauge", "Calibrated anomaly score of the latest sample, 0 to 1."),
    "vigil_anomaly": ("gauge", "1 while an anomaly event is open on the series, else 0."),
    "vigil_warming_up": ("gauge", "1 while no detector has an opinion on the series yet."),
    "vigil_samples_total": ("counter", "Valid samples taken in, per query."),
    "vigil_samples_invalid_total": ("counter", "Samples that were NaN, infinite or outside the valid range."),
    "vigil_series": ("gauge", "Series held, per query."),
    "vigil_series_refused_total": ("counter", "New series refused because the query's series cap was hit."),
    "vigil_series_evicted_total": ("counter", "Series forgotten after they stopped reporting."),
    "vigil_store_errors_total": ("counter", "Writes to the store in data_dir that failed (disk full, read-only), by what."),
    "vigil_series_not_owned": (
        "gauge", "Series of the query's latest fetch left to other shards, per query (only when sharded).",
    ),
    "vigil_shard_info": (
        "gauge", "1, with this replica's shard and the number of shards as labels (only when sharded).",
    ),
    "vigil_tick_duration_seconds": ("histogram", "Time to fetch and process one tick of a query."),
    "vigil_source_errors_total": (
        "counter", "Failed ticks, per query and kind (unavailable, rejected, internal).",
    ),
    "vigil_source_up": ("gauge", "1 if the query's last fetch succeeded, else 0."),
    "vigil_events_open": ("gauge", "Anomaly events open now, per query."),
    "vigil_events_total": ("counter", "Anomaly events opened, per query."),
    "vigil_notifications_total": (
        "counter", "Delivery attempts of outbox messages, per receiver and result (sent, retry, dead).",
    ),
    "vigil_notifications_pending": ("gauge", "Outbox messages waiting for delivery, per receiver."),
    "vigil_feedback_total": (
        "counter", "Verdicts people gave on events, by verdict (not_an_incident, incident), and undone ones (undone).",
    ),
    "vigil_alertmanager_reposts_total": (
        "counter", "Re-posts of open alerts to Alertmanager, per receiver and result (ok, failed).",
    ),
}



class Metrics:
    """Vigil's self-monitoring metrics, on a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None, shard: Shard | None = None) -> None:
        self.registry = registry or CollectorRegistry()

        def desc(name: str) -> str:
            return CATALOGUE[name][1]

        r = self.registry
        self.samples = Counter("vigil_samples", desc("vigil_samples_total"), ["query"], registry=r)
        self.invalid = Counter("vigil_samples_invalid", desc("vigil_samples_invalid_total"), ["query"], registry=r)
        self.series = Gauge("vigil_series", desc("vigil_series"), ["query"], registry=r)
        self.refused = Counter("vigil_series_refused", desc("vigil_series_refused_total"), ["query"], registry=r)
        self.evicted = Counter("vigil_series_evicted", desc("vigil_series_evicted_total"), ["query"], registry=r)
        self.store_errors = Counter("vigil_store_errors", desc("vigil_store_errors_total"), ["what"], registry=r)
        self.tick = Histogram(
            "vigil_tick_duration_seconds", desc("vigil_tick_duration_seconds"), ["query"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.source_errors = Counter(
            "vigil_source_errors", desc("vigil_source_errors_total"), ["query", "kind"], registry=r
        )
        self.source_up = Gauge("vigil_source_up", desc("vigil_source_up"), ["query"], registry=r)
        self.events_open = Gauge("vigil_events_open", desc("vigil_events_open"), ["query"], registry=r)
        self.events = Counter("vigil_events", desc("vigil_events_total"), ["query"], registry=r)
        self.notifications = Counter(
            "vigil_notifications", desc("vigil_notifications_total"), ["receiver", "result"], registry=r
        )
        self.notifications_pending = Gauge(
            "vigil_notifications_pending", desc("vigil_notifications_pending"), ["receiver"], registry=r
        )
        self.reposts = Counter(
            "vigil_alertmanager_reposts", desc("vigil_alertmanager_reposts_total"), ["receiver", "result"], registry=r
        )
        self.feedback = Counter("vigil_feedback", desc("vigil_feedback_total"), ["verdict"], registry=r)
        for verdict in ("not_an_incident", "incident", "undone"):
            self.feedback.labels(verdict)
        self.not_owned: Gauge | None = None
        if shard is not None:
            self.not_owned = Gauge("vigil_series_not_owned", desc("vigil_series_not_owned"), ["query"], registry=r)
            info = Gauge("vigil_shard_info", desc("vigil_shard_info"), ["shard", "shards"], registry=r)
            info.labels(str(shard.index), str(shard.count)).set(1)
