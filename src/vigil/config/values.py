"""The value types of the config: durations, names, URLs, listen addresses and secrets.

Durations are strings with a unit (``15s``, ``1m``, ``1h``, ``1d``). Secrets (tokens,
passwords, webhook URLs) are given as ``{env: NAME}``, ``{file: PATH}`` or ``{value: ...}``
and are never shown back: `Secret` prints as ``'***'``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from vigil.errors import ConfigError

__all__ = [
    "Duration", "DurationOrZero", "Listen", "Model", "Name", "Rate", "Secret", "SecretUrl", "Url", "duration_text",
    "parse_duration", "parse_rate", "rate_text",
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


_PER = {"minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 604800.0, "month": 30 * 86400.0,
        "year": 365 * 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+?)s?\s*$")


def parse_rate(value: Any) -> float:
    """``'1/month'`` -> seconds between two events (2,592,000.0); ``'2/day'`` -> 43,200.0.

    >>> parse_rate("1/month"), parse_rate("4 / weeks"), rate_text(parse_rate("2/day"))
    (2592000.0, 151200.0, '2/day')
    """
    match = _RATE.match(value) if isinstance(value, str) else None
    if match and match.group(2) in _PER and float(match.group(1)) > 0:
        return _PER[match.group(2)] / float(match.group(1))
    raise ValueError("write a rate such as '1/month', '2/week' or '1/day' (minute, hour, day, week, month, year)")


def rate_text(seconds: float) -> str:
    """Seconds between two events as the rate a config file writes: 2592000.0 -> '1/month'."""
    for unit in ("minute", "hour", "day", "week", "month", "year"):
        n = _PER[unit] / seconds
        if n >= 1 and abs(n - round(n)) < 1e-9:
            return f"{round(n)}/{unit}"
    return f"{86400.0 / seconds!r}/day"


Duration = Annotated[float, BeforeValidator(_positive_duration)]
Rate = Annotated[float, BeforeValidator(parse_rate), PlainSerializer(lambda seconds: rate_text(seconds))]
DurationOrZero = Annotated[float, BeforeValidator(parse_duration)]


class Model(BaseModel):
    """Every config model: frozen, and no key it does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Secret(Model):
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


def _pattern(regex: str, advice: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(regex, value):
            raise ValueError(advice)
        return value

    return BeforeValidator(check)


Name = Annotated[str, _pattern(r"[a-zA-Z_][a-zA-Z0-9_:.-]{0,99}", "write a name of letters, digits and _ : . - such as api_latency")]
Url = Annotated[str, _pattern(r"https?://\S+", "write a URL starting with http:// or https://, such as http://127.0.0.1:9090")]
Listen = Annotated[str, _pattern(r"[^\s:]*:\d{1,5}", "write host:port, such as 127.0.0.1:8080 or 0.0.0.0:8080")]


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


def duration_text(seconds: float) -> str:
    """15.0 -> '15s', 3600.0 -> '1h': the largest unit that divides it."""
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:.0f}{unit}"
    return f"{seconds * 1000:.0f}ms"
