"""ReplaySource: a CSV file replayed as a live series, driven by the `now` the engine passes.

The file's time runs `speed` times faster than `now`; samples carry wall-clock times
starting at the first `fetch`, and each comes as soon as its time has come (the first one
at the first fetch). With `loop`, the file starts over, later in time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import DataError
from vigil.sources.base import SeriesBatch
from vigil.sources.replay import ReplaySource

START = 1_700_000_000.0
SEED = (
    "Date,Timestamp,CPU_Utilization\n"
    "2024-03-01,00:00:00,10\n"
    "2024-03-01,00:01:00,11\n"
    "2024-03-01,00:02:00,12\n"
    "2024-03-01,00:03:00,13\n"
    "2024-03-01,00:04:00,14\n"
)  # one sample a minute: one pass is 5 minutes of file time


def source(tmp_path: Path, text: str = SEED, **kwargs: object) -> ReplaySource:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return ReplaySource("seed", path, **kwargs)  # type: ignore[arg-type]


def fetch(src: ReplaySource, now: float) -> list[SeriesBatch]:
    return asyncio.run(src.fetch(now))


def times_values(batches: list[SeriesBatch]) -> tuple[list[float], list[float]]:
    if not batches:
        return [], []
    (b,) = batches
    return b.t.tolist(), b.v.tolist()


def test_the_seed_format_replays_at_speed(tmp_path: Path) -> None:
    src = source(tmp_path, speed=60)  # a file minute per second
    assert src.interval == 1.0
    assert times_values(fetch(src, START)) == ([START], [10.0])  # the replay starts here
    assert times_values(fetch(src, START + 1)) == ([START + 1], [11.0])
    assert times_values(fetch(src, START + 2.5)) == ([START + 2], [12.0])
    assert fetch(src, START + 2.5) == []  # nothing new at the same instant
    assert times_values(fetch(src, START + 100)) == ([START + 3, START + 4], [13.0, 14.0])
    assert fetch(src, START + 1000) == []  # the file is done


def test_at_real_time_a_minute_file_gives_a_sample_a_minute(tmp_path: Path) -> None:
    src = source(tmp_path)
    assert src.interval == 60.0
    assert times_values(fetch(src, START)) == ([START], [10.0])  # stamped with the start
    assert fetch(src, START + 59) == []
    assert times_values(fetch(src, START + 60)) == ([START + 60], [11.0])


def test_the_metric_name_is_the_value_column_in_lower_case(tmp_path: Path) -> None:
    src = source(tmp_path, speed=60)
    fetch(src, START)
    (b,) = fetch(src, START + 10)
    assert b.labels == {"__name__": "cpu_utilization"}
    assert b.t.dtype == np.float64 and b.v.dtype == np.float64


@pytest.mark.parametrize(
    ("header", "name"),
    [
        pytest.param("timestamp,value", "value", id="plain"),
        pytest.param(
            "timestamp,Requests Per-Second", "requests_per_second", id="spaces-and-dashes"
        ),
        pytest.param("time,HTTP:errors", "http:errors", id="colon-kept"),
    ],
)
def test_metric_names_are_made_valid(tmp_path: Path, header: str, name: str) -> None:
    src = source(tmp_path, f"{header}\n1700000000,1\n1700000060,2\n", speed=60)
    fetch(src, START)
    (b,) = fetch(src, START + 10)
    assert b.labels == {"__name__": name}


def test_value_column_picks_one_of_several(tmp_path: Path) -> None:
    text = "timestamp,cpu,mem\n1700000000,1,100\n1700000060,2,200\n"
    src = source(tmp_path, text, value_column="mem", speed=60)
    (first,) = fetch(src, START)
    (b,) = fetch(src, START + 10)
    assert b.labels == {"__name__": "mem"}
    assert first.v.tolist() + b.v.tolist() == [100.0, 200.0]


def test_loop_wraps_with_increasing_times(tmp_path: Path) -> None:
    src = source(tmp_path, speed=60, loop=True)
    seen_t, seen_v = times_values(fetch(src, START))
    for now in (START + 3, START + 7, START + 7.5, START + 16.5):  # the last covers two passes
        t, v = times_values(fetch(src, now))
        seen_t += t
        seen_v += v
    assert seen_t == [START + i for i in range(17)]
    assert seen_v == [10.0 + i % 5 for i in range(17)]
    assert (np.diff(seen_t) > 0).all()


def test_without_loop_the_replay_ends(tmp_path: Path) -> None:
    src = source(tmp_path, speed=60)
    first, _ = times_values(fetch(src, START))
    t, _ = times_values(fetch(src, START + 1000))
    assert first + t == [START + i for i in range(5)]
    assert fetch(src, START + 2000) == []


def test_missing_values_stay_nan_for_the_engine(tmp_path: Path) -> None:
    text = "timestamp,value\n1700000000,1\n1700000060,\n1700000120,3\n"
    src = source(tmp_path, text, speed=60)
    _, first = times_values(fetch(src, START))
    _, v = times_values(fetch(src, START + 10))
    v = first + v
    assert v[0] == 1.0 and np.isnan(v[1]) and v[2] == 3.0


def test_interval_has_a_floor(tmp_path: Path) -> None:
    assert source(tmp_path, speed=1e6).interval == 0.05


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Date,Timestamp,CPU_Utilization\n2024-03-01,00:00:00,10\n", id="one-row"),
        pytest.param("timestamp,value\n1700000000,1\nnot-a-time,2\n", id="one-good-row"),
        pytest.param("timestamp,value\n", id="header-only"),
    ],
)
def test_a_file_too_short_to_replay_is_a_data_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(DataError) as info:
        source(tmp_path, text)
    assert "data.csv" in str(info.value)


def test_close_is_harmless(tmp_path: Path) -> None:
    src = source(tmp_path)
    asyncio.run(src.close())
