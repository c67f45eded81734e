"""The real Prometheus scrapes a `vigil run` that watches 10,000 series, with the default export.

A scrape target serves 10,000 gauges, a first real Prometheus scrapes it and `vigil run`
queries that Prometheus (`support.many_series`); a second real Prometheus scrapes Vigil's
/metrics every second, as a team's Prometheus would (it asks for gzip). Prometheus's own
account of each scrape of Vigil must show it whole and cheap: up, at least 20,000 samples
(two families per series by default, ``vigil_anomaly_score`` and ``vigil_anomaly``, plus the
self-monitoring) and ``scrape_duration_seconds`` under 1 s, including the scrapes just after
a tick of Vigil, when the per-series text is rendered again. A missing binary fails the test.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.many_series import many_series
from support.servers import PrometheusServer, wait_until

N = 10_000


def test_prometheus_scrapes_vigil_at_ten_thousand_series_whole_and_in_under_a_second(tmp_path: Path) -> None:
    began = time.monotonic()
    with many_series(tmp_path, N, history=0) as vigil, \
            PrometheusServer(tmp_path / "scraper", targets=[f"127.0.0.1:{vigil.port}"]) as prom:
        target = '{job="targets"}'

        def value(promql: str) -> float | None:
            got = prom.query(promql)
            return float(got[0]["value"][1]) if got else None

        def whole() -> float | None:
            samples = value(f"scrape_samples_scraped{target}")
            return time.time() if samples is not None and samples >= 2 * N else None

        since = wait_until(whole, 30, 0.5, f"a scrape of Vigil with {2 * N:,} samples or more")
        ticks = value('vigil_tick_duration_seconds_count{query="requests"}') or 0.0
        # a tick of the query (every 15 s) renders its lines again: scrapes after it count too
        wait_until(lambda: (value('vigil_tick_duration_seconds_count{query="requests"}') or 0) > ticks, 30, 0.5,
                   "a tick of Vigil's query seen by Prometheus")
        ticked = time.time()
        wait_until(lambda: (value(f"timestamp(up{target})") or 0) > ticked + 2, 10, 0.2, "two more scrapes")
        window = f"[{max(int(time.time() - since) + 1, 5)}s]"
        scrapes = value(f"count_over_time(up{target}{window})") or 0.0
        assert scrapes >= 10
        assert value(f"min_over_time(up{target}{window})") == 1.0, "every scrape of Vigil succeeded"
        slowest = value(f"max_over_time(scrape_duration_seconds{target}{window})")
        fewest = value(f"min_over_time(scrape_samples_scraped{target}{window})")
        assert slowest is not None and slowest < 1.0
        assert fewest is not None and fewest >= 2 * N
        assert value(f"count(vigil_anomaly_score{target})") == N
        assert value(f"count(vigil_anomaly{target})") == N
        assert value(f"count(vigil_observed_value{target})") is None, "not exported by default"

        # what Prometheus asked for: gzip, which Vigil gave
        r = httpx.get(f"{vigil.url}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert r.headers["content-encoding"] == "gzip"
        size = int(r.headers["content-length"])
        lines = {f.name: len(f.samples) for f in text_string_to_metric_families(r.text)}
        assert lines["vigil_anomaly_score"] == lines["vigil_anomaly"] == N
        assert size < len(r.content) / 10
        print(f"{scrapes:.0f} scrapes of {fewest:,.0f}+ samples, the slowest {slowest * 1000:.0f} ms; "
              f"{size / N:.1f} gzipped bytes per series ({len(r.content) / N:.0f} plain); "
              f"{time.monotonic() - began:.0f} s in all")
