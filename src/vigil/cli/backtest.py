"""`vigil backtest`: replay a CSV file through a detector and list the anomalies it finds."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vigil.backtest.run import BacktestResult, event_record, multivariate_params, run_backtest, write_results_csv
from vigil.cli.root import status, stdout_console
from vigil.detection.decision import DecisionConfig
from vigil.detection.detectors import DETECTORS
from vigil.detection.pipeline import build_pipeline
from vigil.detection.settings import DEFAULTS
from vigil.errors import ConfigError
from vigil.formatting import iso, number_texts, score_text
from vigil.outputs.event import event_json
from vigil.sources.csv import CsvSeries, read_csv

__all__ = ["backtest"]

LONG_INPUT = 50_000  # points from which a progress bar is shown even when stderr is not a terminal
_DEFAULTS = DEFAULTS.decision

_DETECTOR_NAMES = ", ".join([*sorted(DETECTORS), "ensemble", "default"])

def backtest(
    file: Annotated[
        Path,
        typer.Argument(help="CSV file: Date,Timestamp,value (seed format) or timestamp,value."),
    ],
    detector: Annotated[
        str,
        typer.Option(help=f"Detector: {_DETECTOR_NAMES} (default and ensemble combine several)."),
    ] = DEFAULTS.detector,
    param: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DETECTOR.KEY=VALUE",
            help="Detector parameter, repeatable, such as level.window=500.",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help=f"Anomaly score (0 to 1) from which a point is hot. Default {_DEFAULTS.threshold}."
        ),
    ] = None,
    direction: Annotated[
        str | None, typer.Option(help=f"above, below or both. Default {_DEFAULTS.direction}.")
    ] = None,
    persistence: Annotated[
        str | None,
        typer.Option(
            metavar="K/N",
            help=f"Open an event when K of the last N points are hot, such as 3/5. Default {_DEFAULTS.persistence}.",
        ),
    ] = None,
    resolve_after: Annotated[
        int | None,
        typer.Option(
            help=f"Points in a row that are not hot before an event ends. Default {_DEFAULTS.resolve_after}."
        ),
    ] = None,
    cooldown: Annotated[
        int | None,
        typer.Option(
            help=f"Points after an event with no new event. Default {_DEFAULTS.cooldown}."
        ),
    ] = None,
    min_abs_deviation: Annotated[
        float | None,
        typer.Option(help="A hot point differs from the expected value by at least this much."),
    ] = None,
    min_rel_deviation: Annotated[
        float | None, typer.Option(help="... and by at least this fraction of the expected value.")
    ] = None,
    valid_range: Annotated[
        str | None,
        typer.Option(
            metavar="LOW:HIGH",
            help="Values outside are impossible readings, ignored (such as 0:100).",
        ),
    ] = None,
    no_calibrate: Annotated[
        bool,
        typer.Option(
            "--no-calibrate",
            help="Let each detector's own band decide instead of calibrated scores.",
        ),
    ] = False,
    value_column: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME", help="Value column; repeat for a multivariate series (iforest)."
        ),
    ] = None,
    skip_bad_rows: Annotated[
        bool, typer.Option("--skip-bad-rows", help="Skip unreadable rows and count them.")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option(metavar="PNG", help="Write a plot of the series and anomalies.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(metavar="CSV", help="Write every point with its band and score.")
    ] = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="Print events as JSON lines instead of a table.")
    ] = False,
) -> None:
    """Replay a CSV file through a detector and list the anomalies it finds.

    Times without an offset are read as UTC; the table shows UTC.
    """
    decision = _decision_config(
        threshold=threshold,
        direction=direction,
        persistence=persistence,
        resolve_after=resolve_after,
        cooldown=cooldown,
        min_abs_deviation=min_abs_deviation,
        min_rel_deviation=min_rel_deviation,
    )
    bounds = _parse_range(valid_range)
    params = _parse_params(param or [])
    for option, target in (("--output", output), ("--plot", plot)):
        if target is not None and not target.parent.is_dir():
            raise ConfigError(f"{option} {target}: folder {target.parent} does not exist")
    err = Console(stderr=True, highlight=False)
    with status(err, f"reading {file}"):
        series = read_csv(file, value_columns=value_column, skip_bad_rows=skip_bad_rows)
    _notes(err, series)
    dims = 1 if series.values.ndim == 1 else series.values.shape[1]
    pipeline = build_pipeline(
        detector,
        multivariate_params(detector, params, dims),
        decision,
        calibrate=not no_calibrate,
        valid_range=bounds,
    )
    with _progress(err, len(series)) as advance:
        result = run_backtest(series, pipeline, progress=advance)
    if output is not None:
        write_results_csv(result, output)
    if plot is not None:
        from vigil.backtest.plot import plot_backtest  # matplotlib is slow to import; only when asked

        plot_backtest(result, plot, title=f"{file.name}: {', '.join(series.columns)} ({detector})")

    summary = _summary(series, result)
    if json_lines:
        source = {"file": str(file), "column": ",".join(series.columns)}
        for e in result.events:
            typer.echo(json.dumps(event_json(event_record(e, result, source, detector)), allow_nan=False))
        err.print(summary)
        return
    out = stdout_console()
    if result.events:
        out.print(
            _events_table(result, f"{file.name}: {', '.join(series.columns)}, detector {detector}")
        )
    else:
        out.print("no anomalies found")
    out.print(summary)


_OPTION_OF = {
    "k": "persistence",
    "n": "persistence",
}  # DecisionConfig field -> option, where they differ


def _decision_config(persistence: str | None, **given: Any) -> DecisionConfig:
    kwargs = {k: v for k, v in given.items() if v is not None}
    if persistence is not None:
        kwargs["k"], kwargs["n"] = _parse_persistence(persistence)
    try:
        return DecisionConfig(**kwargs)
    except ConfigError as exc:  # name the option, not the config key
        key = str(exc).split(" ", 1)[0]
        option = _OPTION_OF.get(key, key).replace("_", "-")
        shown = persistence if option == "persistence" else kwargs.get(key)
        raise ConfigError(f"--{option} {shown}: {exc}") from exc


def _parse_persistence(text: str) -> tuple[int, int]:
    """``"3/5"`` -> (3, 5); ``"2"`` -> (2, 2)."""
    k, _, n = text.strip().partition("/")
    try:
        return int(k), int(n or k)
    except ValueError:
        raise ConfigError(
            f"--persistence is {text!r}; write K/N such as 3/5 (K of the last N points)"
        ) from None


def _parse_range(text: str | None) -> tuple[float, float] | None:
    """``"0:100"`` -> (0.0, 100.0); an empty side is unbounded (``"0:"``)."""
    if text is None:
        return None
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError(text)
        bounds = (
            float(low) if low.strip() else -math.inf,
            float(high) if high.strip() else math.inf,
        )
    except ValueError:
        raise ConfigError(f"--valid-range is {text!r}; write LOW:HIGH such as 0:100") from None
    if not bounds[0] < bounds[1]:
        raise ConfigError(f"--valid-range is {text!r}; LOW must be below HIGH")
    return bounds


def _parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["ewma.span=20"]`` -> ``{"ewma": {"span": 20}}``; values are int, float, bool or str."""
    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        name, dot, field = key.strip().partition(".")
        if not (eq and dot and name and field):
            raise ConfigError(f"--param is {item!r}; write DETECTOR.KEY=VALUE such as ewma.span=20")
        params.setdefault(name, {})[field] = _parse_value(raw.strip())
    return params


