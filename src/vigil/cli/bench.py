"""`vigil bench`: benchmarks of the detectors on labelled data (`vigil bench nab`, `vigil bench events`).

A group of its own (`bench`), registered on the root app in `vigil.cli`; errors end the
same way there (one ``error:`` line, exit code 2).
"""

from __future__ import annotations

import shlex
import tempfile
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
    from vigil.bench.events_table import EventResult
    from vigil.bench.nab_run import BenchScore

__all__ = ["bench"]

bench = typer.Typer(no_args_is_help=True, help="Benchmarks of the detectors on labelled data.")

SECTION = "nab"


def _check_corpus(corpus: Path | None) -> Path:
    if corpus is None:
        raise ConfigError(
            "no NAB corpus given: pass --corpus DIR or set VIGIL_NAB "
            "(a clone of https://github.com/numenta/NAB, with data/ and labels/)"
        )
    if not corpus.is_dir():
        raise ConfigError(f"--corpus {corpus}: no such folder")
    if not (corpus / "data").is_dir() or not (corpus / "labels" / "combined_windows.json").is_file():
        raise ConfigError(
            f"--corpus {corpus} is not a NAB corpus: it needs data/ and labels/combined_windows.json "
            "(as in a clone of https://github.com/numenta/NAB)"
        )
    return corpus


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"--results-dir {folder}: cannot write there ({exc.strerror or exc})") from None


def _command(corpus: Path, names: list[str], results_dir: Path, markdown: Path | None) -> str:
    args = ["vigil", "bench", "nab", "--corpus", str(corpus)]
    for name in names:
        args += ["--detector", name]
    args += ["--results-dir", str(results_dir)]
    if markdown is not None:
        args += ["--benchmarks-md", str(markdown)]
    return shlex.join(args)


@bench.command("nab")
def nab(
    corpus: Annotated[
        Path | None,
        typer.Option(
            envvar="VIGIL_NAB", show_envvar=True, metavar="DIR",
            help="The NAB corpus folder (data/, labels/): a clone of github.com/numenta/NAB.",
        ),
    ] = None,
    detector: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="What to run, repeatable: default (what `vigil run` uses), record (its members with the record "
            "calibration tuned for NAB), a registered detector alone, calibrated "
            "(spike, level, shift, volatility, seasonal, ewma, zscore, iforest), seed-ewma, seed-zscore, "
            "seed-iforest (the seed settings, own band), or all.",
        ),
    ] = None,
    results_dir: Annotated[
        Path,
        typer.Option(metavar="DIR", help="Where to write the results, in NAB's layout: DIR/NAME/CATEGORY/NAME_FILE.csv."),
    ] = Path("nab-results"),
    benchmarks_md: Annotated[
        Path | None,
        typer.Option(
            "--benchmarks-md", metavar="FILE",
            help="Also write the table as a section of this Markdown file. Default with --detector all: "
            "BENCHMARKS.md in the current folder.",
        ),
    ] = None,
) -> None:
    """Run detectors over the NAB corpus as `vigil run` would see it live, and score them by NAB's rules.

    Each file streams through the same pipeline as `vigil run`, no look-ahead. Scores
    are NAB's normalised scores (null 0, perfect 100) for its three profiles: *swept*
    scores the anomaly score at the threshold that does best on this corpus (NAB's way);
    *alerts* scores the points where an event opened, i.e. Vigil's shipped threshold;
    *alerts, swept* the same with the decision's threshold swept like NAB sweeps a score.
    The time is the pipeline's alone, not reading or writing files.
    """
    from vigil.bench.nab_corpus import load_corpus
    from vigil.bench.nab_run import (
        prepare_corpus,
        resolve_names,
        run_detector,
        score_run,
        write_results,
    )

    names = list(detector or ["default"])
    try:
        runs = resolve_names(names)
    except ConfigError as exc:  # "detector is 'x'; write one of ..."
        raise ConfigError(f"--{exc}") from None
    root = _check_corpus(corpus)
    _check_writable(results_dir)
    markdown = benchmarks_md if benchmarks_md is not None or "all" not in names else Path("BENCHMARKS.md")

    err = Console(stderr=True, highlight=False)
    with status(err, f"reading {root}"):
        files = load_corpus(root)
        prepared = prepare_corpus(files)
    n_points = sum(len(f) for f in files)
    err.print(escape(f"{len(files)} files, {n_points:,} points, {sum(p.n_windows for p in prepared)} windows"))
    results = []
    for name in runs:
        with status(err, f"running {name}"):
            run = run_detector(files, name)
            where = write_results(run, files, results_dir)
            results.append(score_run(run, prepared))
        err.print(escape(f"{name}: {run.seconds:.2f} s, {run.points_per_second:,.0f} points/s; results in {where}"))

    stdout_console(width=240).print(_rich_table(results))
    if markdown is not None:
        from vigil.bench.markdown import section_header, write_section
        from vigil.bench.nab_table import markdown_table

        body = section_header("NAB scores (vigil bench nab)", _command(root, names, results_dir, benchmarks_md))
        body += "\n" + markdown_table(results) + "\n" + _NOTE
        try:
            write_section(SECTION, body, markdown)
        except OSError as exc:
            raise ConfigError(f"--benchmarks-md {markdown}: cannot write it ({exc.strerror or exc})") from None
        err.print(escape(f"table written to {markdown}"))


