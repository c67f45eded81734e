"""Query parameters of the API: times, label matchers and paging, each refused with a 4xx that says what to write.

Label matchers mean what they mean in Prometheus: ``=~`` and ``!~`` take RE2 syntax and
match the whole value, as Prometheus compiles them (``^(?s:pattern)$``: anchored at both
ends, ``.`` matches a newline too); a label a series lacks has the empty value. RE2 runs in
time linear in the value's length whatever the pattern, so no pattern can stall the
process; the pattern's length and the memory RE2 may compile it into are capped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Annotated

import re2
from fastapi import HTTPException, Query

__all__ = [
    "MAX_MATCHERS", "MAX_NAME", "MAX_OFFSET", "MAX_PATTERN", "MAX_REPEAT", "MAX_SEARCH", "MAX_TIME", "Labels",
    "Matcher", "Offset", "parse_matchers", "parse_time",
]

Matcher = Callable[[dict[str, str]], bool]

MAX_PATTERN = 1000  # characters of one regular expression
MAX_REPEAT = 1000  # x{1000}: the largest count Go's regexp (Prometheus) and RE2 accept
MAX_MATCHERS = 50
MAX_OFFSET = 1_000_000_000
MAX_NAME = 100  # a query or receiver name (config: at most 100 characters)
MAX_SEARCH = 500
MAX_TIME = 64  # characters of a time or a duration
_REGEX_MEMORY = 1 << 20  # bytes RE2 may compile one pattern into; a larger one is refused
_EARLIEST, _LATEST = 0.0, 253402300799.0  # 1970-01-01T00:00:00Z, 9999-12-31T23:59:59Z

Labels = Annotated[Sequence[str], Query(
    max_length=MAX_MATCHERS,
    description=f"label matcher, repeatable (at most {MAX_MATCHERS}): job=api, job!=api, job=~ap.*, job!~ap.*; "
                f"a regex is RE2 syntax, anchored at both ends as in Prometheus, at most {MAX_PATTERN} characters",
)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]

_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)(.*)", re.S)
_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(?:,(0|[1-9][0-9]*)?)?\}")


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds or RFC 3339 -> Unix seconds; HTTP 400 that says what to write."""
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is None or not _EARLIEST <= seconds <= _LATEST:  # nan and inf fail the range too
        raise HTTPException(
            400, f"{name} is {_shown(value)}; write Unix seconds or RFC 3339 such as 2026-01-31T12:00:00Z, "
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
    return [_matcher(raw) for raw in values]


def _matcher(raw: str) -> Matcher:
    m = _MATCHER.fullmatch(raw)
    if not m:
        raise HTTPException(400, f"label is {_shown(raw)}; write name=value, name!=value, name=~regex or name!~regex")
    name, op, want = m.groups()
    if op in ("=", "!="):
        return _equal_matcher(name, want, op == "=")
    return _regex_matcher(name, _compile(raw, want), op == "=~")


def _compile(raw: str, pattern: str) -> Callable[[bytes], object]:
    """The pattern's full-match function, or HTTP 400 that says why Prometheus would refuse it too."""
    where = f"label {_shown(raw)}"
    if len(pattern) > MAX_PATTERN:
        raise HTTPException(
            400, f"{where}: the regular expression is {len(pattern)} characters; write at most {MAX_PATTERN}"
        )
    huge = _repeat_over_limit(pattern)
    if huge is not None:
        raise HTTPException(400, f"{where}: repeat count {_shown(huge)} is over {MAX_REPEAT}; write at most "
                                 f"{{{MAX_REPEAT}}}")
    try:
        rx = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if reason.startswith("pattern too large"):
            raise HTTPException(400, f"{where}: the regular expression is too large to run (over "
                                     f"{_REGEX_MEMORY >> 20} MiB compiled); write fewer or smaller repeats") from None
        raise HTTPException(400, f"{where}: bad regular expression ({_printable(reason)}); write RE2 syntax, as "
                                 "Prometheus does (github.com/google/re2/wiki/Syntax)") from None
    return rx.fullmatch


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _REGEX_MEMORY
    options.dot_nl = True
    options.log_errors = False  # a refused pattern is the client's mistake, answered with a 400, not logged
    return options


_OPTIONS = _options()


def _repeat_over_limit(pattern: str) -> str | None:
    """The first repeat such as ``{99999999999}`` whose count is over `MAX_REPEAT`, else None.

    Go's regexp, and so Prometheus, refuses every count over 1000. RE2 refuses those of up
    to nine digits but reads a longer one as literal text, so this looks for them: outside
    escapes (``\\{``, ``\\Q...\\E``) and character classes (``[{]``), where a brace is a brace.
    """
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            i = _after_escape(pattern, i)
        elif pattern[i] == "[":
            i = _after_class(pattern, i)
        else:
            m = _REPEAT.match(pattern, i) if pattern[i] == "{" else None
            if m and any(len(n) > 4 or int(n) > MAX_REPEAT for n in m.groups() if n):
                return m.group()
            i += 1
    return None


def _after_escape(pattern: str, i: int) -> int:
    if pattern.startswith("\\Q", i):  # literal text up to \E or the end
        end = pattern.find("\\E", i + 2)
        return len(pattern) if end < 0 else end + 2
    return i + 2


def _after_class(pattern: str, i: int) -> int:
    j = i + 2 if pattern.startswith("^", i + 1) else i + 1
    if pattern.startswith("]", j):  # a ']' first in a class is a literal
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        if pattern[j] == "\\":
            j += 2
        elif pattern.startswith("[:", j) and ":]" in pattern[j + 2 :]:  # [:alpha:]
            j = pattern.index(":]", j + 2) + 2
        else:
            j += 1
    return j + 1


def _regex_matcher(name: str, fullmatch: Callable[[bytes], object], hit: bool) -> Matcher:
    seen: dict[str, bool] = {}  # series share label values (job, __name__): each is matched once per request

    def match(labels: dict[str, str]) -> bool:
        value = labels.get(name, "")
        found = seen.get(value)
        if found is None:  # RE2 reads UTF-8: given bytes, re2 skips mapping offsets back to characters
            found = seen[value] = fullmatch(value.encode(errors="replace")) is not None
        return found == hit

    return match


def _equal_matcher(name: str, want: str, same: bool) -> Matcher:
    return lambda labels: (labels.get(name, "") == want) == same


def _shown(text: str) -> str:
    """The client's text in an error: quoted, escaped, and cut after 80 characters."""
    return repr(_cut(text))


def _printable(text: str) -> str:
    """RE2's reason, which quotes the pattern, on one line and cut after 80 characters."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in _cut(text))


def _cut(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."
