"""The seed's CSV replayed live: its CPU, EWMA and upper threshold appear as vigil_* metrics.

They are the observed value, the expected value and the band, which a query exports when
its ``export`` names them (the default exports only the score and the verdict).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from support.processes import VigilProcess
from support.servers import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpu_spike.csv"


def test_seed_csv_replays_as_live_metrics_and_its_spike_becomes_an_event(tmp_path: Path) -> None:
    config = {
        "data_dir": "data",
        "host": {"enabled": False},
        "detection": {"detector": "ewma"},
        # a file minute every 10 ms: the 2,000 rows take 20 s, the spike comes at 15 s
        "replay": [
            {"name": "seed", "path": str(EXAMPLE), "speed": 6000,
             "export": ["score", "anomaly", "observed", "expected", "bounds"]},
            {"name": "default", "path": str(EXAMPLE), "speed": 6000},  # the same file, the default export
        ],
    }
    with VigilProcess(tmp_path, config) as v:
        v.start()

        def seed_gauges() -> dict[str, float]:
            found = {}
            for family in text_string_to_metric_families(v.get("/metrics").text):
                for s in family.samples:
                    if s.labels.get("query") == "seed" and s.labels.get("metric") == "cpu_utilization":
                        found[family.name] = s.value
            return found if "vigil_expected_value" in found and found["vigil_expected_value"] == found[
                "vigil_expected_value"] else {}

        gauges = wait_until(seed_gauges, 20, 0.2, "the replayed series with its EWMA band")
        # the seed's names: cpu_utilization (observed), its EWMA (expected), the upper threshold
        assert {"vigil_observed_value", "vigil_expected_value", "vigil_upper_bound", "vigil_lower_bound"} <= set(gauges)
        assert gauges["vigil_lower_bound"] <= gauges["vigil_expected_value"] <= gauges["vigil_upper_bound"]
        labels = next(
            s.labels for f in text_string_to_metric_families(v.get("/metrics").text)
            if f.name == "vigil_expected_value" for s in f.samples if s.labels.get("query") == "seed"
        )
        assert labels["detector"] == "ewma"

        def default_families() -> set[str]:
            shown = {f.name for f in text_string_to_metric_families(v.get("/metrics").text)
                     for s in f.samples if s.labels.get("query") == "default"}
            return shown if {"vigil_anomaly_score", "vigil_anomaly"} <= shown else set()

        shown = wait_until(default_families, 20, 0.2, "the replay of the default export")
        assert not shown & {"vigil_observed_value", "vigil_expected_value", "vigil_upper_bound", "vigil_lower_bound",
                            "vigil_warming_up"}

        events = wait_until(lambda: v.get("/api/v1/anomalies", query="seed").json()["items"], 40, 0.2, "the spike")
        assert events[-1]["observed"] > 80  # the injected spike of examples/cpu_spike.csv (about 92)
        assert v.stop() == 0  # stopped by itself on SIGTERM
    assert "Traceback" not in v.log()
