"""Cron expressions of the five standard fields: minute, hour, day of month, month, day of week.

Each field is ``*``, a number, a range ``a-b``, either with a step (``*/15``, ``1-5/2``),
or a comma-separated list of those; months and days of the week may be named (``jan``,
``mon``; Sunday is 0 or 7). As in Vixie cron, when both the day of the month and the day
of the week are restricted, a day matching either one matches.

>>> c = parse_cron("30 2 * * mon-fri")
>>> sorted(c.hours), sorted(c.minutes), c.matches_day(day=7, month=12, weekday=0)
([2], [30], True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Cron", "parse_cron"]

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# name, lowest, highest, names (from the lowest)
_FIELDS = [
    ("minute", 0, 59, None), ("hour", 0, 23, None), ("day of month", 1, 31, None), ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
]
_PART = re.compile(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]+))?")


@dataclass(frozen=True)
class Cron:
    """The values each field allows; `any_day`/`any_weekday`: the field was ``*``."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def matches_day(self, day: int, month: int, weekday: int) -> bool:
        """Whether a date fires; `weekday` counts from Monday = 0, as `datetime.weekday` does."""
        if month not in self.months:
            return False
        by_day, by_weekday = day in self.days, (weekday + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday


def parse_cron(text: str) -> Cron:
    """A `Cron` from its five fields; ValueError that says which field is wrong and what to write."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"has {len(fields)} fields; write five: minute hour day-of-month month day-of-week, such as '0 3 * * sun'"
        )
    sets = [_field(f.lower(), *spec) for f, spec in zip(fields, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(frozenset(sets[0]), frozenset(sets[1]), frozenset(sets[2]), frozenset(sets[3]), weekdays,
                fields[2] == "*", fields[4] == "*")


def _field(text: str, name: str, low: int, high: int, names: list[str] | None) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        m = _PART.fullmatch(part)
        if not m:
            raise ValueError(f"{name} field {part!r} is not a value, range or step; write such as *, 5, 1-5 or */15")
        span, step = m.group(1), int(m.group(2)) if m.group(2) else 1
        if step < 1:
            raise ValueError(f"{name} field {part!r} has step 0; write a step of 1 or more")
        if span == "*":
            a, b = low, high
        else:
            ends = [_value(v, name, low, high, names) for v in span.split("-")]
            a, b = ends[0], ends[-1]
            if a > b:
                raise ValueError(f"{name} field {part!r} runs backwards; write the lower end first")
        out.update(range(a, b + 1, step))
    return out


def _value(text: str, name: str, low: int, high: int, names: list[str] | None) -> int:
    if names and text in names:
        return names.index(text) + low
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    named = f" or a name such as {names[0]}" if names else ""
    raise ValueError(f"{name} field has {text!r}; write a number from {low} to {high}{named}")

