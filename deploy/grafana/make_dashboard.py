#!/usr/bin/env python3
"""Write Vigil's Grafana dashboard, deploy/grafana/dashboards/vigil.json (standard library only).

    python deploy/grafana/make_dashboard.py            # rewrite the JSON file
    python deploy/grafana/make_dashboard.py --check    # exit 1 if the file is not what this writes

Edit this script, not the JSON: tests/deploy/test_deploy.py fails when the committed
file differs from what the script writes, and runs every PromQL expression of the dashboard
against a real Prometheus that scrapes a real Vigil.

The dashboard reads Prometheus through the datasource with uid ``prometheus``
(deploy/grafana/provisioning/datasources/prometheus.yml). Its panels follow Vigil's default
``export`` (``[score, anomaly]``, docs/configuration.md): the anomaly score and verdict of
every series, and the open events' values at their peak (``vigil_event_*``, always
exported). The band of a series (observed, expected, lower and upper) is in Vigil's API and
page for every series, and the panels link there; on /metrics, only for queries whose
``export`` adds ``observed``, ``expected`` and ``bounds``, which the collapsed row at the
bottom shows. Variables:

- ``query``: Vigil's configured queries (the ``query`` label); All matches ``.*``;
- ``metric``: the watched metric names (the ``metric`` label) of those queries; All is
  ``.*``, which also matches series whose ``metric`` is empty (a query such as
  ``sum by (route) (...)`` has no metric name);
- ``series``: one entry per series of those queries and metrics that exports its band,
  as its label matchers (``detector="default",instance="demo-app:9100",...``): Grafana's
  ``query_result`` prints each series as ``name{k="v",...} value time`` and the regex keeps
  what is between the braces. The "Observed, expected and band" panel repeats once per
  selected series, so each copy has exactly one upper and one lower bound and can fill
  between them. Its queries use ``${series:raw}``: Grafana's default format would
  regex-escape the dots and braces of the label values;
- ``vigil``: Vigil's address as the dashboard's readers reach it, for the links to its
  page (default ``http://localhost:8080``, the demo stack's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "vigil.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
THRESHOLD = 0.9999  # Vigil's default detection.threshold
SEL = 'query=~"$query", metric=~"$metric"'  # the per-series filter of the variables
Q = 'query=~"$query"'  # the per-query filter of the self-monitoring panels
VIGIL = "http://localhost:8080"  # the demo stack's Vigil, as a browser reaches it

_ids = iter(range(1, 1000))


def target(expr: str, legend: str = "__auto", ref: str = "A", *, instant: bool = False,
           table: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {
        "datasource": DATASOURCE,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
    }
    if table:
        t["format"] = "table"
    return t


def panel(kind: str, title: str, pos: tuple[int, int, int, int], targets: list[dict[str, Any]], *,
          description: str = "", unit: str = "short", minmax: tuple[float | None, float | None] = (None, None),
          custom: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
          overrides: list[dict[str, Any]] | None = None, thresholds: list[dict[str, Any]] | None = None,
          links: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    x, y, w, h = pos
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": thresholds or [{"color": "green", "value": None}]},
    }
    if links:
        defaults["links"] = links
    if minmax[0] is not None:
        defaults["min"] = minmax[0]
    if minmax[1] is not None:
        defaults["max"] = minmax[1]
    if custom:
        defaults["custom"] = custom
    p: dict[str, Any] = {
        "id": next(_ids),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    p.update(extra)
    return p


def row(title: str, y: int, *, collapsed: bool = False) -> dict[str, Any]:
    """A row; a collapsed one holds its panels (their queries run only once it is opened)."""
    return {"id": next(_ids), "type": "row", "title": title, "collapsed": collapsed,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def link(title: str, url: str) -> dict[str, Any]:
    """A data link (a click on a value or a table row), in a new tab."""
    return {"title": title, "url": url, "targetBlank": True}


def timeseries(title: str, pos: tuple[int, int, int, int], targets: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0, "showPoints": "never",
              "spanNulls": False, **kw.pop("custom", {})}
    options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel("timeseries", title, pos, targets, custom=custom, options=options, **kw)


def stat(title: str, pos: tuple[int, int, int, int], expr: str, description: str,
         thresholds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
               "colorMode": "value", "graphMode": "area", "justifyMode": "auto", "textMode": "auto"}
    return panel("stat", title, pos, [target(expr, "")], description=description, options=options,
                 thresholds=thresholds)


def by_name(name: str, **props: Any) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": k.replace("__", "."), "value": v} for k, v in props.items()]}


def color(name: str) -> dict[str, str]:
    return {"mode": "fixed", "fixedColor": name}


RED = [{"color": "green", "value": None}, {"color": "red", "value": 1}]


def panels() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [row("Anomalies", 0)]
    out += [
        stat("Series anomalous now", (0, 1, 6, 4), f"sum(vigil_anomaly{{{SEL}}}) or vector(0)",
             "Series with an anomaly event open (vigil_anomaly == 1).", RED),
        stat("Events open", (6, 1, 6, 4), f"sum(vigil_events_open{{{Q}}}) or vector(0)",
             "Anomaly events open now, all series of the selected queries.", RED),
        stat("Series watched", (12, 1, 6, 4), f"sum(vigil_series{{{Q}}})",
             "Series Vigil holds for the selected queries."),
        stat("Series with no score yet", (18, 1, 6, 4),
             f"count(vigil_anomaly_score{{{SEL}}} != vigil_anomaly_score{{{SEL}}}) or vector(0)",
             "Series whose anomaly score is NaN: no detector has an opinion on them yet (warming up), "
             "so they cannot be anomalous."),
    ]
    # the score now, and the open event's values at its peak (vigil_event_*: exported whatever the export)
    cols = [("A", f"vigil_anomaly_score{{{SEL}}} and vigil_anomaly{{{SEL}}} == 1", "score"),
            ("B", f"vigil_event_peak_score{{{SEL}}}", "peak score"),
            ("C", f"vigil_event_observed_value{{{SEL}}}", "observed at peak"),
            ("D", f"vigil_event_expected_value{{{SEL}}}", "expected at peak"),
            ("E", f"vigil_event_lower_bound{{{SEL}}}", "lower at peak"),
            ("F", f"vigil_event_upper_bound{{{SEL}}}", "upper at peak")]
    out.append(panel(
        "table", "Series anomalous now", (0, 5, 24, 8),
        [target(expr, "", ref, instant=True, table=True) for ref, expr, _ in cols],
        description="Each series with an anomaly event open: its score now, and the event at its peak: score, "
                    "observed value, expected value and band. A row links to the query's anomalous series in "
                    "Vigil, with their recent points and band.",
        links=[link("Anomalous series of ${__data.fields.query} in Vigil",
                    "${vigil}/#/?query=${__data.fields.query}&status=anomalous")],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True, "__name__": True},
                "renameByName": {f"Value #{ref}": label for ref, _, label in cols},
            }},
        ],
        options={"showHeader": True, "sortBy": [{"displayName": "score", "desc": True}]},
    ))
    out.append(timeseries(
        "Anomaly score", (0, 13, 24, 8), [target(f"vigil_anomaly_score{{{SEL}}}")],
        description=f"Calibrated anomaly score, 0 to 1. The red line is Vigil's default threshold {THRESHOLD} "
                    "(a query may set its own detection.threshold). A series links to its query's series in "
                    "Vigil, each with its observed values, expected value and band.",
        links=[link("Series of ${__field.labels.query} in Vigil (values and band)",
                    "${vigil}/#/?query=${__field.labels.query}")],
        unit="none", minmax=(0, 1),
        custom={"thresholdsStyle": {"mode": "line"}},
        thresholds=[{"color": "green", "value": None}, {"color": "red", "value": THRESHOLD}],
    ))
    band_row = row("Observed, expected and band, one panel per series whose query exports them "
                   "(export: [score, anomaly, observed, expected, bounds])", 21, collapsed=True)
    out.append(band_row)
    band_row["panels"].append(timeseries(
        "$series", (0, 22, 12, 8),
        [target("vigil_observed_value{${series:raw}}", "observed", "A"),
         target("vigil_expected_value{${series:raw}}", "expected", "B"),
         target("vigil_upper_bound{${series:raw}}", "upper", "C"),
         target("vigil_lower_bound{${series:raw}}", "lower", "D")],
        description="The series as Vigil saw it, the value its detector expected and the band "
                    "(shaded between the lower and upper bound). Red marks: anomaly events. Only series whose "
                    "query's export has observed, expected and bounds are here; every series' band is in Vigil "
                    "(the link).",
        links=[link("Series of ${__field.labels.query} in Vigil", "${vigil}/#/?query=${__field.labels.query}")],
        repeat="series", repeatDirection="h", maxPerRow=2,
        overrides=[
            by_name("observed", color=color("blue"), custom__lineWidth=2),
            by_name("expected", color=color("green"), custom__lineStyle={"fill": "dash", "dash": [10, 10]}),
            by_name("upper", color=color("green"), custom__fillBelowTo="lower", custom__fillOpacity=15,
                    custom__lineWidth=0),
            by_name("lower", color=color("green"), custom__lineWidth=0),
        ],
    ))
    out.append(row("Vigil's health", 30))
    rate = "[$__rate_interval]"
    health = [
        ("Series held", f"sum by (query) (vigil_series{{{Q}}})", "{{query}}", "short",
         "Series Vigil holds, per query (vigil_series)."),
        ("Samples taken in per second", f"sum by (query) (rate(vigil_samples_total{{{Q}}}{rate}))", "{{query}}",
         "ops", "Valid samples per second, per query (vigil_samples_total)."),
        ("Tick duration p99",
         f"histogram_quantile(0.99, sum by (le, query) (rate(vigil_tick_duration_seconds_bucket{{{Q}}}{rate})))",
         "{{query}}", "s", "Time to fetch and process one tick of a query, 99th percentile."),
        ("Source up", f"min by (query) (vigil_source_up{{{Q}}})", "{{query}}", "none",
         "1 if the query's last fetch succeeded, 0 if it failed (then see the errors)."),
        ("Source errors per second",
         f"sum by (query, kind) (rate(vigil_source_errors_total{{{Q}}}{rate}))", "{{query}} {{kind}}", "ops",
         "Failed ticks per second, per query and kind (unavailable, rejected, internal)."),
        ("Events open", f"sum by (query) (vigil_events_open{{{Q}}})", "{{query}}", "short",
         "Anomaly events open now, per query."),
        ("Notifications per second", f"sum by (receiver, result) (rate(vigil_notifications_total{rate}))",
         "{{receiver}} {{result}}", "ops",
         "Delivery attempts of Vigil's own notifications, per receiver and result (sent, retry, dead). "
         "Empty when Vigil has no notify receivers (in the demo stack, Prometheus alerts instead)."),
        ("Notifications pending", "sum by (receiver) (vigil_notifications_pending)", "{{receiver}}", "short",
         "Outbox messages waiting for delivery, per receiver."),
    ]
    for i, (title, expr, legend, unit, description) in enumerate(health):
        x, y = 8 * (i % 3), 31 + 7 * (i // 3)
        kw: dict[str, Any] = {}
        if title == "Source up":
            kw = {"minmax": (0, 1), "thresholds": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                  "custom": {"thresholdsStyle": {"mode": "area"}}}
        out.append(timeseries(title, (x, y, 8, 7), [target(expr, legend)], unit=unit, description=description, **kw))
    return out


def variable(name: str, label: str, definition: str, *, regex: str = "", query: str | None = None,
             description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": definition,
        "query": query or definition,
        "regex": regex,
        "refresh": 2,  # on time range change
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }


def textbox(name: str, label: str, default: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "textbox",
        "query": default,
        "current": {"selected": False, "text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
        "hide": 0,
        "skipUrlSync": False,
    }


def dashboard() -> dict[str, Any]:
    global _ids
    _ids = iter(range(1, 1000))
    return {
        "uid": "vigil",
        "title": "Vigil",
        "description": "Vigil's anomalies (the score and verdict of every series, the open events at their peak, "
                       "the band of the series that export it) and its own health.",
        "tags": ["vigil", "anomaly-detection"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [{"title": "Vigil", "type": "link", "url": "${vigil}", "icon": "external link",
                   "targetBlank": True, "tooltip": "Vigil's page: every series with its band, the events"}],
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
             "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
             "type": "dashboard"},
            {"name": "Vigil anomalies", "datasource": DATASOURCE, "enable": True, "hide": False,
             "iconColor": "red", "expr": f"vigil_anomaly{{{SEL}}} == 1", "step": "15s",
             "titleFormat": "Anomaly", "textFormat": "{{query}} {{metric}} {{instance}}",
             "tagKeys": "query,metric,detector", "useValueForTime": False},
            {"name": "VigilAnomaly alerts firing", "datasource": DATASOURCE, "enable": False, "hide": False,
             "iconColor": "orange",
             "expr": f'ALERTS{{alertname="VigilAnomaly", alertstate="firing", {SEL}}}', "step": "15s",
             "titleFormat": "VigilAnomaly", "textFormat": "{{query}} {{metric}} {{instance}}",
             "tagKeys": "query,metric,severity", "useValueForTime": False},
        ]},
        "templating": {"list": [
            variable("query", "Query", "label_values(vigil_anomaly, query)",
                     description="Vigil's configured queries"),
            variable("metric", "Metric", 'label_values(vigil_anomaly{query=~"$query"}, metric)',
                     description="Metric names of the watched series"),
            variable("series", "Series", f"query_result(vigil_observed_value{{{SEL}}})", regex="/\\{(.*)\\}/",
                     description="One panel per series in the band row: the series whose query exports its band"),
            textbox("vigil", "Vigil", VIGIL, "Vigil's address as you reach it, for the links to its page"),
        ]},
        "panels": panels(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON file differs")
    parser.add_argument("--output", type=Path, default=OUT, help=f"default {OUT}")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is not what {Path(__file__).name} writes: run it", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
