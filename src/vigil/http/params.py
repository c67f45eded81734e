"""Parameters of the API: times, label matchers, paging and who acts, each refused with a 4xx that says what to write.

Label matchers mean what they mean in Prometheus (`vigil.matchers`: RE2, anchored at both ends).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated

from fastapi import Header, HTTPException, Query, Request

from vigil.matchers import MAX_PATTERN, MAX_REPEAT, Matcher, MatcherError, parse_matcher, shown
from vigil.outputs.feedback import MAX_AUTHOR

__all__ = [
    "MAX_MATCHERS", "MAX_NAME", "MAX_OFFSET", "MAX_PATTERN", "MAX_REPEAT", "MAX_SEARCH", "MAX_TIME", "Author",
    "Labels", "Matcher", "Offset", "parse_matchers", "parse_time", "signed_by",
]

MAX_MATCHERS = 50
MAX_OFFSET = 1_000_000_000
MAX_NAME = 100  # a query or receiver name (config: at most 100 characters)
MAX_SEARCH = 500
MAX_TIME = 64  # characters of a time or a duration
_EARLIEST, _LATEST = 0.0, 253402300799.0  # 1970-01-01T00:00:00Z, 9999-12-31T23:59:59Z

Labels = Annotated[Sequence[str], Query(
    max_length=MAX_MATCHERS,
    description=f"label matcher, repeatable (at most {MAX_MATCHERS}): job=api, job!=api, job=~ap.*, job!~ap.*; "
                f"a regex is RE2 syntax, anchored at both ends as in Prometheus, at most {MAX_PATTERN} characters",
)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]
Author = Header(None, alias="X-Vigil-Author", max_length=MAX_AUTHOR,
                description="who acts (a verdict, a mute), when the token used has no name (server.tokens)")


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds or RFC 3339 -> Unix seconds; HTTP 400 that says what to write."""
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is None or not _EARLIEST <= seconds <= _LATEST:  # nan and inf fail the range too
        raise HTTPException(
            400, f"{name} is {shown(value)}; write Unix seconds or RFC 3339 such as 2026-01-31T12:00:00Z, "
                 "from 1970 to 9999",
        )
    return seconds


def _seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def parse_matchers(values: Sequence[str]) -> list[Matcher]:
    """``job=api``, ``job!=api``, ``job=~ap.*``, ``job!~ap.*`` (the metric name is ``__name__``)."""
    try:
        return [parse_matcher(raw) for raw in values]
    except MatcherError as exc:
        raise HTTPException(400, str(exc)) from None


def signed_by(request: Request, given: str | None) -> str:
    """Who acts: the name of the request's token, else the `Author` header's printable text, else anonymous."""
    named = getattr(request.state, "token_name", None)
    if named:
        return str(named)
    text = " ".join("".join(c for c in given or "" if c.isprintable()).split())
    return text or "anonymous"
