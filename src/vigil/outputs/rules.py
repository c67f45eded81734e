"""Prometheus alert rules over Vigil's exported metrics (``vigil rules``).

`build_rules` turns a `Config` into a Prometheus rule file (as a dict); `render_rules`
gives its YAML text and `write_rules` writes it atomically. Each configured query (the
host query ``host`` when enabled, each ``prometheus.queries[].name``, each
``replay[].name``) gets one rule group ``vigil.<query>`` with these alerts:

- ``VigilAnomaly``: ``vigil_anomaly{query="q"} == 1`` for ``for_``. Vigil's own verdict
  (calibrated score, persistence, hysteresis): the alert to route to people.
- ``VigilAboveUpperBound`` / ``VigilBelowLowerBound``: the observed value outside the band
  (``vigil_observed_value > vigil_upper_bound`` on identical label sets) for ``for_``,
  except while the detector warms up. Only the sides the query's ``direction`` watches,
  and only for a query whose ``export`` has the families they read (`BAND_EXPORT`:
  ``observed``, ``bounds`` and ``warming_up``; the default, ``[score, anomaly]``, has
  not): a rule over a family Vigil does not export would never fire. Series whose detector
  has no band (NaN bounds) never fire. This is the seed's
  ``cpu_utilization > ewma(...) + k*stddev`` rule written in real PromQL.
- ``VigilSourceDown``: ``vigil_source_up{query="q"} == 0`` for 2m.
- ``VigilAbsent``: ``absent(vigil_source_up{query="q"})`` for 5m: Vigil is down, is not
  scraped, or no longer runs the query, so none of the alerts above could fire.

Every rule reads only what the query exports: ``VigilAnomaly`` reads ``vigil_anomaly`` (it
is written for a query whose ``export`` has ``anomaly``, as the default has) and, in its
description, the ``vigil_event_*`` families, which are always exported; the last two, the
self-monitoring.

One alert name per kind, not per query, so Alertmanager routes, inhibits and silences by
``alertname`` and the ``query`` label. Every alert carries the labels ``severity`` and
``query``; per-series alerts also carry the series' own labels plus ``metric`` and
``detector``, as exported. Annotations: ``summary`` (names the series: its metric, else
the query, with its labels and where it lives; Vigil's own address, which Prometheus gives
a series that has no instance, is not where it lives), ``description`` and ``vigil_url``
(the series in Vigil's API). ``VigilAnomaly``'s description reads the open event's values
at its peak (``vigil_event_*``), not the values at evaluation time, which may be after the
incident; the band alerts' reads the values now, which are what they fire on. The templates use only what Prometheus 2.42
has; ``promtool check rules`` parses them and ``deploy/prometheus/vigil-rules.test.yml``
checks their text.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from vigil.config import Config, Detection, parse_duration
from vigil.errors import ConfigError

__all__ = [
    "BAND_EXPORT", "banded", "build_rules", "prometheus_duration", "promql_string", "query_names", "render_rules", "write_rules",
]

SOURCE_DOWN_FOR = "2m"
ABSENT_FOR = "5m"
BAND_EXPORT = ("observed", "bounds", "warming_up")  # what a query exports for its band alerts to be written

_HEADER = """\
# Prometheus alert rules over Vigil's metrics, written by `vigil rules`.
# Regenerate instead of editing: vigil rules --config vigil.yml --output vigil-rules.yml
# Check: promtool check rules vigil-rules.yml. The alerts are explained in docs/alerting.md.
# Band alerts only for queries whose export has observed, bounds and warming_up: {band}.
"""

# Labels Prometheus adds when it scrapes Vigil (the target's, or the series' own moved
# aside as exported_*), and Vigil's own (vigil_shard when sharded): not part of the
# series' name in a summary.
_NOT_IN_NAME = "^(__name__|metric|query|detector|vigil_shard|job|instance|exported_job|exported_instance)$"
# Labels left out of the link to Vigil's API: the API knows only the series' own labels.
_NOT_IN_LINK = "^(__name__|metric|query|detector|vigil_shard|job|instance|exported_.*)$"


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal.

    >>> print(promql_string('api.latency-p99'))
    "api.latency-p99"
    >>> print(promql_string('say "hi"\\\\now'))
    "say \\"hi\\"\\\\now"
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def prometheus_duration(value: str | float) -> str:
    """A duration (``'90s'``, ``'1.5m'`` or seconds) in Prometheus' own form.

    Prometheus reads ``1m30s`` but not ``1.5m``; this writes what Prometheus itself
    prints (`model.Duration.String`).

    >>> prometheus_duration("1.5m"), prometheus_duration(0), prometheus_duration("1d")
    ('1m30s', '0s', '1d')
    >>> prometheus_duration("0.25s"), prometheus_duration(3 * 604800)
    ('250ms', '3w')
    """
    seconds = parse_duration(value) if isinstance(value, str) else float(value)
    ms = round(seconds * 1000)
    if seconds < 0 or abs(ms - seconds * 1000) > 1e-6:
        raise ValueError("write a duration of whole milliseconds, 0s or more, such as '1m' or '0s'")
    if ms == 0:
        return "0s"
    out = ""
    for unit, size, exact in (
        ("y", 365 * 86_400_000, True), ("w", 7 * 86_400_000, True), ("d", 86_400_000, False),
        ("h", 3_600_000, False), ("m", 60_000, False), ("s", 1000, False), ("ms", 1, False),
    ):
        if exact and ms % size:
            continue
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


def query_names(config: Config) -> list[tuple[str, Detection]]:
    """(name, detection) of every configured query, in the order Vigil runs them."""
    out: list[tuple[str, Detection]] = []
    if config.host_enabled:
        out.append(("host", config.detection_for(config.host.detection)))
    if config.prometheus is not None:
        out += [(q.name, config.detection_for(q.detection)) for q in config.prometheus.queries]
    out += [(r.name, config.detection_for(r.detection)) for r in config.replay]
    return out


def banded(export: tuple[str, ...]) -> bool:
    """Whether a query with this ``export`` gets band alerts: it exports every family they read.

    >>> banded(("score", "anomaly")), banded(("observed", "bounds")), banded(("observed", "bounds", "warming_up"))
    (False, False, True)
    """
    return set(BAND_EXPORT) <= set(export)


def _page_url(config: Config, page_url: str | None) -> str:
    if page_url is None:
        host = config.server.host
        if host in ("", "0.0.0.0", "::", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{config.server.port}"
    if not re.fullmatch(r"https?://[^\s{}\"'<>`\\]+", page_url):
        raise ConfigError(
            f"--page-url is {page_url!r}; write Vigil's address as people reach it, such as "
            "https://vigil.example.com (http:// or https://, no spaces, quotes or braces)"
        )
    return page_url.rstrip("/")


def _lines(*parts: str) -> str:
    return "\n".join(parts)


def _num(expr: str, digits: int = 4) -> str:
    """Template text: the first value of ``expr`` (a template string) to `digits` significant digits."""
    return f'{expr} | first | value | printf "%.{digits}g"'


# The series as a person names it: metric{other labels} on instance.
_SUMMARY_SERIES = _lines(
    '{{ with $labels.metric }}{{ . }}{{ else }}{{ $labels.query }}{{ end }}',
    '{{- $rest := "" }}',
    '{{- range $k, $v := $labels }}',
    f'{{{{- if not (match "{_NOT_IN_NAME}" $k) }}}}',
    '{{- if $rest }}{{ $rest = printf "%s,%s=%q" $rest $k $v }}'
    '{{ else }}{{ $rest = printf "%s=%q" $k $v }}{{ end }}',
    '{{- end }}',
    '{{- end }}',
    '{{- with $rest }}{{ printf "{%s}" . }}{{ end }}',
    '{{- $vigil := "" }}{{ with printf "vigil_source_up{query=%q}" $labels.query | query }}'
    '{{ $vigil = . | first | label "instance" }}{{ end }}',
    '{{- with or $labels.exported_instance $labels.instance }}{{ if ne . $vigil }} on {{ . }}{{ end }}{{ end }}',
)

# A selector for the same series in the other vigil_* families ($sel: a="b",c="d",).
_SELECTOR = (
    '{{- $sel := "" }}{{ range $k, $v := $labels }}{{ if ne $k "__name__" }}'
    '{{ $sel = printf "%s%s=%q," $sel $k $v }}{{ end }}{{ end }}'
)


def _family(name: str) -> str:
    """Template pipeline: the series' current value in family ``name``, NaN left out."""
    return f'printf "{name}{{%s}} >= -Inf" $sel | query'


