"""Label matchers as Prometheus means them: ``job=api`` and selectors such as ``{job="api", mode=~"idle|user"}``.

``=~`` and ``!~`` take RE2 syntax and match the whole value, as Prometheus compiles them
(``^(?s:pattern)$``: anchored at both ends, ``.`` matches a newline too); a label a series
lacks has the empty value. RE2 runs in time linear in the value's length whatever the
pattern, so no pattern can stall the process; the pattern's length and the memory RE2 may
compile it into are capped. A matcher that cannot be made raises `MatcherError`, whose text
says what was wrong and what to write; the API answers it with a 400, the config with a
ConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import re2

__all__ = [
    "MAX_PATTERN", "MAX_REPEAT", "MAX_SELECTOR", "Matcher", "MatcherError", "matcher", "parse_matcher", "parse_selector", "shown",
]

Matcher = Callable[[dict[str, str]], bool]

MAX_PATTERN = 1000  # characters of one regular expression
MAX_REPEAT = 1000  # x{1000}: the largest count Go's regexp (Prometheus) and RE2 accept
MAX_SELECTOR = 4000  # characters of one selector
_REGEX_MEMORY = 1 << 20  # bytes RE2 may compile one pattern into; a larger one is refused
_MEMO = 10_000  # label values whose regex match a matcher remembers

_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)(.*)", re.S)
_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(?:,(0|[1-9][0-9]*)?)?\}")
_NAME = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*")
_ITEM = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|`([^`]*)`', re.S)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_WRITE = 'write a selector such as {job="node", instance=~"web-.*"}'


class MatcherError(ValueError):
    """A matcher or selector that cannot be used; the text says why and what to write."""


def parse_matcher(raw: str, where: str = "label") -> Matcher:
    """``job=api``, ``job!=api``, ``job=~ap.*``, ``job!~ap.*`` (the metric name is ``__name__``)."""
    m = _MATCHER.fullmatch(raw)
    if not m:
        raise MatcherError(f"{where} is {shown(raw)}; write name=value, name!=value, name=~regex or name!~regex")
    name, op, want = m.groups()
    return matcher(name, op, want, f"{where} {shown(raw)}")


def parse_selector(text: str, where: str = "matchers") -> list[Matcher]:
    """The matchers of a PromQL selector: ``{job="node", mode=~"idle|user"}``; a metric name
    before the braces (``node_load1{job="node"}``) matches ``__name__``. At least one matcher."""
    if len(text) > MAX_SELECTOR:
        raise MatcherError(f"{where} is {len(text)} characters; write at most {MAX_SELECTOR}")
    m = _NAME.match(text)
    name, i = (m.group(1), m.end()) if m else (None, 0)
    out = [matcher("__name__", "=", name, where)] if name else []
    if i == len(text) and out:
        return out
    if not text.startswith("{", i):
        raise MatcherError(f"{where} is {shown(text)}; {_WRITE}")
    i += 1
    while True:
        while i < len(text) and text[i] in " \t\n\r":
            i += 1
        if text.startswith("}", i):
            i += 1
            break
        item = _ITEM.match(text, i)
        value = _QUOTED.match(text, item.end()) if item else None
        if item is None or value is None:
            at = i if item is None else item.end()
            raise MatcherError(f"{where} is {shown(text)}: cannot read it at character {at + 1}; {_WRITE}")
        raw = value.group(3) if value.group(3) is not None else _unescape(value.group(1) or value.group(2) or "")
        out.append(matcher(item.group(1), item.group(2), raw, f"{where} is {shown(text)}"))
        i = value.end()
        while i < len(text) and text[i] in " \t\n\r":
            i += 1
        if text.startswith(",", i):
            i += 1
        elif not text.startswith("}", i):
            raise MatcherError(f"{where} is {shown(text)}: expected ',' or '}}' at character {i + 1}; {_WRITE}")
    if text[i:].strip():
        raise MatcherError(f"{where} is {shown(text)}: unexpected text after '}}'; {_WRITE}")
    if not out:
        raise MatcherError(f'{where} is {shown(text)}, which matches every series; name at least one label, such as '
                           '{instance="web-1"} (or {query=~".+"} for all)')
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text, flags=re.S)


def matcher(name: str, op: str, want: str, where: str) -> Matcher:
    """The matcher ``name op want`` (op one of ``=``, ``!=``, ``=~``, ``!~``)."""
    if op in ("=", "!="):
        return _equal_matcher(name, want, op == "=")
    return _regex_matcher(name, _compile(where, want), op == "=~")


def _compile(where: str, pattern: str) -> Callable[[bytes], object]:
    """The pattern's full-match function, or MatcherError that says why Prometheus would refuse it too."""
    if len(pattern) > MAX_PATTERN:
        raise MatcherError(f"{where}: the regular expression is {len(pattern)} characters; write at most {MAX_PATTERN}")
    huge = _repeat_over_limit(pattern)
    if huge is not None:
        raise MatcherError(f"{where}: repeat count {shown(huge)} is over {MAX_REPEAT}; write at most {{{MAX_REPEAT}}}")
    try:
        rx = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if reason.startswith("pattern too large"):
            raise MatcherError(f"{where}: the regular expression is too large to run (over "
                               f"{_REGEX_MEMORY >> 20} MiB compiled); write fewer or smaller repeats") from None
        raise MatcherError(f"{where}: bad regular expression ({_printable(reason)}); write RE2 syntax, as "
                           "Prometheus does (github.com/google/re2/wiki/Syntax)") from None
    return rx.fullmatch


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _REGEX_MEMORY
    options.dot_nl = True
    options.log_errors = False  # a refused pattern is the writer's mistake, said back to them, not logged
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
    seen: dict[str, bool] = {}  # series share label values (job, __name__): each is matched once

    def match(labels: dict[str, str]) -> bool:
        value = labels.get(name, "")
        found = seen.get(value)
        if found is None:  # RE2 reads UTF-8: given bytes, re2 skips mapping offsets back to characters
            if len(seen) >= _MEMO:
                seen.clear()
            found = seen[value] = fullmatch(value.encode(errors="replace")) is not None
        return found == hit

    return match


def _equal_matcher(name: str, want: str, same: bool) -> Matcher:
    return lambda labels: (labels.get(name, "") == want) == same


def shown(text: str) -> str:
    """Someone's text in an error: quoted, escaped, and cut after 80 characters."""
    return repr(_cut(text))


def _printable(text: str) -> str:
    """RE2's reason, which quotes the pattern, on one line and cut after 80 characters."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in _cut(text))


def _cut(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."