_NOTE = (
    "NAB v1.1 normalised scores (null detector 0, perfect 100) on the standard, reward-low-FP and "
    "reward-low-FN profiles. *swept*: the anomaly score (`vigil_anomaly_score`) with, per profile, the "
    "threshold that scores best on this very corpus (NAB's own way; `never` when no threshold beats never "
    "firing). *alerts*: the points where an event opened, i.e. what `vigil run` notifies at the threshold it "
    "ships; windows found and false alerts are theirs (standard profile). *alerts, swept*: the same alerts with "
    "the decision threshold that scores best on this corpus, per profile, from 1 - 10^-2 to 1 - 10^-7 in steps "
    "of 0.05 in the exponent: NAB's sweep applied to what `vigil run` notifies (the decision is replayed; "
    "scores do not depend on the threshold). `default` is `vigil run` with no "
    "config; every other name without `seed-` is that registered detector alone with its defaults, "
    "calibrated; `seed-*` are the seed settings (ewma span 10 and 1 σ, zscore window 100 and 3 σ, iforest window 100 and contamination 0.1), "
    "each detector's own band deciding. Every file streams through one pipeline in time order, no look-ahead. "
    "seconds: wall time of the pipeline's updates over the whole corpus (after a warm-up that compiles the "
    "numba code), not reading, writing or scoring; points/s = points / seconds. docs/benchmark.md says more.\n"
)


def _rich_table(results: list[BenchScore]) -> Table:
    from vigil.bench.nab_table import COLUMNS, LEFT, table_rows

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for name in COLUMNS:  # "standard (swept)" on two lines: the cells are short
        table.add_column(name.replace(" (", "\n("), justify="left" if name in LEFT else "right", no_wrap=True)
    for row in table_rows(results):
        table.add_row(*map(escape, row))
    return table


def _events_command(corpus: Path, names: list[str], results_dir: Path | None, markdown: Path | None) -> str:
    args = ["vigil", "bench", "events", "--corpus", str(corpus)]
    for name in names:
        args += ["--detector", name]
    if results_dir is not None:
        args += ["--results-dir", str(results_dir)]
    if markdown is not None:
        args += ["--benchmarks-md", str(markdown)]
    return shlex.join(args)


def _section_name(corpus: Path) -> str:
    """The BENCHMARKS.md section of a corpus: one per corpus folder name, so cmd and NAB keep theirs.

    >>> _section_name(Path("../shared/nab")), _section_name(Path("/data/My Incidents"))
    ('events-nab', 'events-my-incidents')
    """
    slug = "".join(c if c.isalnum() else "-" for c in corpus.resolve().name.lower()).strip("-")
    return f"events-{slug or 'corpus'}"


