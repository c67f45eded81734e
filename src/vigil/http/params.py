"""Query parameters of the API: times and label matchers, each refused with a 400 that says what to write."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable

from fastapi import HTTPException

__all__ = ["Matcher", "parse_matchers", "parse_time"]

Matcher = Callable[[dict[str, str]], bool]

_MATCHER = re.compile(r"^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)(.*)$")


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds or RFC 3339 -> Unix seconds; HTTP 400 that says what to write."""
    if value is None:
        return None
    advice = f"{name} is {value!r}; write Unix seconds or RFC 3339 such as 2026-01-31T12:00:00Z"
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(400, advice) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    if not math.isfinite(seconds):  # nan, inf: not a time
        raise HTTPException(400, advice)
    return seconds


def parse_matchers(values: list[str]) -> list[Matcher]:
    """``job=api``, ``job!=api``, ``job=~ap.*``, ``job!~ap.*`` (the metric name is ``__name__``)."""
    out: list[Matcher] = []
    for raw in values:
        m = _MATCHER.match(raw) or re.match(r"^(__name__)(=~|!~|!=|=)(.*)$", raw)
        if not m:
            raise HTTPException(400, f"label is {raw!r}; write name=value, name!=value, name=~regex or name!~regex")
        name, op, want = m.groups()
        if op in ("=~", "!~"):
            try:
                rx = re.compile(want)
            except re.error as exc:
                raise HTTPException(400, f"label {raw!r}: bad regular expression ({exc})") from None
            out.append(_regex_matcher(name, rx, op == "=~"))
        else:
            out.append(_equal_matcher(name, want, op == "="))
    return out


def _regex_matcher(name: str, rx: re.Pattern[str], hit: bool) -> Matcher:
    return lambda labels: bool(rx.fullmatch(labels.get(name, ""))) == hit


def _equal_matcher(name: str, want: str, same: bool) -> Matcher:
    return lambda labels: (labels.get(name, "") == want) == same
