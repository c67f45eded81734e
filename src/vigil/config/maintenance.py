"""The ``maintenance`` keys: recurring windows during which matched series notify nobody.

A window names the series it covers with a PromQL selector (``{job="node", instance=~"db-.*"}``;
the query's name is the label ``query``) and says when it recurs, in one of two ways:

- ``start`` and ``end`` times of day (``"02:00"``, ``"03:30:00"``), on the ``weekdays``
  listed (all when unset; ``mon``, ``mon-fri``); an end at or before the start ends on the
  next day;
- a ``cron`` expression of five fields (`vigil.config.cron`) for the starts, and a ``duration``.

Times are read in ``time_zone`` (an IANA name, default UTC), so a window follows the
clock of the place across daylight-saving changes. With ``learn: false`` (the default) the
samples inside the window are scored and their events recorded, marked muted, but the
model does not learn them: after the window it is the model from before it.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from functools import cached_property
from typing import Any

from pydantic import Field, field_validator, model_validator

from vigil.config.cron import Cron, parse_cron
from vigil.config.values import Duration, Model, Name
from vigil.matchers import MatcherError, parse_selector, shown

__all__ = ["Window", "selector_problem"]

_DAYS = {name: i for i, day in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
         for name in (day, day[:3])}
_TIME = re.compile(r"([01]?[0-9]|2[0-4]):([0-5][0-9])(?::([0-5][0-9]))?")
_DAY = dt.timedelta(days=1)


def selector_problem(text: str, key: str = "matchers") -> str | None:
    """What is wrong with a selector, said after its key and value (None: it is fine)."""
    try:
        parse_selector(text, key)
    except MatcherError as exc:
        return str(exc).removeprefix(f"{key} is {shown(text)}").lstrip(":; ")
    return None


def _weekdays(value: Any) -> Any:
    """``[mon, wed-fri]`` -> ``[0, 2, 3, 4]`` (Monday = 0; a range may wrap: ``sat-mon``)."""
    if not isinstance(value, list):
        return value
    out: set[int] = set()
    for item in value:
        ends = [_DAYS.get(e) for e in str(item).lower().split("-")]
        if len(ends) > 2 or None in ends:
            raise ValueError(f"has {item!r}; write days such as mon, tue or ranges such as mon-fri")
        a, b = int(ends[0] or 0), int(ends[-1] or 0)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return sorted(out)


def _time_of_day(value: Any) -> Any:
    """``"02:30"`` -> seconds after midnight (``"24:00"`` is the end of the day)."""
    m = _TIME.fullmatch(value) if isinstance(value, str) else None
    seconds = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3) or 0) if m else -1
    if not 0 <= seconds <= 86400:
        raise ValueError("write a time of day such as '02:00' or '23:30:00' (24-hour clock, quoted)")
    return seconds


class Window(Model):
    """One recurring maintenance window (see the module's text)."""

    name: Name
    matchers: str = Field(description='PromQL selector of the series covered, such as {job="node"}')
    weekdays: list[int] | None = None
    start: int | None = None
    end: int | None = None
    cron: str | None = None
    duration: Duration | None = None
    time_zone: str = "UTC"
    learn: bool = False

    _weekdays = field_validator("weekdays", mode="before")(_weekdays)
    _times = field_validator("start", "end", mode="before")(_time_of_day)

    @field_validator("matchers")
    @classmethod
    def _selector(cls, value: str) -> str:
        problem = selector_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise ValueError("write an IANA time zone such as UTC, Europe/Paris or America/New_York") from None
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> Window:
        by_time = self.start is not None or self.end is not None or self.weekdays is not None
        by_cron = self.cron is not None or self.duration is not None
        if by_time == by_cron:
            raise ValueError(
                "give either start and end (times of day, with weekdays if not every day) or cron and duration"
            )
        if by_time and (self.start is None or self.end is None):
            raise ValueError("give both start and end, such as start: '02:00' and end: '04:00'")
        if by_time and self.start == self.end:
            raise ValueError("start and end are the same time; give an end after the start")
        if by_cron and (self.cron is None or self.duration is None):
            raise ValueError("give both cron and duration, such as cron: '0 3 * * sun' and duration: 2h")
        return self

    @cached_property
    def _zoneinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @cached_property
    def _schedule(self) -> Cron | None:
        return None if self.cron is None else parse_cron(self.cron)

    def spans(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """The times ``[from, to)`` (Unix seconds) the window covers that overlap ``[t0, t1]``, in order."""
        tz = self._zoneinfo
        longest = self.duration if self.duration is not None else 86400.0
        first = dt.datetime.fromtimestamp(t0 - longest, tz).date()
        last = dt.datetime.fromtimestamp(t1, tz).date()
        out: list[tuple[float, float]] = []
        day = first
        while day <= last:
            for s, e in self._day_spans(day, tz):
                if e > t0 and s <= t1:
                    if out and s <= out[-1][1]:
                        out[-1] = (out[-1][0], max(out[-1][1], e))
                    else:
                        out.append((s, e))
            day += _DAY
        return out

    def _day_spans(self, day: dt.date, tz: zoneinfo.ZoneInfo) -> list[tuple[float, float]]:
        cron = self._schedule
        if cron is None:
            if self.weekdays is not None and day.weekday() not in self.weekdays:
                return []
            start, end = int(self.start or 0), int(self.end or 0)
            end_day = day if end > start else day + _DAY
            return [(_at(day, start, tz), _at(end_day, end, tz))]
        if not cron.matches_day(day.day, day.month, day.weekday()):
            return []
        length = float(self.duration or 0)
        return [(s, s + length) for s in (_at(day, h * 3600 + m * 60, tz) for h in sorted(cron.hours)
                                         for m in sorted(cron.minutes))]


def _at(day: dt.date, seconds: int, tz: zoneinfo.ZoneInfo) -> float:
    """Unix seconds of `seconds` after midnight of `day` on the clock of `tz`."""
    if seconds >= 86400:
        day, seconds = day + _DAY, seconds - 86400
    clock = dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60)
    return dt.datetime.combine(day, clock, tz).timestamp()
