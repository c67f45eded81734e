"""The sources of a config: Prometheus queries, this host, replayed CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from vigil.config.export import Export
from vigil.config.values import Duration, DurationOrZero, Model, Name, Secret, Url

__all__ = ["BasicAuth", "HostSource", "PrometheusQuery", "PrometheusSource", "ReplaySource"]


class PrometheusQuery(Model):
    name: Name
    query: str = Field(min_length=1)
    step: Duration = 15.0
    counter: bool = False
    max_series: int | None = Field(None, ge=1)
    detection: dict[str, Any] | None = None
    export: Export | None = None  # None: the top-level export


class BasicAuth(Model):
    username: str
    password: Secret


class PrometheusSource(Model):
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


class HostSource(Model):
    enabled: bool | None = None  # None: on when no other source is configured
    interval: Duration = 5.0
    detection: dict[str, Any] | None = None
    export: Export | None = None  # None: the top-level export


class ReplaySource(Model):
    """Replays a CSV file (seed format or timestamp,value) as a live series."""

    name: Name
    path: Path
    value_column: str | None = None
    speed: float = Field(1.0, gt=0)
    loop: bool = False
    detection: dict[str, Any] | None = None
    export: Export | None = None  # None: the top-level export
