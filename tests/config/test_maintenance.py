"""Maintenance windows in the config: when they cover, across time zones and daylight saving, and
every mistake said on one line that names the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from vigil.config import Window, load_config
from vigil.config.cron import parse_cron
from vigil.errors import ConfigError

BASE = {"name": "w", "matchers": '{job="node"}'}


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def spans(window: dict[str, Any], t0: float, t1: float) -> list[tuple[str, str]]:
    w = Window.model_validate({**BASE, **window})
    show = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).strftime("%a %m-%d %H:%M")  # noqa: E731
    return [(show(a), show(b)) for a, b in w.spans(t0, t1)]


def test_a_window_follows_the_clock_of_its_time_zone_across_daylight_saving() -> None:
    # Europe/Paris moves from UTC+1 to UTC+2 on Sunday 2026-03-29
    got = spans({"weekdays": ["sat", "sun"], "start": "23:00", "end": "01:00", "time_zone": "Europe/Paris"},
                utc(2026, 3, 27), utc(2026, 3, 31))
    assert got == [("Sat 03-28 22:00", "Sun 03-29 00:00"), ("Sun 03-29 21:00", "Sun 03-29 23:00")]


def test_weekday_ranges_wrap_and_a_window_across_midnight_starts_the_day_before() -> None:
    got = spans({"weekdays": ["sat-mon"], "start": "22:00", "end": "02:00"}, utc(2026, 12, 7), utc(2026, 12, 8))
    assert got == [("Sun 12-06 22:00", "Mon 12-07 02:00"), ("Mon 12-07 22:00", "Tue 12-08 02:00")]


def test_every_day_with_seconds_and_an_end_at_midnight() -> None:
    got = spans({"start": "23:59:30", "end": "24:00"}, utc(2026, 12, 7), utc(2026, 12, 7, 23, 59, 45))
    assert got == [("Mon 12-07 23:59", "Tue 12-08 00:00")]


@pytest.mark.parametrize(("cron", "expected"), [
    pytest.param("30 2 * * mon-fri", [("Mon 12-07 02:30", "Mon 12-07 03:00"), ("Tue 12-08 02:30", "Tue 12-08 03:00")],
                 id="weekdays"),
    pytest.param("0 */12 * * *", [("Mon 12-07 00:00", "Mon 12-07 00:30"), ("Mon 12-07 12:00", "Mon 12-07 12:30"),
                                  ("Tue 12-08 00:00", "Tue 12-08 00:30"), ("Tue 12-08 12:00", "Tue 12-08 12:30")],
                 id="step"),
    pytest.param("0 0 8 * 0", [("Tue 12-08 00:00", "Tue 12-08 00:30")], id="day-of-month-or-sunday"),
    pytest.param("0 0 1 jan *", [], id="not-these-days"),
])
def test_a_cron_window_starts_at_its_times_for_its_duration(cron: str, expected: list[tuple[str, str]]) -> None:
    assert spans({"cron": cron, "duration": "30m"}, utc(2026, 12, 7), utc(2026, 12, 8, 23, 59)) == expected


def test_cron_steps_and_lists_read_as_in_cron() -> None:
    c = parse_cron("*/20 1,3-5 * jan-mar 7")
    assert sorted(c.minutes) == [0, 20, 40] and sorted(c.hours) == [1, 3, 4, 5]
    assert sorted(c.months) == [1, 2, 3] and sorted(c.weekdays) == [0]


@pytest.mark.parametrize(("window", "says"), [
    pytest.param({"start": "02:00"}, "maintenance[0]: give both start and end", id="no-end"),
    pytest.param({}, "maintenance[0]: give either start and end", id="no-schedule"),
    pytest.param({"start": "02:00", "end": "03:00", "cron": "0 2 * * *", "duration": "1h"},
                 "maintenance[0]: give either start and end", id="both-schedules"),
    pytest.param({"cron": "0 2 * * *"}, "maintenance[0]: give both cron and duration", id="no-duration"),
    pytest.param({"start": "2am", "end": "03:00"}, "maintenance[0].start is '2am'; write a time of day such as '02:00'",
                 id="bad-time"),
    pytest.param({"start": "02:00", "end": "02:00"}, "start and end are the same time", id="empty"),
    pytest.param({"start": "02:00", "end": "03:00", "weekdays": ["funday"]},
                 "maintenance[0].weekdays is ['funday']; has 'funday'; write days such as mon", id="bad-day"),
    pytest.param({"start": "02:00", "end": "03:00", "time_zone": "Mars/Olympus"},
                 "maintenance[0].time_zone is 'Mars/Olympus'; write an IANA time zone", id="bad-zone"),
    pytest.param({"cron": "0 2 * *", "duration": "1h"}, "maintenance[0].cron is '0 2 * *'; has 4 fields; write five",
                 id="cron-fields"),
    pytest.param({"cron": "61 2 * * *", "duration": "1h"}, "minute field has '61'; write a number from 0 to 59",
                 id="cron-range"),
    pytest.param({"cron": "0 2 * * *", "duration": "90"}, "maintenance[0].duration is '90'; write a duration",
                 id="bare-duration"),
    pytest.param({"matchers": "{job=}", "cron": "0 2 * * *", "duration": "1h"},
                 "maintenance[0].matchers is '{job=}'; cannot read it at character 6", id="bad-selector"),
    pytest.param({"matchers": '{job=~"("}', "cron": "0 2 * * *", "duration": "1h"},
                 "maintenance[0].matchers is '{job=~\"(\"}'; bad regular expression", id="bad-regex"),
    pytest.param({"matchers": "{}", "cron": "0 2 * * *", "duration": "1h"}, "which matches every series",
                 id="everything"),
    pytest.param({"learn": "sometimes", "cron": "0 2 * * *", "duration": "1h"}, "maintenance[0].learn is 'sometimes'",
                 id="learn"),
    pytest.param({"cron": "0 2 * * *", "duration": "1h", "mute": True}, "maintenance[0].mute is not a known key",
                 id="unknown-key"),
])
def test_a_bad_window_is_one_line_naming_its_key(tmp_path: Path, window: dict[str, Any], says: str) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text(yaml.safe_dump({"maintenance": [{**BASE, **window}]}))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert says in text, text
    assert text.count("\n") == 0, f"one line: {text}"


def test_window_names_are_unique(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yml"
    w = '{name: w, matchers: "up", cron: "0 2 * * *", duration: 1h}'
    path.write_text(f"maintenance: [{w}, {w}]\n")
    with pytest.raises(ConfigError, match="maintenance window names must be unique; w appear"):
        load_config(path)
