"""The configuration file (`vigil.yml`): one frozen model, validated at start.

Every error names the key, the bad value and what would be right, and all errors are
listed at once. Durations are strings with a unit (``15s``, ``1m``, ``1h``, ``1d``).
Files named in the config (secret files, replayed CSV files) are relative to the config
file's folder; `data_dir` is relative to the working directory.
Secrets (tokens, passwords) are given as ``{env: NAME}``, ``{file: PATH}`` or
``{value: ...}`` and are never shown back: `Secret` prints as ``'***'``.

`example_config()` renders the documented example from these models' defaults, so the
example in the docs and the defaults cannot drift apart.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from vigil.calibration import DEFAULT_THRESHOLD
from vigil.decision import DecisionConfig
from vigil.detectors import DETECTORS
from vigil.errors import ConfigError
from vigil.sharding import check_spec

__all__ = [
    "Config", "Detection", "HostSource", "Notify", "PrometheusQuery", "PrometheusSource", "Receiver",
    "ReplaySource", "Secret", "Server", "example_config", "load_config", "parse_duration",
]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(value: Any) -> float:
    """``'15s'`` -> 15.0; a bare number or another unit is an error that says what to write."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError("write a duration such as '15s', '1m', '1h' or '1d'")


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("write a duration above zero, such as '15s'")
    return seconds


Duration = Annotated[float, BeforeValidator(_positive_duration)]
DurationOrZero = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Secret(_Model):
    """A secret from exactly one of: an environment variable, a file, or the value itself."""

    env: str | None = None
    file: Path | None = None
    value: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _one(self) -> Secret:
        if sum(x is not None for x in (self.env, self.file, self.value)) != 1:
            raise ValueError("give exactly one of env, file or value")
        return self

    def get(self) -> str:
        """The secret's text; ConfigError if the variable or file is missing."""
        if self.env is not None:
            if self.env not in os.environ:
                raise ConfigError(f"environment variable {self.env} is not set; set it or use file: or value:")
            return os.environ[self.env]
        if self.file is not None:
            try:
                return self.file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read secret file {self.file}: {exc.strerror}") from exc
        return self.value or ""

    def __repr__(self) -> str:
        where = f"env {self.env}" if self.env else f"file {self.file}" if self.file else "value"
        return f"Secret({where}: '***')"

    __str__ = __repr__


class Detection(_Model):
    """How samples become anomaly events. Set once at the top level; a query may override keys."""

    detector: str = "default"
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    calibrate: bool = True
    calibration_window: int = Field(10000, ge=2)
    calibration_min_samples: int = Field(30, ge=1)
    hold: int = Field(20, ge=0)
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0, lt=1)
    direction: Literal["above", "below", "both"] = "both"
    min_abs_deviation: float = Field(0.0, ge=0)
    min_rel_deviation: float = Field(0.0, ge=0)
    persistence: str = "1/1"
    resolve_after: int = Field(5, ge=1)
    cooldown: int = Field(0, ge=0)
    valid_range: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _check(self) -> Detection:
        problems = []
        names = {"default", "ensemble", *DETECTORS}
        if self.detector not in names:
            problems.append(f"detector is {self.detector!r}; write one of {', '.join(sorted(names))}")
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", self.persistence)
        if not match or not 1 <= int(match.group(1)) <= int(match.group(2)) <= 62:
            problems.append(f"persistence is {self.persistence!r}; write K/N with 1 <= K <= N <= 62, such as '3/5'")
        if self.valid_range is not None and not self.valid_range[0] < self.valid_range[1]:
            problems.append(f"valid_range is {list(self.valid_range)}; write [low, high] with low < high")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def decision(self) -> DecisionConfig:
        k, n = (int(p) for p in self.persistence.split("/"))
        return DecisionConfig(
            threshold=self.threshold, direction=self.direction, min_abs_deviation=self.min_abs_deviation,
            min_rel_deviation=self.min_rel_deviation, k=k, n=n, resolve_after=self.resolve_after,
            cooldown=self.cooldown,
        )


def _merge(base: Detection, override: dict[str, Any] | None) -> Detection:
    if not override:
        return base
    return Detection.model_validate({**base.model_dump(exclude_unset=False), **override})


