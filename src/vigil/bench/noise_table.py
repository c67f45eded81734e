"""The noise suite's tables: false events per series-day by family and step, and the runs behind them.

`table_columns` and `table_rows` give one row per family, then the family with the most
false events and the whole suite; per step three columns: the rate over every seed, the
events and series-days behind it, and the rates on the choose and check halves.
`run_columns` and `run_rows` say per step how much was run and how fast. The terminal
and BENCHMARKS.md show the same cells.
"""

from __future__ import annotations

from collections.abc import Sequence

from vigil.bench.noise_run import NoiseRun, Tally
from vigil.config.values import duration_text

__all__ = ["RUN_COLUMNS", "markdown_tables", "run_rows", "step_label", "table_columns", "table_rows"]

RUN_COLUMNS = ["step", "days", "series", "points", "events", "seconds", "points/s"]


def step_label(run: NoiseRun) -> str:
    """``15s, 14 d``: the step and the days simulated at it."""
    return f"{duration_text(run.step)}, {run.days:g} d"


def _rate(tally: Tally) -> str:
    """
    >>> _rate(Tally(3, 280.0)), _rate(Tally(0, 280.0))
    ('0.0107', '0.0000')
    """
    return f"{tally.rate:.4f}"


def _count(tally: Tally) -> str:
    """
    >>> _count(Tally(1234, 14600.0)), _count(Tally(2, 2.5))
    ('1,234 / 14,600', '2 / 2.5')
    """
    return f"{tally.events:,} / {tally.series_days:,.6g}"


def table_columns(runs: Sequence[NoiseRun]) -> list[str]:
    out = ["family"]
    for run in runs:
        label = step_label(run)
        out += [f"{label}: per series-day", f"{label}: events / series-days", f"{label}: choose / check"]
    return out


def _halves(run: NoiseRun, family: str | None) -> str:
    return " / ".join(_rate(run.tally(family, half)) for half in ("choose", "check"))


def table_rows(runs: Sequence[NoiseRun]) -> list[list[str]]:
    """Per family, then ``largest family`` (its name beside its events) and ``whole suite``.

    In the largest row the choose and check rates are each half's own largest family.
    """
    families = runs[0].families if runs else ()
    rows = []
    for family in families:
        row = [family]
        for run in runs:
            tally = run.tally(family)
            row += [_rate(tally), _count(tally), _halves(run, family)]
        rows.append(row)
    largest = ["largest family"]
    for run in runs:
        name, tally = run.largest()
        largest += [_rate(tally), f"{name}: {_count(tally)}",
                    " / ".join(_rate(run.largest(half)[1]) for half in ("choose", "check"))]
    total = ["whole suite"]
    for run in runs:
        total += [_rate(run.tally()), _count(run.tally()), _halves(run, None)]
    return [*rows, largest, total]


def run_rows(runs: Sequence[NoiseRun]) -> list[list[str]]:
    """One row of `RUN_COLUMNS` per step."""
    return [
        [duration_text(r.step), f"{r.days:g}", f"{len(r.opened):,}", f"{r.points:,}", f"{r.tally().events:,}",
         f"{r.seconds:.2f}", f"{r.points_per_second:,.0f}"]
        for r in runs
    ]


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    """A Markdown table whose first `left` columns are text, aligned left; the rest numbers, aligned right."""
    lines = [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" if i < left else "---:" for i in range(len(columns))) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def markdown_tables(runs: Sequence[NoiseRun]) -> str:
    """The rates table, then the runs table, as Markdown."""
    return _markdown(table_columns(runs), table_rows(runs), 1) + "\n" + _markdown(RUN_COLUMNS, run_rows(runs), 1)
