"""The value types of the config: durations, names, URLs, listen addresses and secrets.

Durations are strings with a unit (``15s``, ``1m``, ``1h``, ``1d``). Secrets (tokens,
passwords, webhook URLs) are given as ``{env: NAME}``, ``{file: PATH}`` or ``{value: ...}``
and are never shown back: `Secret` prints as ``'***'``. A URL needs http(s), a host and
no port or one from 1 to 65535; a listen address a port from 1 to 65535 and a host that
resolves, checked when the file is read rather than when the server starts.
"""

from __future__ import annotations

import math
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from vigil.errors import ConfigError

__all__ = [
    "Duration", "DurationOrZero", "LinkUrl", "Listen", "Model", "Name", "Rate", "Secret", "SecretUrl", "Url", "check_listen",
    "duration_text", "parse_duration", "parse_rate", "rate_text",
]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(value: Any) -> float:
    """``'15s'`` -> 15.0; a bare number or another unit is an error that says what to write."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else math.inf
        if math.isfinite(seconds):  # 400 nines read as a float are infinite
            return seconds
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
    if match and match.group(2) in _PER and 0 < float(match.group(1)) < math.inf:
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


def _url_problem(value: str, secret: bool = False) -> str | None:
    """What is wrong with an http(s) URL (its scheme, host or port) and what to write, or None.

    With `secret`, the message quotes nothing of the URL.
    """
    if not re.fullmatch(r"https?://\S+", value):
        return "write a URL starting with http:// or https://, such as http://127.0.0.1:9090"
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # an unclosed [IPv6] bracket
        return "the host cannot be read; write http(s)://host[:port][/prefix], such as http://127.0.0.1:9090"
    if not host:
        return "the URL has no host; write http(s)://host[:port][/prefix], such as http://127.0.0.1:9090"
    port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        shown = "" if secret else f" {port!r}"
        return f"the port{shown} is not a number from 1 to 65535; write a URL such as http://127.0.0.1:9090"
    return None


def _url(value: Any) -> Any:
    problem = _url_problem(value) if isinstance(value, str) else "write a URL such as http://127.0.0.1:9090"
    if problem is not None:
        raise ValueError(problem)
    return value


def _link_url(value: Any) -> Any:
    _url(value)
    if "@" in urlsplit(value).netloc:
        raise ValueError("the URL holds user:password@, which every link would show; write it without")
    return value


Url = Annotated[str, BeforeValidator(_url)]
LinkUrl = Annotated[str, BeforeValidator(_link_url)]  # shown to the readers of links: no credentials


def check_listen(value: Any) -> str:
    """``host:port`` to serve on: a port from 1 to 65535 and a host that resolves (none: 127.0.0.1).

    The ValueError says what is wrong and what to write, without the value.
    """
    match = re.fullmatch(r"([^\s:]*):([0-9]{1,5})", value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("write host:port, such as 127.0.0.1:8080 or 0.0.0.0:8080")
    host, port = match.group(1), int(match.group(2))
    if not 1 <= port <= 65535:
        raise ValueError(f"the port {port} is not one from 1 to 65535; write host:port, such as 127.0.0.1:8080")
    if host and not _resolves(host):
        raise ValueError(
            f"the host {host} does not resolve to an address; write an address of this machine, "
            "such as 127.0.0.1 or 0.0.0.0 (every interface)"
        )
    return match.group(0)


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # UnicodeError: a name IDNA cannot encode (a label over 63 letters)
        return False
    return True


Listen = Annotated[str, BeforeValidator(check_listen)]


def _secret_or_url(value: Any) -> Any:
    """A plain URL is a `Secret` given by value; a mapping is a `Secret` (env, file or value)."""
    if isinstance(value, str):
        problem = _url_problem(value, secret=True)
        if problem is not None:
            raise ValueError(f"{problem}; or {{env: NAME}}, {{file: PATH}} or {{value: URL}} (the text given is not shown)")
        return {"value": value}
    return value


SecretUrl = Annotated[Secret, BeforeValidator(_secret_or_url)]


def duration_text(seconds: float) -> str:
    """15.0 -> '15s', 3600.0 -> '1h': the largest unit that divides it."""
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:.0f}{unit}"
    return f"{seconds * 1000:.0f}ms"
