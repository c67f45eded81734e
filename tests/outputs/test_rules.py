"""`vigil rules`: the rule file it builds, checked by the real promtool and Prometheus.

The first part pins down `build_rules` itself; the rest runs the command as a user does
and hands its output to ``promtool check rules``, ``promtool test rules`` (the unit tests
in ``deploy/prometheus/vigil-rules.test.yml``) and a real Prometheus. promtool comes from
the Debian package ``prometheus`` (``scripts/setup --test``); a missing binary fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.servers import PrometheusServer, promtool_binary
from vigil.config import DEFAULT_EXPORT, EXPORTS, Config, PrometheusQuery, PrometheusSource
from vigil.errors import ConfigError
from vigil.metrics import CATALOGUE
from vigil.outputs.exporter import SERIES_FAMILIES
from vigil.outputs.rules import BAND_EXPORT, build_rules, prometheus_duration, render_rules, write_rules

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "prometheus"
RULES = DEPLOY / "vigil-rules.yml"
RULES_TEST = DEPLOY / "vigil-rules.test.yml"
EXAMPLE = ROOT / "examples" / "vigil.yml"

ALERT_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # Prometheus' rule name rule
PER_SERIES = ("VigilAnomaly", "VigilAboveUpperBound", "VigilBelowLowerBound")


def two_queries_and_host_yaml(export: Sequence[str] | None = EXPORTS, **detection: Any) -> dict[str, Any]:
    """Host and two queries; with every family exported unless `export` says otherwise (None: the default)."""
    return {
        **({} if export is None else {"export": list(export)}),
        "host": {"enabled": True},
        "prometheus": {
            "url": "http://127.0.0.1:9090",
            "queries": [
                {"name": "api.latency-p99", "query": "histogram_quantile(0.99, rate(x_bucket[5m]))",
                 "detection": detection or None},
                {"name": "node:cpu", "query": "rate(node_cpu_seconds_total[1m])"},
            ],
        },
    }


def two_queries_and_host(export: Sequence[str] | None = EXPORTS, **detection: Any) -> Config:
    return Config.model_validate(two_queries_and_host_yaml(export, **detection))


def alerts(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules["groups"] for rule in group["rules"]]


def vigil(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool_binary(), *map(str, args)], capture_output=True, text=True, timeout=60, check=False,
    )


# -- build_rules ---------------------------------------------------------------------------


def test_one_group_and_one_anomaly_alert_per_query_with_valid_names() -> None:
    rules = build_rules(two_queries_and_host())
    assert [g["name"] for g in rules["groups"]] == ["vigil.host", "vigil.api.latency-p99", "vigil.node:cpu"]
    anomaly = [r for r in alerts(rules) if r["alert"] == "VigilAnomaly"]
    assert [r["labels"]["query"] for r in anomaly] == ["host", "api.latency-p99", "node:cpu"]
    assert [r["expr"] for r in anomaly] == [
        'vigil_anomaly{query="host"} == 1',
        'vigil_anomaly{query="api.latency-p99"} == 1',
        'vigil_anomaly{query="node:cpu"} == 1',
    ]
    for group in rules["groups"]:
        names = [r["alert"] for r in group["rules"]]
        assert names == [*PER_SERIES, "VigilSourceDown", "VigilAbsent"]
        assert all(ALERT_NAME.match(n) for n in names)


def test_band_alerts_compare_the_same_series_and_skip_warming_up() -> None:
    rules = build_rules(two_queries_and_host())
    above = next(r for r in alerts(rules) if r["alert"] == "VigilAboveUpperBound" and r["labels"]["query"] == "host")
    assert above["expr"] == (
        '(vigil_observed_value{query="host"} > vigil_upper_bound{query="host"}) '
        'unless vigil_warming_up{query="host"} == 1'
    )
    below = next(r for r in alerts(rules) if r["alert"] == "VigilBelowLowerBound" and r["labels"]["query"] == "host")
    assert "vigil_observed_value{query=\"host\"} < vigil_lower_bound{query=\"host\"}" in below["expr"]


def families_read(text: str) -> set[str]:
    """The vigil_* families a rule's expression or annotation reads."""
    return set(re.findall(r"\bvigil_[a-z_]+\b", text)) & set(CATALOGUE)