def _pattern(regex: str, advice: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(regex, value):
            raise ValueError(advice)
        return value

    return BeforeValidator(check)


Name = Annotated[str, _pattern(r"[a-zA-Z_][a-zA-Z0-9_:.-]{0,99}", "write a name of letters, digits and _ : . - such as api_latency")]
Url = Annotated[str, _pattern(r"https?://\S+", "write a URL starting with http:// or https://, such as http://127.0.0.1:9090")]
Listen = Annotated[str, _pattern(r"[^\s:]*:\d{1,5}", "write host:port, such as 127.0.0.1:8080 or 0.0.0.0:8080")]


class PrometheusQuery(_Model):
    name: Name
    query: str = Field(min_length=1)
    step: Duration = 15.0
    counter: bool = False
    max_series: int | None = Field(None, ge=1)
    detection: dict[str, Any] | None = None


class BasicAuth(_Model):
    username: str
    password: Secret


class PrometheusSource(_Model):
    url: Url
    basic_auth: BasicAuth | None = None
    bearer_token: Secret | None = None
    timeout: Duration = 10.0
    lookback: Duration = 86400.0
    delay: DurationOrZero = 1.0
    queries: list[PrometheusQuery] = Field(min_length=1)

    @model_validator(mode="after")
    def _auth(self) -> PrometheusSource:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give basic_auth or bearer_token, not both")
        return self


class HostSource(_Model):
    enabled: bool | None = None  # None: on when no other source is configured
    interval: Duration = 5.0
    detection: dict[str, Any] | None = None


class ReplaySource(_Model):
    """Replays a CSV file (seed format or timestamp,value) as a live series."""

    name: Name
    path: Path
    value_column: str | None = None
    speed: float = Field(1.0, gt=0)
    loop: bool = False
    detection: dict[str, Any] | None = None


class Server(_Model):
    listen: Listen = "127.0.0.1:8080"
    token: Secret | None = None
    max_request_bytes: int = Field(65536, ge=1024)
    rate_limit: float = Field(50.0, gt=0, description="requests per second per client")

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


def _secret_or_url(value: Any) -> Any:
    """A plain URL is a `Secret` given by value; a mapping is a `Secret` (env, file or value)."""
    if isinstance(value, str):
        if not re.fullmatch(r"https?://\S+", value):
            raise ValueError(
                "write a URL starting with http:// or https://, or {env: NAME}, {file: PATH} or {value: URL} "
                "(the text given is not shown)"
            )
        return {"value": value}
    return value


SecretUrl = Annotated[Secret, BeforeValidator(_secret_or_url)]
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class Receiver(_Model):
    """Where anomaly events go: Alertmanager's API, or a webhook (event JSON, Teams, Slack).

    The URL and the headers are secrets (a webhook URL often carries its own token): they
    are never logged, never shown in errors or the API; logs name the receiver instead.
    """

    name: Name
    type: Literal["alertmanager", "webhook"]
    url: SecretUrl
    headers: dict[str, Secret] = Field(default_factory=dict)
    format: Literal["json", "teams", "slack"] = "json"
    timeout: Duration = 5.0
    concurrency: int = Field(2, ge=1, le=32, description="requests in flight at once to this receiver")
    queries: list[str] | None = None
    min_score: float = Field(0.0, ge=0, le=1)
    states: list[Literal["firing", "resolved"]] = Field(default_factory=lambda: ["firing", "resolved"], min_length=1)  # type: ignore[arg-type]
    repost_every: Duration = 60.0
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Receiver:
        problems = []
        only = {"alertmanager": ("repost_every", "labels"), "webhook": ("format",)}
        for kind, keys in only.items():
            for key in keys:
                if self.type != kind and key in self.model_fields_set:
                    problems.append(f"{key} is only for type {kind}; remove it from a receiver of type {self.type}")
        bad = sorted(k for k in self.labels if not _LABEL.fullmatch(k) or k.startswith("__"))
        if bad:
            problems.append(f"labels: {', '.join(bad)} are not label names; write letters, digits and _")
        bad = sorted(k for k in self.headers if not _HEADER.fullmatch(k))
        if bad:
            problems.append(f"headers: {', '.join(map(repr, bad))} are not header names; write such as Authorization")
        if len(set(self.states)) != len(self.states):
            problems.append("states lists a state twice; write [firing], [resolved] or [firing, resolved]")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Notify(_Model):
    """Receivers, and how hard Vigil tries to deliver each message of its outbox."""

    receivers: list[Receiver] = Field(default_factory=list)
    max_attempts: int = Field(10, ge=1)
    give_up_after: Duration = 3600.0
    backoff: Duration = 1.0
    max_backoff: Duration = 300.0
    keep: Duration = 7 * 86400.0
    max_event_age: Duration = 3600.0
    external_url: Url | None = None

    @model_validator(mode="after")
    def _check(self) -> Notify:
        names = [r.name for r in self.receivers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"receiver names must be unique; {', '.join(dup)} appear more than once")
        if self.max_backoff < self.backoff:
            raise ValueError("max_backoff is below backoff; write a cap at least as long as the first delay")
        return self


class Limits(_Model):
    max_series_per_query: int = Field(10000, ge=1)
    evict_after: Duration = 3600.0
    history_points: int = Field(120, ge=10, le=100000)


ShardSpec = Annotated[str, BeforeValidator(check_spec)]


class Config(_Model):
    server: Server = Server()
    data_dir: Path = Path("vigil-data")
    shard: ShardSpec | None = None  # "i/N" or "auto/N"; see vigil.sharding
    snapshot_every: Duration = 60.0
    limits: Limits = Limits()
    detection: Detection = Detection()
    host: HostSource = HostSource()
    prometheus: PrometheusSource | None = None
    replay: list[ReplaySource] = Field(default_factory=list)
    notify: Notify = Notify()

    @model_validator(mode="after")
    def _names(self) -> Config:
        names = [q.name for q in self.prometheus.queries] if self.prometheus else []
        names += [r.name for r in self.replay]
        if self.host_enabled:
            names.append("host")
        problems = []  # all of them at once, one per line
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            problems.append(f"query names must be unique; {', '.join(dup)} appear more than once")
        for where, override in self._overrides():
            try:
                _merge(self.detection, override)
            except ValidationError as exc:
                problems += [f"{where}.detection: {m.removeprefix('config: ')}" for m in _messages(exc)]
        for i, r in enumerate(self.notify.receivers):
            unknown = [n for n in r.queries or [] if n not in names]
            if unknown:
                problems.append(
                    f"notify.receivers[{i}].queries names {', '.join(unknown)}, not a configured query; "
                    f"write some of {', '.join(names) or '(none)'}"
                )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def _overrides(self) -> list[tuple[str, dict[str, Any] | None]]:
        out: list[tuple[str, dict[str, Any] | None]] = [("host", self.host.detection)]
        if self.prometheus:
            out += [(f"prometheus.queries[{i}]", q.detection) for i, q in enumerate(self.prometheus.queries)]
        out += [(f"replay[{i}]", r.detection) for i, r in enumerate(self.replay)]
        return out

    @property
    def host_enabled(self) -> bool:
        if self.host.enabled is not None:
            return self.host.enabled
        return self.prometheus is None and not self.replay

    def detection_for(self, override: dict[str, Any] | None) -> Detection:
        return _merge(self.detection, override)


def _messages(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            out.append(f"{loc or 'config'} is not a known key; check its spelling against docs/configuration.md")
        elif err["type"] == "missing":
            out.append(f"{loc} is missing; it is required")
        elif err["type"] == "model_type" and err.get("ctx", {}).get("class_name") == "Secret":
            # never echo what was written there: it is most likely the secret itself
            out.append(f"{loc}: write {{env: NAME}}, {{file: PATH}} or {{value: ...}} (the text given is not shown)")
        else:
            shown = err.get("input")
            secret = err["loc"][-1:] == ("value",) or (err["loc"][:1] == ("notify",) and "url" in err["loc"])
            if isinstance(shown, dict) or loc == "" or secret:  # Secret.value, receiver URLs: not shown
                out.append(f"{loc or 'config'}: {msg}")
            else:
                out.append(f"{loc} is {shown!r}; {msg}")
    return out


def _resolve_paths(raw: Any, base: Path) -> None:
    """Secret files and replayed files are relative to the config file's folder."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key in ("file", "path") and isinstance(value, str) and not Path(value).is_absolute():
                raw[key] = str(base / value)
            else:
                _resolve_paths(value, base)
    elif isinstance(raw, list):
        for item in raw:
            _resolve_paths(item, base)


def load_config(path: Path | None) -> Config:
    """Read and validate `path` (None: the defaults, watching this host)."""
    if path is None:
        return Config()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (server:, prometheus:, ...)")
    _resolve_paths(raw, Path(path).parent)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        lines = "\n".join(f"  {m}" for m in _messages(exc))
        raise ConfigError(f"{path}: {len(exc.errors())} error(s):\n{lines}") from None


def _duration_text(seconds: float) -> str:
    """15.0 -> '15s', 3600.0 -> '1h': the largest unit that divides it."""
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:.0f}{unit}"
    return f"{seconds * 1000:.0f}ms"


def example_config() -> str:
    """The documented example `vigil.yml`, with the defaults taken from the models."""
    d, lim, srv = Detection(), Limits(), Server()
    n = Notify()
    r = Receiver(name="x", type="webhook", url="http://x")
    return f"""\
# vigil.yml: every key is optional; shown values are the defaults unless marked "example".
server:
  listen: "{srv.listen}"          # host:port; 0.0.0.0 to listen on every interface
  # token: {{env: VIGIL_TOKEN}}     # bearer token required on the API (env, file or value)
  max_request_bytes: {srv.max_request_bytes}
  rate_limit: {srv.rate_limit}               # requests per second per client
data_dir: vigil-data              # events and detector state (SQLite)
# shard: auto/3                   # example: this replica's share of the series, i/N or auto/N
snapshot_every: 1m                # state snapshot interval (also saved at shutdown)
limits:
  max_series_per_query: {lim.max_series_per_query}
  evict_after: 1h                 # forget series that stopped reporting
  history_points: {lim.history_points}            # recent points kept per series for the API
detection:                        # defaults for every query; a query may override keys
  detector: {d.detector}               # default (= ensemble: level, seasonal, shift, volatility), or one of them, spike, ewma, zscore, iforest
  params: {{}}                      # example: {{level: {{window: 500}}, seasonal: {{bins: 288}}}}
  calibrate: {str(d.calibrate).lower()}
  threshold: {d.threshold}              # 0.99996: 10 % past the series' largest recent deviation
  hold: {d.hold}                        # samples after a detection whose score is held at the threshold
  direction: {d.direction}                 # above, below or both
  min_abs_deviation: {d.min_abs_deviation}
  min_rel_deviation: {d.min_rel_deviation}
  persistence: "{d.persistence}"            # K/N: K of the last N samples hot
  resolve_after: {d.resolve_after}
  cooldown: {d.cooldown}
  # valid_range: [0, 100]         # example: impossible readings are ignored
host:                             # this machine, through psutil
  # enabled: true                 # default: on when no other source is configured
  interval: 5s
# prometheus:                     # example
#   url: http://127.0.0.1:9090
#   bearer_token: {{file: /run/secrets/prom-token}}
#   timeout: 10s
#   lookback: 1d                  # history read when a series is first seen
#   queries:
#     - name: api_latency
#       query: histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))
#       step: 15s
#       detection: {{direction: above, min_rel_deviation: 0.2}}
#     - name: requests
#       query: sum by (route) (http_requests_total)
#       counter: true             # raw counter: turned into a per-second rate, resets handled
# replay:                         # example: a CSV file replayed as a live series
#   - name: seed_cpu
#     path: synthetic_data.csv
#     speed: 60                   # 60x real time
# notify:                         # example: where anomaly events go (docs/alerting.md)
#   max_attempts: {n.max_attempts:<16}# tries per message, then it is dead
#   give_up_after: {_duration_text(n.give_up_after):<15}# or when it is this old
#   backoff: {_duration_text(n.backoff):<21}# first retry delay; doubles, with full jitter
#   max_backoff: {_duration_text(n.max_backoff)}
#   keep: {_duration_text(n.keep):<24}# sent and dead messages are kept this long
#   max_event_age: {_duration_text(n.max_event_age):<15}# an event over longer ago when found is not sent
#   external_url: https://vigil.example.org   # links in messages (default http://<server.listen>)
#   receivers:
#     - name: alertmanager
#       type: alertmanager
#       url: http://127.0.0.1:9093  # base URL; Vigil posts to /api/v2/alerts
#       repost_every: {_duration_text(r.repost_every):<12}# re-post open alerts so they never time out
#       labels: {{severity: warning}}  # added to every alert
#     - name: teams
#       type: webhook
#       format: teams               # json (the event JSON), teams (Adaptive Card), slack
#       url: {{file: /run/secrets/teams-workflow-url}}   # a secret: env, file or value
#       states: [firing, resolved]
#       min_score: {r.min_score}
#     - name: agent
#       type: webhook
#       url: http://127.0.0.1:8765/events
#       headers: {{Authorization: {{env: AGENT_TOKEN}}}}   # each value a secret
#       timeout: {_duration_text(r.timeout)}
#       concurrency: {r.concurrency}              # requests in flight to this receiver
#       queries: [api_latency]      # only these queries' events (default: all)
"""
