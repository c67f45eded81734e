"""`vigil backtest` end to end: the library calls, the typer app, and the installed script."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vigil.backtest.plot import ANOMALY_COLOR, plot_backtest
from vigil.backtest.run import run_backtest, write_results_csv
from vigil.cli import app
from vigil.cli import backtest as cli
from vigil.detection.detectors import DEFAULT_MEMBERS
from vigil.detection.pipeline import build_pipeline
from vigil.errors import ConfigError
from vigil.sources.csv import CsvSeries, read_csv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cpu_spike.csv"
SPIKE_ROW, SPIKE_LEN = 1500, 5  # as injected by examples/make_cpu_spike.py
SPIKE_START = "03-02 01:00"  # as the table shows it: the year is in the caption
WARM_UP = 100  # rows after which every detector has an opinion
# One sample a minute: in the first day the tails are young, and the first steep rise of the
# daily cycle may open an event; from the second day on, only the spike.
FIRST_DAY = 1440

runner = CliRunner()


def spike_series(n: int = 600, at: int = 450, seed: int = 1) -> CsvSeries:
    x = 50 + np.random.default_rng(seed).normal(0, 1, n)
    x[at] = 90
    return CsvSeries(t=1709251200 + 60.0 * np.arange(n), values=x, columns=("cpu",))


def event_rows(stdout: str) -> list[str]:
    """The rows of the events table: an event number, then its start."""
    return [line for line in stdout.splitlines() if re.match(r"\s*\d+\s+\d\d-\d\d \d\d:\d\d", line)]


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --- the library: run_backtest, write_results_csv, plot_backtest -------------------


def test_example_spike_is_the_only_event_after_the_first_day() -> None:
    series = read_csv(EXAMPLE)
    result = run_backtest(series, build_pipeline("default"))
    later = [e for e in result.events if e.started_at >= series.t[FIRST_DAY]]
    [event] = later
    assert event.state == "resolved"
    assert event.started_at == datetime(2024, 3, 2, 1, 0, tzinfo=UTC).timestamp()
    assert event.observed > 90
    assert event.peak_score == max(e.peak_score for e in result.events)
    flagged = np.flatnonzero(result.anomaly)
    assert set(range(SPIKE_ROW, SPIKE_ROW + SPIKE_LEN)) <= set(flagged)
    assert flagged[flagged >= FIRST_DAY].min() == SPIKE_ROW


def test_results_do_not_depend_on_the_chunk_size() -> None:
    series = spike_series()
    a = run_backtest(series, build_pipeline("default"), chunk=1)
    b = run_backtest(series, build_pipeline("default"), chunk=256)
    for name in ("expected", "lower", "upper", "score", "hot", "anomalous", "warming_up"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.events == b.events


def test_progress_is_called_with_points_done() -> None:
    done: list[int] = []
    run_backtest(spike_series(n=500), build_pipeline("ewma"), chunk=200, progress=done.append)
    assert done == [200, 400, 500]


def test_event_still_open_at_the_end_is_reported_firing_without_end() -> None:
    series = spike_series(n=452, at=450)
    result = run_backtest(series, build_pipeline("default"))
    [event] = result.events
    assert event.state == "firing"
    assert event.ended_at is None
    assert result.anomalous[-1]


def test_bad_chunk_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="chunk"):
        run_backtest(spike_series(), build_pipeline("ewma"), chunk=0)


def test_results_csv_has_one_line_per_point_with_iso_utc_times(tmp_path: Path) -> None:
    series = spike_series()
    result = run_backtest(series, build_pipeline("default"))
    path = tmp_path / "out.csv"
    write_results_csv(result, path)
    rows = read_results(path)
    assert list(rows[0]) == [
        "timestamp",
        "value",
        "expected",
        "lower",
        "upper",
        "score",
        "anomaly",
        "warming_up",
    ]
    assert len(rows) == len(series)
    assert rows[0]["timestamp"] == "2024-03-01T00:00:00Z"
    assert rows[0]["expected"] == "" and rows[0]["score"] == "" and rows[0]["warming_up"] == "1"
    assert float(rows[450]["value"]) == 90.0
    assert next(i for i, r in enumerate(rows) if r["anomaly"] == "1") == 450


def test_missing_values_pass_through_as_gaps(tmp_path: Path) -> None:
    series = spike_series()
    series.values[100:110] = np.nan
    result = run_backtest(series, build_pipeline("default"))
    assert result.invalid[100:110].all()
    assert not result.anomaly[100:110].any()
    assert [e.started_at for e in result.events] == [series.t[450]]


def test_multivariate_series_runs_with_iforest() -> None:
    rng = np.random.default_rng(3)
    cpu = 50 + rng.normal(0, 2, 400)
    values = np.column_stack([cpu, 2 * cpu + rng.normal(0, 1, 400)])
    series = CsvSeries(t=60.0 * np.arange(400), values=values, columns=("cpu", "mem"))
    from vigil.backtest.run import multivariate_params

    params = multivariate_params(
        "iforest", {"iforest": {"window": 100, "refit_every": 100}}, dims=2
    )
    result = run_backtest(series, build_pipeline("iforest", params))
    np.testing.assert_array_equal(result.value, cpu)
    assert not np.isnan(result.score[150:]).any()


def test_plot_has_the_asked_size_and_red_anomaly_marks(tmp_path: Path) -> None:
    result = run_backtest(spike_series(), build_pipeline("default"))
    path = tmp_path / "plot.png"
    plot_backtest(result, path, title="spike")
    assert_plot(path)


def assert_plot(path: Path) -> None:
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (1400, 700)
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    red = tuple(int(ANOMALY_COLOR[i : i + 2], 16) for i in (1, 3, 5))
    assert np.count_nonzero((pixels == red).all(axis=1)) >= 20  # the anomaly markers
    assert len(np.unique(pixels, axis=0)) > 50  # not blank


# --- the typer app, through CliRunner -------------------------------------------------


def test_backtest_prints_the_spike_in_the_events_table() -> None:
    result = runner.invoke(app, ["backtest", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    rows = event_rows(result.stdout)
    [spike] = [row for row in rows if SPIKE_START in row]
    assert spike == rows[-1]
    assert "92.6" in spike  # the observed peak, 92.63, to 3 significant digits
    assert "times in UTC, 2024" in result.stdout
    assert (
        "2,000 points" in result.stdout
        and f"{len(rows)} event" in result.stdout
        and "0 skipped rows" in result.stdout
    )


def test_backtest_json_prints_one_event_per_line() -> None:
    result = runner.invoke(app, ["backtest", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    event = events[-1]
    assert event["started_at"] == "2024-03-02T01:00:00Z"
    assert event["state"] == "resolved"
    assert event["series"] == {"file": str(EXAMPLE), "column": "CPU_Utilization"}
    assert {"level"} <= set(event["detectors"]) <= set(DEFAULT_MEMBERS)
    assert "2,000 points" in result.stderr


def test_backtest_output_flags_the_spike_and_nothing_in_the_calm_part(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    result = runner.invoke(app, ["backtest", str(EXAMPLE), "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_results(out)
    anomalies = [i for i, r in enumerate(rows) if r["anomaly"] == "1" and i >= FIRST_DAY]
    assert anomalies[0] == SPIKE_ROW
    assert all(rows[i]["anomaly"] == "1" for i in range(SPIKE_ROW, SPIKE_ROW + SPIKE_LEN))
    assert rows[SPIKE_ROW]["timestamp"] == "2024-03-02T01:00:00Z"
    assert all(r["warming_up"] == "0" for r in rows[WARM_UP:])


def test_decision_options_reach_the_pipeline() -> None:
    plain = runner.invoke(app, ["backtest", str(EXAMPLE), "--json"])
    strict = runner.invoke(
        app,
        [
            "backtest",
            str(EXAMPLE),
            "--json",
            "--persistence",
            "3/5",
            "--param",
            "level.window=100",
            "--min-abs-deviation",
            "30",
            "--direction",
            "above",
            "--threshold",
            "0.999",
        ],
    )
    assert strict.exit_code == 0, strict.output
    spike = "2024-03-02T01:00:00Z"
    a = next(e for e in map(json.loads, plain.stdout.splitlines()) if e["started_at"] >= spike)
    b = next(e for e in map(json.loads, strict.stdout.splitlines()) if e["started_at"] >= spike)
    assert b["threshold"] == 0.999
    assert b["started_at"] == a["started_at"] == "2024-03-02T01:00:00Z"
    assert (a["peak_at"], b["peak_at"]) == (
        "2024-03-02T01:00:00Z",
        "2024-03-02T01:02:00Z",
    )  # opened at 3 of 5
    assert b["ended_at"] == "2024-03-02T01:04:00Z"  # only values 30 above the expected are hot


def test_valid_range_hides_impossible_readings() -> None:
    result = runner.invoke(app, ["backtest", str(EXAMPLE), "--valid-range", "0:50", "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(e["observed"] <= 50 and e["started_at"] != "2024-03-02T01:00:00Z" for e in events)


def test_no_calibrate_lets_the_band_decide() -> None:
    result = runner.invoke(
        app, ["backtest", str(EXAMPLE), "--no-calibrate", "--detector", "zscore", "--json"]
    )
    assert result.exit_code == 0, result.output
    starts = [json.loads(line)["started_at"] for line in result.stdout.splitlines()]
    assert "2024-03-02T01:00:00Z" in starts


def test_skip_bad_rows_is_counted_in_the_summary(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().splitlines()
    text.insert(10, "2024-03-01,00:09:30,lots")
    text.insert(20, "garbage")
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(text) + "\n")
    result = runner.invoke(app, ["backtest", str(path), "--skip-bad-rows"])
    assert result.exit_code == 0, result.output
    assert "2 skipped rows" in result.stdout
    assert "note: skipped 2 unreadable rows (first: line 11" in result.stderr


def test_multivariate_columns_run_with_iforest(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    cpu = 50 + rng.normal(0, 2, 300)
    path = tmp_path / "host.csv"
    path.write_text(
        "timestamp,cpu,mem\n"
        + "".join(f"{60 * i},{c:.2f},{2 * c:.2f}\n" for i, c in enumerate(cpu))
    )
    args = [
        "backtest",
        str(path),
        "--value-column",
        "cpu",
        "--value-column",
        "mem",
        "--detector",
        "iforest",
        "--param",
        "iforest.window=50",
        "--param",
        "iforest.refit_every=100",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "300 points" in result.stdout


def test_progress_bar_does_not_break_piped_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "LONG_INPUT", 100)  # the example counts as long: the bar is drawn
    result = runner.invoke(app, ["backtest", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert SPIKE_START in result.stdout
    assert "backtest" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["backtest", "nope.csv"], "nope.csv: no such file", id="missing-file"),
        pytest.param(
            ["backtest", "{ex}", "--detector", "magic"],
            "detector is 'magic'",
            id="unknown-detector",
        ),
        pytest.param(
            ["backtest", "{ex}", "--param", "ewma"], "DETECTOR.KEY=VALUE", id="param-syntax"
        ),
        pytest.param(
            ["backtest", "{ex}", "--param", "level.spam=1"],
            "unknown parameter(s) spam",
            id="param-key",
        ),
        pytest.param(
            ["backtest", "{ex}", "--persistence", "3-5"], "write K/N", id="persistence-syntax"
        ),
        pytest.param(
            ["backtest", "{ex}", "--persistence", "6/5"],
            "--persistence 6/5: k is 6",
            id="persistence-k",
        ),
        pytest.param(
            ["backtest", "{ex}", "--threshold", "2"], "--threshold 2.0: threshold", id="threshold"
        ),
        pytest.param(
            ["backtest", "{ex}", "--threshold", "high"],
            "Invalid value for '--threshold'",
            id="not-float",
        ),
        pytest.param(["backtest", "{ex}", "--direction", "up"], "--direction up", id="direction"),
        pytest.param(
            ["backtest", "{ex}", "--valid-range", "100"], "write LOW:HIGH", id="range-syntax"
        ),
        pytest.param(
            ["backtest", "{ex}", "--valid-range", "9:1"], "LOW must be below HIGH", id="range-order"
        ),
        pytest.param(
            ["backtest", "{ex}", "--value-column", "RAM"], "no column 'RAM'", id="value-column"
        ),
        pytest.param(
            ["backtest", "{ex}", "--output", "/nonexistent/o.csv"],
            "does not exist",
            id="output-dir",
        ),
        pytest.param(
            ["backtest", "{ex}", "--bogus"], "No such option: --bogus", id="unknown-option"
        ),
        pytest.param(["backtest"], "Missing argument", id="missing-argument"),
        pytest.param(["frobnicate"], "No such command", id="unknown-command"),
    ],
)
def test_user_errors_exit_2_with_one_error_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, [a.replace("{ex}", str(EXAMPLE)) for a in args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_broken_row_error_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("timestamp,value\n1709251200,1\n1709251260,2,3\n")
    result = runner.invoke(app, ["backtest", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}, line 3: 3 fields, expected 2")
    assert "use --skip-bad-rows to skip such rows" in result.stderr


def test_several_value_columns_with_a_univariate_detector_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "host.csv"
    path.write_text(
        "timestamp,cpu,mem\n" + "".join(f"{60 * i},{i % 7},{i % 5}\n" for i in range(50))
    )
    ambiguous = runner.invoke(app, ["backtest", str(path)])
    assert ambiguous.exit_code == 2
    assert (
        "several numeric columns (cpu, mem)" in ambiguous.stderr
        and "--value-column" in ambiguous.stderr
    )
    both = runner.invoke(
        app, ["backtest", str(path), "--value-column", "cpu", "--value-column", "mem"]
    )
    assert both.exit_code == 2
    assert both.stderr.startswith("error: detector level does not take samples of 2 values")


def test_top_level_help_says_what_vigil_is() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "anomaly detection" in result.stdout
    assert "backtest" in result.stdout


def test_param_values_are_typed() -> None:
    assert cli._parse_params(
        ["ewma.span=20", "ewma.k=2.5", "iforest.features=raw", "x.flag=true"]
    ) == {
        "ewma": {"span": 20, "k": 2.5},
        "iforest": {"features": "raw"},
        "x": {"flag": True},
    }


# --- the installed script, in a real subprocess -----------------------------------------


def test_console_script_writes_table_plot_and_results(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("vigil")
    png, out = tmp_path / "spike.png", tmp_path / "results.csv"
    proc = subprocess.run(
        [
            str(script),
            "backtest",
            "examples/cpu_spike.csv",
            "--plot",
            str(png),
            "--output",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = event_rows(proc.stdout)
    assert SPIKE_START in rows[-1]
    results = read_results(out)
    assert [r["anomaly"] for r in results[SPIKE_ROW : SPIKE_ROW + SPIKE_LEN]] == ["1"] * SPIKE_LEN
    assert not any(r["anomaly"] == "1" for r in results[FIRST_DAY:SPIKE_ROW])
    assert_plot(png)


def test_python_dash_m_vigil_reports_errors_the_same_way() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vigil", "backtest", "nope.csv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: nope.csv: no such file\n"
    assert proc.stdout == ""


def test_event_open_at_the_end_shows_open_in_the_table(tmp_path: Path) -> None:
    series = spike_series(n=452, at=450)
    path = tmp_path / "ends_high.csv"
    path.write_text(
        "timestamp,value\n"
        + "".join(f"{t:.0f},{v!r}\n" for t, v in zip(series.t, series.values.tolist(), strict=True))
    )
    result = runner.invoke(app, ["backtest", str(path)])
    assert result.exit_code == 0, result.output
    [row] = event_rows(result.stdout)
    assert " open " in row
    assert "2m+" in row  # lasted at least until the last point