@bench.command("events")
def events(
    corpus: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="A labelled corpus: NAB's layout (data/, labels/combined_windows.json, labels/index.json if any) "
            "or a folder of CSV files timestamp,value,label.",
        ),
    ] = None,
    detector: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="What to run, repeatable; the names of `vigil bench nab`, or all."),
    ] = None,
    results_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Also write each file's scores and alerts, in NAB's results layout."),
    ] = None,
    benchmarks_md: Annotated[
        Path | None,
        typer.Option(
            "--benchmarks-md", metavar="FILE",
            help="Also write the table as a section of this Markdown file (one section per corpus folder name). "
            "Default with --detector all: BENCHMARKS.md in the current folder.",
        ),
    ] = None,
) -> None:
    """Score detectors event by event, as an operator counts pages, on any labelled corpus.

    Each file streams through the pipeline `vigil run` builds, no look-ahead. Each labelled
    window is an event, caught by an alert from 5 rows before it to its end; alerts
    elsewhere are false alerts (a run of them once per hour). The table gives, for all files
    and for each half (files by name, alternately), the alerts at the shipped settings
    (caught, false alerts, precision, recall, F1, false alerts per series-day) and the
    oracle: the anomaly score at the threshold with the best F1 on those very files.
    """
    from vigil.bench.events_table import NOTE, markdown_table, score_events
    from vigil.bench.labelled import load_labelled
    from vigil.bench.nab_run import resolve_names, run_detector, write_results

    names = list(detector or ["default"])
    try:
        runs = resolve_names(names)
    except ConfigError as exc:  # "detector is 'x'; write one of ..."
        raise ConfigError(f"--{exc}") from None
    if corpus is None:
        raise ConfigError("no corpus given: pass --corpus DIR (NAB's layout, or CSV files with a label column)")
    if not corpus.is_dir():
        raise ConfigError(f"--corpus {corpus}: no such folder")
    if results_dir is not None:
        _check_writable(results_dir)
    markdown = benchmarks_md if benchmarks_md is not None or "all" not in names else Path("BENCHMARKS.md")

    err = Console(stderr=True, highlight=False)
    with status(err, f"reading {corpus}"):
        labelled = load_labelled(corpus)
    n_points = sum(len(f) for f in labelled.files)
    err.print(escape(f"{len(labelled.files)} files, {n_points:,} points, {labelled.events} events ({labelled.layout})"))
    results: list[EventResult] = []
    for name in runs:
        with status(err, f"running {name}"):
            run = run_detector(labelled.files, name)
            results += score_events(run, labelled)
            where = "" if results_dir is None else f"; results in {write_results(run, labelled.files, results_dir)}"
        err.print(escape(f"{name}: {run.seconds:.2f} s{where}"))

    stdout_console(width=200).print(_events_table(results))
    if markdown is not None:
        from vigil.bench.markdown import section_header, write_section

        title = f"Event scores on {corpus.resolve().name} (vigil bench events)"
        body = section_header(title, _events_command(corpus, names, results_dir, benchmarks_md))
        body += "\n" + markdown_table(results) + "\n" + NOTE
        try:
            write_section(_section_name(corpus), body, markdown)
        except OSError as exc:
            raise ConfigError(f"--benchmarks-md {markdown}: cannot write it ({exc.strerror or exc})") from None
        err.print(escape(f"table written to {markdown}"))


def _events_table(results: list[EventResult]) -> Table:
    from vigil.bench.events_table import COLUMNS, LEFT, table_rows

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for name in COLUMNS:
        table.add_column(name, justify="left" if name in LEFT else "right", no_wrap=False)
    for row in table_rows(results):
        table.add_row(*map(escape, row))
    return table