_WHERE = '{{- printf "; query %s, detector %s." $labels.query $labels.detector }}'

# The open event's values at its peak (`vigil.outputs.exporter`), not the values now.
_ANOMALY_DESCRIPTION = _lines(
    _SELECTOR,
    f'{{{{- with {_family("vigil_event_observed_value")} }}}}Observed {{{{ {_num(".")} }}}}'
    '{{ else }}Observed value not known{{ end }}',
    f'{{{{- with {_family("vigil_event_expected_value")} }}}}, expected {{{{ {_num(".")} }}}}{{{{ end }}}}',
    f'{{{{- $lower := {_family("vigil_event_lower_bound")} }}}}',
    f'{{{{- $upper := {_family("vigil_event_upper_bound")} }}}}',
    f'{{{{- if and $lower $upper }}}} (band {{{{ {_num("$lower")} }}}} to {{{{ {_num("$upper")} }}}}){{{{ end }}}}',
    f'{{{{- with {_family("vigil_event_peak_score")} }}}}, anomaly score {{{{ {_num(".", 6)} }}}}{{{{ end }}}}',
    _WHERE,
)


def _band_description(side: str, bound: str) -> str:
    return _lines(
        _SELECTOR,
        f'{{{{- printf "Observed %.4g is {side} the {bound} bound" $value }}}}',
        f'{{{{- with {_family(f"vigil_{bound}_bound")} }}}} {{{{ {_num(".")} }}}}{{{{ end }}}}',
        f'{{{{- with {_family("vigil_expected_value")} }}}} (expected {{{{ {_num(".")} }}}}){{{{ end }}}}',
        _WHERE,
    )