def test_the_default_export_gets_the_anomaly_alert_and_no_band_alerts() -> None:
    rules = build_rules(two_queries_and_host(export=None))
    for group in rules["groups"]:
        assert [r["alert"] for r in group["rules"]] == ["VigilAnomaly", "VigilSourceDown", "VigilAbsent"]


@pytest.mark.parametrize(
    "export",
    [
        pytest.param(DEFAULT_EXPORT, id="default"),
        pytest.param(("anomaly",), id="anomaly-only"),
        pytest.param(("observed", "bounds"), id="band-without-warming-up"),
        pytest.param(("anomaly", *BAND_EXPORT), id="band"),
        pytest.param(EXPORTS, id="everything"),
        pytest.param((), id="nothing"),
    ],
)
def test_every_rule_reads_only_families_its_query_exports(export: tuple[str, ...]) -> None:
    exported = {family for family, _, name in SERIES_FAMILIES if name in export}
    always = {name for name in CATALOGUE if name.startswith("vigil_event_")} | {"vigil_source_up",
                                                                                "vigil_source_errors_total"}
    rules = build_rules(two_queries_and_host(export=export))
    for rule in alerts(rules):
        assert families_read(rule["expr"]) <= exported | always, f"{rule['alert']} reads what {export} does not export"
        for name, text in rule["annotations"].items():
            # a band alert's description says the expected value when it is exported, and leaves it out when not
            optional = {"vigil_expected_value"} if name == "description" and "Bound" in rule["alert"] else set()
            assert families_read(text) <= exported | always | optional, f"{rule['alert']} {name}"
            if optional:
                assert '{{- with printf "vigil_expected_value{%s} >= -Inf" $sel | query }}' in text
    band = [r["alert"] for r in alerts(rules) if r["alert"] in PER_SERIES[1:]]
    assert len(band) == (6 if set(BAND_EXPORT) <= set(export) else 0)
    anomaly = [r["alert"] for r in alerts(rules) if r["alert"] == "VigilAnomaly"]
    assert len(anomaly) == (3 if "anomaly" in export else 0)
    assert [r["alert"] for r in alerts(rules)].count("VigilAbsent") == 3


def test_a_query_of_its_own_export_gets_its_band_alerts_and_the_others_not() -> None:
    text = two_queries_and_host_yaml(export=None)
    text["prometheus"]["queries"][1]["export"] = [*BAND_EXPORT, "anomaly"]
    config = Config.model_validate(text)
    rules = build_rules(config)
    got = {g["name"]: [r["alert"] for r in g["rules"]] for g in rules["groups"]}
    assert got == {
        "vigil.host": ["VigilAnomaly", "VigilSourceDown", "VigilAbsent"],
        "vigil.api.latency-p99": ["VigilAnomaly", "VigilSourceDown", "VigilAbsent"],
        "vigil.node:cpu": [*PER_SERIES, "VigilSourceDown", "VigilAbsent"],
    }
    assert "# Band alerts only for queries whose export has observed, bounds and warming_up: node:cpu.\n" in (
        render_rules(config)
    )


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        pytest.param("above", ["VigilAnomaly", "VigilAboveUpperBound"], id="above"),
        pytest.param("below", ["VigilAnomaly", "VigilBelowLowerBound"], id="below"),
        pytest.param("both", ["VigilAnomaly", "VigilAboveUpperBound", "VigilBelowLowerBound"], id="both"),
    ],
)
def test_band_alerts_follow_the_query_direction(direction: str, expected: list[str]) -> None:
    rules = build_rules(two_queries_and_host(direction=direction))
    group = next(g for g in rules["groups"] if g["name"] == "vigil.api.latency-p99")
    assert [r["alert"] for r in group["rules"] if r["alert"] in PER_SERIES] == expected