def _parse_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    return text


@contextmanager
def _progress(console: Console, total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr when it is a terminal or the input is long; else nothing."""
    if not (console.is_terminal or total >= LONG_INPUT):
        yield None
        return
    bar = Progress(
        TextColumn("backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=console.is_terminal,
    )
    with bar:
        task = bar.add_task("backtest", total=total)
        yield lambda done: bar.update(task, completed=done)


def _notes(err: Console, series: CsvSeries) -> None:
    if series.skipped:
        line, why = series.skipped[0]
        err.print(
            escape(
                f"note: skipped {len(series.skipped)} unreadable rows (first: line {line}, {why})"
            )
        )
    if series.out_of_order:
        err.print(f"note: {series.out_of_order} rows were out of time order; sorted by time")
    if series.duplicates:
        err.print(
            f"note: {series.duplicates} rows repeated an earlier timestamp; kept the last of each"
        )


def _summary(series: CsvSeries, result: BacktestResult) -> str:
    n_events = len(result.events)
    return (
        f"{len(result):,} points, {int(result.anomaly.sum()):,} anomalous, "
        f"{n_events} event{'s' if n_events != 1 else ''}, {len(series.skipped):,} skipped rows, "
        f"{result.points_per_second:,.0f} points/s"
    )


def _events_table(result: BacktestResult, title: str) -> Table:
    step = float(np.median(np.diff(result.t))) if len(result) > 1 else 0.0
    last = float(result.t[-1]) if len(result) else 0.0
    times = [e.started_at for e in result.events] + [e.ended_at or 0.0 for e in result.events]
    seconds = any(round(t) % 60 for t in times)  # show seconds only when some time needs them
    years = {_time(t)[:4] for t in times if t}
    cut = 5 if len(years) == 1 else 0  # one year: say it once, in the caption
    rows = []
    for e in result.events:
        end = e.ended_at if e.ended_at is not None else last
        duration = _duration(end - e.started_at + step) + ("+" if e.ended_at is None else "")
        start_text = _time(e.started_at, seconds)[cut:]
        end_text = "open" if e.ended_at is None else _time(e.ended_at, seconds)[cut:]
        if end_text[: 10 - cut] == start_text[: 10 - cut]:  # same day: the time is enough
            end_text = end_text[11 - cut :]
        observed, expected, lower, upper = number_texts(e.observed, e.expected, e.lower, e.upper)
        rows.append(
            [
                str(e.number),
                start_text,
                end_text,
                duration,
                score_text(e.peak_score),
                observed,
                expected,
                f"{lower}–{upper}",  # an en dash: "-" would read as a minus
            ]
        )
    table = Table(
        title=escape(title),
        caption=f"times in UTC, {years.pop()}" if cut else "times in UTC",
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    names = ("#", "start", "end", "duration", "peak score", "observed", "expected", "band")
    right = ("#", "duration", "peak score", "observed", "expected")
    for k, name in enumerate(names):
        # cells keep their full width; on a narrow terminal the headers wrap instead
        width = max((len(row[k]) for row in rows), default=1)
        table.add_column(name, justify="right" if name in right else "left", min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


def _time(t: float, seconds: bool = True) -> str:
    """``2024-03-02 01:00:00`` (UTC), or to the minute.

    >>> _time(1709341200.0), _time(1709341200.0, seconds=False)
    ('2024-03-02 01:00:00', '2024-03-02 01:00')
    """
    return str(iso(t))[: 19 if seconds else 16].replace("T", " ")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((d, "d"), (h, "h"), (m, "m"), (s, "s")) if v]
    return " ".join(parts[:2]) or "0s"
