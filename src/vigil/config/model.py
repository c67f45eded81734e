"""The configuration file (`vigil.yml`): one frozen model, validated at start.

Every error names the key, the bad value and what would be right, and all errors are
listed at once (`vigil.config.load`). Files named in the config (secret files, replayed
CSV files) are relative to the config file's folder; `data_dir` is relative to the working
directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from vigil.config.detection import Detection, merge
from vigil.config.export import DEFAULT_EXPORT, Export
from vigil.config.maintenance import Window
from vigil.config.notify import Notify
from vigil.config.sources import HostSource, PrometheusSource, ReplaySource
from vigil.config.values import Duration, Listen, Model, Name, Secret, _pattern
from vigil.errors import redact_url
from vigil.sharding import check_spec

__all__ = ["Config", "Limits", "Mcp", "NamedToken", "Server", "messages"]


# A series silent for this many steps of its query is forgotten, unless limits.evict_after says otherwise.
EVICT_STEPS = 10


class NamedToken(Model):
    """A bearer token of the API with the name that what its holder writes is signed with (feedback)."""

    name: Name
    token: Secret


class Server(Model):
    listen: Listen = "127.0.0.1:8080"
    token: Secret | None = None
    tokens: list[NamedToken] = Field(default_factory=list, description="more bearer tokens, each with its holder's name")
    max_request_bytes: int = Field(65536, ge=1024)
    rate_limit: float = Field(50.0, gt=0, description="requests per second per client")
    allowed_hosts: list[Annotated[str, _pattern(
        r"\*|[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]",
        "write a host name without a port, such as vigil.example.org, 10.0.0.5 or [::1], or '*' for any",
    )]] = Field(default_factory=list, description="Host header names answered besides loopback and listen's host")

    @model_validator(mode="after")
    def _unique_names(self) -> Server:
        names = [t.name for t in self.tokens]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"server.tokens names must be unique; {', '.join(dup)} appear more than once")
        return self

    def bearer_tokens(self) -> dict[str, str | None]:
        """Every token the API takes -> its holder's name (None: `token`, which names no one)."""
        out: dict[str, str | None] = {} if self.token is None else {self.token.get(): None}
        for t in self.tokens:
            out[t.token.get()] = t.name
        return out

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class Mcp(Model):
    """The MCP server for AI agents: /mcp under `vigil run`, and `vigil mcp` (docs/mcp.md)."""

    enabled: bool = True
    write: bool = Field(False, description="also offer the tools that change something: give_feedback, mute")


class Limits(Model):
    max_series_per_query: int = Field(10000, ge=1)
    evict_after: Duration | None = None  # None: EVICT_STEPS steps of the series' query
    history_points: int = Field(120, ge=10, le=100000)

    def evict_after_for(self, step: float) -> float:
        """Seconds of silence after which a series of a query with this step is forgotten."""
        return self.evict_after if self.evict_after is not None else EVICT_STEPS * step


ShardSpec = Annotated[str, BeforeValidator(check_spec)]


class Config(Model):
    server: Server = Server()
    data_dir: Path = Path("vigil-data")
    shard: ShardSpec | None = None  # "i/N" or "auto/N"; see vigil.sharding
    snapshot_every: Duration = 60.0
    limits: Limits = Limits()
    detection: Detection = Detection()
    export: Export = Field(DEFAULT_EXPORT, description="per-series families on /metrics; a query may set its own")
    host: HostSource = HostSource()
    prometheus: PrometheusSource | None = None
    replay: list[ReplaySource] = Field(default_factory=list)
    notify: Notify = Notify()
    mcp: Mcp = Mcp()
    maintenance: list[Window] = Field(default_factory=list, max_length=1000)

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
        windows = [w.name for w in self.maintenance]
        twice = sorted({n for n in windows if windows.count(n) > 1})
        if twice:
            problems.append(f"maintenance window names must be unique; {', '.join(twice)} appear more than once")
        for where, override in self._overrides():
            try:
                merge(self.detection, override)
            except ValidationError as exc:
                problems += [f"{where}.detection: {m.removeprefix('config: ')}" for m in messages(exc)]
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
        return merge(self.detection, override)

    def exports(self) -> dict[str, tuple[str, ...]]:
        """Query name -> the names of the per-series families it exports (`vigil.config.export`):
        its own ``export``, else the top-level one (a query's list replaces it, not adds to it)."""
        out: dict[str, tuple[str, ...]] = {}
        if self.host_enabled:
            out["host"] = self.host.export if self.host.export is not None else self.export
        for q in self.prometheus.queries if self.prometheus else []:
            out[q.name] = q.export if q.export is not None else self.export
        for r in self.replay:
            out[r.name] = r.export if r.export is not None else self.export
        return out


def messages(exc: ValidationError) -> list[str]:
    """One line per error: the key, the value (never a secret or a URL's password) and what to write."""
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
            if isinstance(shown, dict) or loc == "" or secret or _bare_userinfo(shown):
                out.append(f"{loc or 'config'}: {msg}")  # Secret.value, receiver URLs: not shown
            else:
                out.append(f"{loc} is {shown!r}; {msg}")
    return [redact_url(line) for line in out]


def _bare_userinfo(value: object) -> bool:
    """Text such as ``user:password@host`` with no scheme, whose password `redact_url` cannot find."""
    return isinstance(value, str) and "://" not in value and re.search(r":[^\s/]*@", value) is not None