@pytest.mark.parametrize(
    ("for_", "written"),
    [
        pytest.param("0s", "0s", id="zero"),
        pytest.param("1m", "1m", id="default"),
        pytest.param("1.5m", "1m30s", id="fraction"),
        pytest.param(90, "1m30s", id="seconds"),
        pytest.param("500ms", "500ms", id="milliseconds"),
        pytest.param("2h", "2h", id="hours"),
    ],
)
def test_for_and_severity_are_honoured(for_: str | float, written: str) -> None:
    rules = build_rules(two_queries_and_host(), for_=for_, severity="critical")
    for rule in alerts(rules):
        assert rule["labels"]["severity"] == "critical"
        if rule["alert"] in PER_SERIES:
            assert rule["for"] == written
    assert {r["for"] for r in alerts(rules) if r["alert"] == "VigilSourceDown"} == {"2m"}
    assert {r["for"] for r in alerts(rules) if r["alert"] == "VigilAbsent"} == {"5m"}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        pytest.param("1.5", "--for is '1.5'; write a duration", id="no-unit"),
        pytest.param("-1m", "--for is '-1m'", id="negative"),
        pytest.param("0.0001s", "whole milliseconds", id="below-a-millisecond"),
    ],
)
def test_bad_for_is_a_config_error_that_says_what_to_write(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        build_rules(two_queries_and_host(), for_=value)


def test_bad_severity_and_page_url_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="--severity is ''"):
        build_rules(two_queries_and_host(), severity="")
    for url in ("vigil.example.com", "http://x/{{ $labels }}", "http://a b"):
        with pytest.raises(ConfigError, match="--page-url is"):
            build_rules(two_queries_and_host(), page_url=url)


def test_odd_query_names_are_escaped_in_label_matchers(tmp_path: Path) -> None:
    # The config allows letters, digits and _ : . -; build_rules escapes anything anyway.
    odd = 'we"ird\\name'
    source = PrometheusSource.model_construct(
        url="http://127.0.0.1:9090", basic_auth=None, bearer_token=None,
        queries=[PrometheusQuery.model_construct(name=odd, query="up", detection=None)],
    )
    config = Config.model_validate({"host": {"enabled": False}}).model_copy(update={"prometheus": source})
    rules = build_rules(config)
    anomaly = alerts(rules)[0]
    assert anomaly["expr"] == 'vigil_anomaly{query="we\\"ird\\\\name"} == 1'
    assert anomaly["labels"]["query"] == odd
    path = tmp_path / "odd.yml"
    path.write_text(render_rules(config))
    assert yaml.safe_load(path.read_text())["groups"][0]["rules"][0]["labels"]["query"] == odd
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_links_use_page_url_or_the_listen_address() -> None:
    def link(**kwargs: Any) -> str:
        annotation: str = alerts(build_rules(two_queries_and_host(), **kwargs))[0]["annotations"]["vigil_url"]
        return annotation

    assert link().startswith("http://127.0.0.1:8080/api/v1/series?query=")
    assert link(page_url="https://vigil.example.com/").startswith("https://vigil.example.com/api/v1/series?")
    everywhere = Config.model_validate({"server": {"listen": "0.0.0.0:9000"}})
    assert alerts(build_rules(everywhere))[0]["annotations"]["vigil_url"].startswith("http://127.0.0.1:9000/")


def test_no_configured_query_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no query is configured"):
        build_rules(Config.model_validate({"host": {"enabled": False}}))


def test_rendered_yaml_reads_back_as_the_built_rules_without_aliases() -> None:
    config = two_queries_and_host()
    text = render_rules(config, for_="0s")
    assert text.startswith("# Prometheus alert rules over Vigil's metrics")
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text) == build_rules(config, for_="0s")


def test_write_rules_replaces_the_file_whole_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("old")
    path.chmod(0o640)
    write_rules(path, "new: 1\n")
    assert path.read_text() == "new: 1\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["rules.yml"]


@pytest.mark.parametrize(("value", "expected"), [(0.001, "1ms"), (86400 * 365, "1y"), (86400 * 9, "9d"), (86400 * 14, "2w"), (3723, "1h2m3s")])
def test_prometheus_duration_writes_what_prometheus_prints(value: float, expected: str) -> None:
    assert prometheus_duration(value) == expected


