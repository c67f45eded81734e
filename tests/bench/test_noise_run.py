"""The noise runner: events counted where they open, as the NAB runner sees them; rates, halves, tables."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.bench.nab_corpus import DataFile
from vigil.bench.nab_run import run_detector
from vigil.bench.noise import START, series, times
from vigil.bench.noise_run import (
    NoiseRun,
    Tally,
    check_days,
    check_seeds,
    count_events,
    default_days,
    parse_step,
    run_noise,
)
from vigil.bench.noise_table import markdown_tables, run_rows, table_columns, table_rows
from vigil.config import Detection
from vigil.errors import ConfigError


def test_a_flat_series_opens_nothing_and_one_spike_opens_one_event_where_it_is() -> None:
    x = np.full((3, 1200), 50.0)
    x[1, 700] = 80.0
    x[2, 300] = 20.0
    opened, seconds = count_events(60.0 * np.arange(1200), x, Detection(), block=100)
    assert [a.tolist() for a in opened] == [[], [700], [300]]
    assert seconds >= 0


def test_counts_equal_the_alerts_of_the_nab_runner_in_any_block_size() -> None:
    n, step = 6000, 15.0
    families = ["gaussian", "poisson_0.2", "integer_gauge", "zero_blips"]
    x = np.stack([series(f, 1, n, step) for f in families])
    x[0, 3000] += 100.0  # a spike, so that there is something to count
    stamps = (times(n, step) * 1e6).astype("datetime64[us]")
    nab = run_detector([DataFile(f"{f}/1.csv", stamps, row, []) for f, row in zip(families, x, strict=True)],
                       "default")
    expected = [np.flatnonzero(a).tolist() for a in nab.alerts]
    assert 3000 in expected[0]
    for block in (4096, 333):
        opened, _ = count_events(times(n, step), x, Detection(), block=block)
        assert [a.tolist() for a in opened] == expected


def test_missing_samples_open_nothing() -> None:
    x = np.full((1, 500), 5.0)
    x[0, 100:200] = np.nan
    opened, _ = count_events(60.0 * np.arange(500), x, Detection())
    assert opened[0].size == 0


def test_count_events_refuses_times_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="one time per step"):
        count_events(np.arange(10.0), np.zeros((2, 11)), Detection())


def test_run_noise_streams_every_family_and_seed_and_repeats_itself() -> None:
    a = run_noise(3600.0, days=20, seeds=3, families=["gaussian", "daily"])
    b = run_noise(3600.0, days=20, seeds=3, families=["gaussian", "daily"])
    assert (a.n, len(a.opened), a.points, a.events().shape) == (480, 6, 2880, (2, 3))
    assert [x.tolist() for x in a.opened] == [x.tolist() for x in b.opened]
    x = np.stack([series("gaussian", s, 480, 3600.0) for s in range(3)])
    alone, _ = count_events(times(480, 3600.0, START), x, Detection())
    assert [o.tolist() for o in alone] == [o.tolist() for o in a.opened[:3]]  # row f * seeds + s


def hand_made() -> NoiseRun:
    """Two families, four seeds, 10 days: a's seeds open 1, 0, 2, 0 events; b's 0, 3, 0, 1."""
    events = [[1, 0, 2, 0], [0, 3, 0, 1]]
    opened = [np.arange(k, dtype=np.intp) for row in events for k in row]
    return NoiseRun("default", 60.0, 10.0, 4, ("a", "b"), opened, seconds=2.0)


def test_rates_are_events_over_series_days_per_family_half_and_suite() -> None:
    run = hand_made()
    assert run.events().tolist() == [[1, 0, 2, 0], [0, 3, 0, 1]]
    assert run.tally("a") == Tally(3, 40.0) and run.tally("a").rate == 0.075
    assert run.tally("a", "choose") == Tally(3, 20.0)  # seeds 0 and 2
    assert run.tally("a", "check") == Tally(0, 20.0)  # seeds 1 and 3
    assert run.tally("b", "check") == Tally(4, 20.0)
    assert run.tally() == Tally(7, 80.0)
    assert run.tally(half="choose") == Tally(3, 40.0)
    assert run.largest() == ("b", Tally(4, 40.0))
    assert run.largest("choose") == ("a", Tally(3, 20.0))
    assert run.points == 8 * 14_400 and run.points_per_second == 8 * 14_400 / 2.0


def test_a_tie_for_largest_is_the_first_family() -> None:
    run = NoiseRun("x", 60.0, 1.0, 2, ("a", "b"), [np.zeros(0, dtype=np.intp)] * 4, 1.0)
    assert run.largest() == ("a", Tally(0, 2.0))


def test_the_table_has_a_row_per_family_then_the_largest_and_the_suite() -> None:
    run = hand_made()
    assert table_columns([run]) == [
        "family", "1m, 10 d: per series-day", "1m, 10 d: events / series-days", "1m, 10 d: choose / check",
    ]
    assert table_rows([run]) == [
        ["a", "0.0750", "3 / 40", "0.1500 / 0.0000"],
        ["b", "0.1000", "4 / 40", "0.0000 / 0.2000"],
        ["largest family", "0.1000", "b: 4 / 40", "0.1500 / 0.2000"],
        ["whole suite", "0.0875", "7 / 80", "0.0750 / 0.1000"],
    ]
    assert run_rows([run]) == [["1m", "10", "8", "115,200", "7", "2.00", "57,600"]]
    md = markdown_tables([run])
    assert "| family | 1m, 10 d: per series-day |" in md and "| b | 0.1000 | 4 / 40 | 0.0000 / 0.2000 |" in md
    assert "| 1m | 10 | 8 | 115,200 | 7 | 2.00 | 57,600 |" in md


def test_days_default_to_80640_samples_between_two_weeks_and_two_years() -> None:
    assert [default_days(s) for s in (1.0, 15.0, 60.0, 300.0, 3600.0, 21600.0)] == [14, 14, 56, 280, 730, 730]


@pytest.mark.parametrize("text", ["0s", "15", "1.5s", "7h", "500ms", "fast"])
def test_a_bad_step_is_refused_with_what_to_write(text: str) -> None:
    with pytest.raises(ConfigError, match=rf"^step is '{text}'; write a whole number of seconds from 1s to 6h"):
        parse_step(text)


def test_steps_in_any_unit() -> None:
    assert [parse_step(t) for t in ("1s", "15s", "1m", "60m", "6h")] == [1.0, 15.0, 60.0, 3600.0, 21600.0]


def test_seeds_and_days_are_checked() -> None:
    assert check_seeds(2) == 2
    with pytest.raises(ConfigError, match=r"^seeds is 1; write a whole number >= 2"):
        check_seeds(1)
    with pytest.raises(ConfigError, match=r"^days is 0; write a number of days that holds at least two steps of 1h"):
        check_days(0.0, 3600.0)
    with pytest.raises(ConfigError):
        check_days(float("inf"), 15.0)
