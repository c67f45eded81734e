"""`vigil bench noise` with few seeds and days: the printed table, the BENCHMARKS.md section, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.bench.noise import FAMILIES
from vigil.bench.noise_run import run_noise
from vigil.cli import app

runner = CliRunner()


def bench(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["bench", "noise", *args])
    return r.exit_code, r.stdout, r.stderr


def cells(stdout: str, first: str) -> list[str]:
    """A row of the printed table, split on runs of spaces."""
    [line] = [line for line in stdout.splitlines() if line.strip().startswith(first + " ")]
    return re.split(r"\s{2,}", line.strip())


def test_prints_false_events_per_series_day_by_family_and_step() -> None:
    code, stdout, stderr = bench("--step", "1h", "--step", "5m", "--days", "3", "--seeds", "2")
    assert code == 0, stderr
    assert "1h, 3 d:" in stdout and "5m, 3 d:" in stdout
    hourly, five = run_noise(3600.0, days=3, seeds=2), run_noise(300.0, days=3, seeds=2)
    for family in FAMILIES:
        row = cells(stdout, family)
        assert row[2] == f"{hourly.tally(family).events} / 6"
        assert row[5] == f"{five.tally(family).events} / 6"
        assert row[1] == f"{hourly.tally(family).rate:.4f}"
    assert cells(stdout, "whole suite")[1:3] == [f"{hourly.tally().rate:.4f}", f"{hourly.tally().events} / 60"]
    assert cells(stdout, "largest family")[2].startswith(hourly.largest()[0] + ": ")
    assert cells(stdout, "1h")[:4] == ["1h", "3", "20", "1,440"]
    assert cells(stdout, "5m")[:4] == ["5m", "3", "20", "17,280"]
    assert "points/s" in stderr


def test_the_same_step_twice_runs_once() -> None:
    code, stdout, _ = bench("--step", "1h", "--step", "60m", "--days", "2", "--seeds", "2")
    assert code == 0
    assert [line.split()[0] for line in stdout.splitlines() if re.match(r"\s*\d+[smh]\s", line)] == ["1h"]


def test_writes_a_benchmarks_section_with_machine_date_and_command(tmp_path: Path) -> None:
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    code, stdout, _ = bench("--step", "1h", "--days", "2", "--seeds", "2", "--benchmarks-md", str(md))
    assert code == 0
    text = md.read_text()
    assert "<!-- other:start -->\nkept\n<!-- other:end -->" in text
    section = text.split("<!-- noise:start -->", 1)[1].split("<!-- noise:end -->", 1)[0]
    assert "## False alarms on calm series (vigil bench noise)" in section
    assert "- machine: " in section and re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", section)
    assert (f"- command: `vigil bench noise --step 1h --seeds 2 --days 2 --detector default "
            f"--benchmarks-md {md}`") in section
    for family in FAMILIES:
        row = cells(stdout, family)
        assert f"| {family} | {row[1]} | {row[2]} | {row[3]} |" in section
    assert "| whole suite | " in section and "| largest family | " in section
    assert "| 1h | 2 | 20 | 960 | " in section

    code, _, _ = bench("--step", "1h", "--days", "2", "--seeds", "4", "--benchmarks-md", str(md))
    assert code == 0
    again = md.read_text()
    assert again.count("<!-- noise:start -->") == 1 and "--seeds 4" in again


def test_default_steps_are_15s_1m_and_1h() -> None:
    code, stdout, _ = bench("--days", "1", "--seeds", "2")
    assert code == 0
    for label in ("15s, 1 d:", "1m, 1 d:", "1h, 1 d:"):
        assert label in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--step", "0s"], r"--step is '0s'; write a whole number of seconds from 1s to 6h", id="zero-step"),
        pytest.param(["--step", "15"], r"--step is '15'; write a whole number of seconds", id="no-unit"),
        pytest.param(["--step", "1d"], r"--step is '1d'; write a whole number of seconds from 1s to 6h", id="long-step"),
        pytest.param(["--seeds", "1"], r"--seeds is 1; write a whole number >= 2 \(even seeds choose, odd seeds check\)",
                     id="one-seed"),
        pytest.param(["--seeds", "many"], r"Invalid value for '--seeds': .*integer", id="not-a-number"),
        pytest.param(["--days", "0"], r"--days is 0; write a number of days that holds at least two steps of 15s",
                     id="no-days"),
        pytest.param(["--detector", "nope"], r"--detector is 'nope'; write one of default, .*seed-iforest",
                     id="unknown-detector"),
        pytest.param(["--benchmarks-md", "{tmp}/missing/B.md"], r"--benchmarks-md \S+/missing/B.md: not a file in an "
                     r"existing folder", id="no-folder"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, stdout, stderr = bench(*[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert re.fullmatch("error: " + message + r"[^\n]*\n", stderr), stderr