def _series_link(page: str) -> str:
    return _lines(
        f"{page}/api/v1/series?query={{{{ $labels.query | urlquery }}}}",
        '{{- with $labels.metric }}&label={{ printf "__name__=%s" . | urlquery }}{{ end }}',
        f'{{{{- range $k, $v := $labels }}}}{{{{ if not (match "{_NOT_IN_LINK}" $k) }}}}'
        '&label={{ printf "%s=%s" $k $v | urlquery }}{{ end }}{{ end }}',
    )


def build_rules(
    config: Config, for_: str | float = "1m", severity: str = "warning", page_url: str | None = None
) -> dict[str, Any]:
    """The rule file for ``config``'s queries, as the dict Prometheus reads from YAML.

    Parameters
    ----------
    config
        The validated config; one rule group per query it runs.
    for_
        How long a per-series condition must hold before its alert fires: a duration
        (``'1m'``, ``'0s'``) or seconds. ``VigilSourceDown`` waits 2m, ``VigilAbsent`` 5m.
    severity
        The ``severity`` label of every alert.
    page_url
        Vigil's address as the alert's readers reach it, for ``vigil_url``; by default
        ``http://`` and ``server.listen`` (a wildcard address becomes 127.0.0.1).

    Examples
    --------
    >>> cfg = Config.model_validate({"host": {"enabled": True}})
    >>> rules = build_rules(cfg, for_="30s", severity="page")
    >>> [(g["name"], [r["alert"] for r in g["rules"]]) for g in rules["groups"]]
    [('vigil.host', ['VigilAnomaly', 'VigilSourceDown', 'VigilAbsent'])]
    >>> first = rules["groups"][0]["rules"][0]
    >>> first["expr"], first["for"], first["labels"]
    ('vigil_anomaly{query="host"} == 1', '30s', {'severity': 'page', 'query': 'host'})
    >>> banded = Config.model_validate({"host": {"enabled": True, "export": ["anomaly", *BAND_EXPORT]}})
    >>> [r["alert"] for r in build_rules(banded)["groups"][0]["rules"]]
    ['VigilAnomaly', 'VigilAboveUpperBound', 'VigilBelowLowerBound', 'VigilSourceDown', 'VigilAbsent']
    """
    try:
        wait = prometheus_duration(for_)
    except ValueError as exc:
        raise ConfigError(f"--for is {for_!r}; {exc}") from None
    if not severity.strip() or "\n" in severity:
        raise ConfigError(f"--severity is {severity!r}; write a severity such as warning or critical")
    page = _page_url(config, page_url)
    queries = query_names(config)
    if not queries:
        raise ConfigError("no query is configured: enable host, or add prometheus queries or replay files")
    link = _series_link(page)
    summary_tail = " is anomalous"
    exports = config.exports()
    groups = []
    for name, detection in queries:
        q = f"{{query={promql_string(name)}}}"
        labels = {"severity": severity, "query": name}
        rules: list[dict[str, Any]] = [] if "anomaly" not in exports[name] else [{
            "alert": "VigilAnomaly",
            "expr": f"vigil_anomaly{q} == 1",
            "for": wait,
            "labels": labels,
            "annotations": {
                "summary": _SUMMARY_SERIES + summary_tail,
                "description": _ANOMALY_DESCRIPTION,
                "vigil_url": link,
            },
        }]
        sides = [("above", "upper", ">", "VigilAboveUpperBound"), ("below", "lower", "<", "VigilBelowLowerBound")]
        for side, bound, op, alert in sides:
            if detection.direction not in (side, "both") or not banded(exports[name]):
                continue
            rules.append({
                "alert": alert,
                "expr": f"(vigil_observed_value{q} {op} vigil_{bound}_bound{q}) unless vigil_warming_up{q} == 1",
                "for": wait,
                "labels": labels,
                "annotations": {
                    "summary": _SUMMARY_SERIES + f" is {side} its expected band",
                    "description": _band_description(side, bound),
                    "vigil_url": link,
                },
            })
        rules.append({
            "alert": "VigilSourceDown",
            "expr": f"vigil_source_up{q} == 0",
            "for": SOURCE_DOWN_FOR,
            "labels": labels,
            "annotations": {
                "summary": "Vigil cannot fetch query {{ $labels.query }}"
                           "{{ with $labels.instance }} (Vigil at {{ . }}){{ end }}",
                "description": (
                    f"Every fetch of query {{{{ $labels.query }}}} has failed for {SOURCE_DOWN_FOR} or more, "
                    "so its series are not checked for anomalies. "
                    'See vigil_source_errors_total{query="{{ $labels.query }}"} by kind, '
                    "Vigil's log and its /readyz."
                ),
                "vigil_url": f"{page}/readyz",
            },
        })
        rules.append({
            "alert": "VigilAbsent",
            "expr": f"absent(vigil_source_up{q})",
            "for": ABSENT_FOR,
            "labels": labels,
            "annotations": {
                "summary": "No Vigil metrics for query {{ $labels.query }}",
                "description": (
                    f'vigil_source_up{{query="{{{{ $labels.query }}}}"}} has been absent for {ABSENT_FOR}: '
                    "Vigil is down, this Prometheus does not scrape it, or it no longer runs this query. "
                    "Until it is back, no anomaly alert can fire for this query."
                ),
                "vigil_url": f"{page}/readyz",
            },
        })
        groups.append({"name": f"vigil.{name}", "rules": rules})
    return {"groups": groups}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the templates) as literal blocks, keys in the order built, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_rules(
    config: Config, for_: str | float = "1m", severity: str = "warning", page_url: str | None = None
) -> str:
    """`build_rules` as the YAML text of a Prometheus rule file, with a header comment."""
    rules = build_rules(config, for_=for_, severity=severity, page_url=page_url)
    body = yaml.dump(rules, Dumper=_Dumper, sort_keys=False, width=1 << 16, allow_unicode=True)
    band = [name for name, export in config.exports().items() if banded(export)]
    return _HEADER.format(band=", ".join(band) or "none here") + body


def write_rules(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reloading Prometheus never reads half a file)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--output {path} is a folder; name a file such as {path / 'vigil-rules.yml'}")
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ConfigError(f"cannot write --output {path}: {exc.strerror} ({folder})") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write --output {path}: {exc.strerror}") from exc
