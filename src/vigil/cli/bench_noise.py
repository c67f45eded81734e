"""`vigil bench noise`: count the false alarms a detector raises on generated calm series.

Registered in the `bench` group by `vigil.cli`; errors end the same way as every command's
(one ``error:`` line, exit code 2), all checked before anything runs.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vigil.cli.root import status, stdout_console
from vigil.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from vigil.bench.noise_run import NoiseRun

__all__ = ["SECTION", "noise"]

SECTION = "noise"


def _command(steps: Sequence[str], seeds: int, days: float | None, detector: str, markdown: Path | None) -> str:
    args = ["vigil", "bench", "noise"]
    for step in steps:
        args += ["--step", step]
    args += ["--seeds", str(seeds)]
    if days is not None:
        args += ["--days", f"{days:g}"]
    args += ["--detector", detector]
    if markdown is not None:
        args += ["--benchmarks-md", str(markdown)]
    return shlex.join(args)


def _check_markdown(path: Path) -> None:
    if path.is_dir() or not path.parent.is_dir():
        raise ConfigError(f"--benchmarks-md {path}: not a file in an existing folder")


def noise(
    step: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DURATION",
            help="Step between samples, repeatable: whole seconds from 1s to 6h. Default: 15s, 1m and 1h.",
        ),
    ] = None,
    seeds: Annotated[
        int,
        typer.Option(metavar="N", help="Series per family and step (seeds 0..N-1; even seeds choose, odd check)."),
    ] = 20,
    days: Annotated[
        float | None,
        typer.Option(
            metavar="D",
            help="Days simulated at every step. Default per step: 80,640 samples' worth, from 14 to 730 days "
            "(15s: 14, 1m: 56, 1h: 730).",
        ),
    ] = None,
    detector: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="What to run: default (what `vigil run` uses), a registered detector alone, calibrated, or a "
            "seed-* entry (as in `vigil bench nab`).",
        ),
    ] = "default",
    benchmarks_md: Annotated[
        Path | None,
        typer.Option("--benchmarks-md", metavar="FILE", help="Also write the tables as a section of this Markdown file."),
    ] = None,
) -> None:
    """Count the events `vigil run` would open on calm generated series: every one is a false alarm.

    Ten families of normal behaviour (Gaussian and heavy-tailed noise, counts, an integer
    gauge, daily and weekly cycles, a bounded random walk, rare blips on zero, a counter's
    rate), `--seeds` series each, stream through the pipeline `vigil run` builds. The
    table gives false events per series-day per family and step, on every seed and on
    the even (choose) and odd (check) seeds apart. The time is the pipeline's alone.
    """
    from vigil.bench.nab_run import detection
    from vigil.bench.noise_run import DEFAULT_STEPS, check_days, check_seeds, parse_step, run_noise

    texts = list(step or DEFAULT_STEPS)
    steps: dict[float, str] = {}  # 60s and 1m run once
    try:  # every message starts "<option> is ...": name the option
        for text in texts:
            steps.setdefault(parse_step(text), text)
        check_seeds(seeds)
        detection(detector)
        for seconds in steps:
            if days is not None:
                check_days(days, seconds)
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from None
    if benchmarks_md is not None:
        _check_markdown(benchmarks_md)

    err = Console(stderr=True, highlight=False)
    runs = []
    for seconds, text in steps.items():
        with status(err, f"running {detector} at {text}"):
            run = run_noise(seconds, days, seeds, detector)
        runs.append(run)
        err.print(escape(
            f"{text}: {len(run.opened):,} series x {run.n:,} points ({run.days:g} days), "
            f"{run.seconds:.2f} s, {run.points_per_second:,.0f} points/s"
        ))

    out = stdout_console(width=240)
    out.print(_rich_table(runs))
    out.print(_rich_runs(runs))
    if benchmarks_md is not None:
        from vigil.bench.markdown import section_header, write_section
        from vigil.bench.noise_table import markdown_tables

        body = section_header("False alarms on calm series (vigil bench noise)",
                              _command(texts, seeds, days, detector, benchmarks_md))
        body += "\n" + markdown_tables(runs) + "\n" + _NOTE
        try:
            write_section(SECTION, body, benchmarks_md)
        except OSError as exc:
            raise ConfigError(f"--benchmarks-md {benchmarks_md}: cannot write it ({exc.strerror or exc})") from None
        err.print(escape(f"tables written to {benchmarks_md}"))


_NOTE = (
    "Events that `vigil run` opens on generated calm series with no incident, each a false alarm, per series-day: "
    "events / (series x simulated days). Families (`vigil.bench.noise`): gaussian 100 + N(0, 5); student_t3 "
    "100 + 5 t(3); poisson_0.2 and poisson_50 counts per step; integer_gauge a count near 20 moving by one; daily "
    "50 + 20 sin(day) + N(0, 2); weekly the same on weekdays and 20 + 5 sin(day) + N(0, 2) on weekends; "
    "random_walk memory used %, a slow walk pulled to 50; zero_blips 0 with about 4 blips of 1 to 4 a day; "
    "counter_rate the per-second rate of a Poisson counter on a daily cycle (5 + 3 sin(day) per second). Every "
    "series starts on Monday 2024-01-01 00:00 UTC and is seeded by (family, seed, step); each (family, seed) is one "
    "series, one row of the pipeline `vigil run` builds, streamed in time order. *choose* is the even seeds, *check* "
    "the odd ones; in the largest-family row each half shows its own largest family. seconds: wall time of the "
    "pipeline's updates (after a warm-up that compiles the numba code), not generating the series; points/s = "
    "points / seconds. One event a month is about 0.033 per series-day. docs/benchmark.md says more.\n"
)


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for i, name in enumerate(columns):  # "15s, 14 d: per series-day" on two lines
        table.add_column(name.replace(": ", ":\n"), justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*map(escape, row))
    return table


def _rich_table(runs: Sequence[NoiseRun]) -> Table:
    from vigil.bench.noise_table import table_columns, table_rows

    return _table(table_columns(runs), table_rows(runs))


def _rich_runs(runs: Sequence[NoiseRun]) -> Table:
    from vigil.bench.noise_table import RUN_COLUMNS, run_rows

    return _table(RUN_COLUMNS, run_rows(runs))