# -- promtool and Prometheus ---------------------------------------------------------------


def test_committed_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 17 rules found" in result.stdout  # 3 per query, and demo_cpu's band alerts


def test_rules_generated_for_two_queries_and_the_host_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "vigil.yml").write_text(yaml.safe_dump(two_queries_and_host_yaml()))
    out = tmp_path / "rules.yml"
    result = vigil(
        "rules", "--config", "vigil.yml", "--output", str(out), "--for", "0s", "--severity", "critical",
        "--page-url", "https://vigil.example.com", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"wrote {out}" in result.stderr
    checked = promtool("check", "rules", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 15 rules found" in checked.stdout
    rules = yaml.safe_load(out.read_text())
    assert {r["for"] for r in alerts(rules) if r["alert"] in PER_SERIES} == {"0s"}
    assert {r["labels"]["severity"] for r in alerts(rules)} == {"critical"}


def test_promtool_unit_tests_of_the_committed_rules_pass() -> None:
    result = promtool("test", "rules", RULES_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("}} is anomalous\n", "}} is odd\n", id="summary-text"),
        pytest.param('detector %s." $labels.query', 'detector %s" $labels.query', id="description-text"),
        pytest.param("    for: 1m\n", "    for: 2m\n", id="longer-for"),
        pytest.param('vigil_anomaly{query="demo_cpu"} == 1', 'vigil_anomaly{query="demo_cpu"} == 0', id="expr"),
        pytest.param("vigil_source_up{query=\"demo_latency_p99\"} == 0\n    for: 2m",
                     "vigil_source_up{query=\"demo_latency_p99\"} == 0\n    for: 3m", id="source-down-for"),
        pytest.param("/api/v1/series?query=", "/api/v1/series?q=", id="link"),
    ],
)
def test_broken_rules_fail_the_promtool_unit_tests(tmp_path: Path, old: str, new: str) -> None:
    text = RULES.read_text()
    assert old in text
    (tmp_path / RULES.name).write_text(text.replace(old, new))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    result = promtool("test", "rules", tmp_path / RULES_TEST.name)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout + result.stderr


def test_committed_rules_are_what_vigil_rules_prints_for_the_example(tmp_path: Path) -> None:
    result = vigil("rules", "--config", "examples/vigil.yml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == RULES.read_text(), (
        "deploy/prometheus/vigil-rules.yml is stale: "
        "run vigil rules --config examples/vigil.yml --output deploy/prometheus/vigil-rules.yml"
    )
    elsewhere = vigil("rules", "--config", str(EXAMPLE), cwd=tmp_path)  # no path in the output
    assert elsewhere.stdout == result.stdout


def test_prometheus_loads_the_committed_rules(tmp_path: Path) -> None:
    with PrometheusServer(tmp_path / "prom", rule_files=[RULES]) as prom:
        groups = httpx.get(f"{prom.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in yaml.safe_load(RULES.read_text())["groups"])
    assert len(rules) == 17
    assert {r["health"] for r in rules} <= {"ok", "unknown"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["--config", "missing.yml"], "cannot read config file missing.yml", id="missing-config"),
        pytest.param(["--config", "bad.yml"], "hots is not a known key", id="bad-config"),
        pytest.param(["--config", "good.yml", "--output", "no/such/folder/rules.yml"], "cannot write --output",
                     id="output-folder-missing"),
        pytest.param(["--config", "good.yml", "--output", "."], "is a folder", id="output-is-a-folder"),
        pytest.param(["--config", "good.yml", "--output", "/proc/vigil-rules.yml"], "cannot write --output",
                     id="output-unwritable"),
        pytest.param(["--config", "good.yml", "--for", "soon"], "--for is 'soon'", id="bad-for"),
        pytest.param(["--config", "good.yml", "--page-url", "vigil:8080"], "--page-url is 'vigil:8080'",
                     id="bad-page-url"),
    ],
)
def test_command_errors_are_one_error_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "bad.yml").write_text("hots: {}\n")
    (tmp_path / "good.yml").write_text("host: {enabled: true}\n")
    result = vigil("rules", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ")
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
