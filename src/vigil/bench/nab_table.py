"""The NAB benchmark's table: one row per run, for the terminal and for BENCHMARKS.md."""

from __future__ import annotations

import math
from collections.abc import Sequence

from vigil.bench.nab_run import PROFILE_LABELS, BenchScore
from vigil.bench.nab_scorer import PROFILES

__all__ = ["COLUMNS", "LEFT", "markdown_table", "table_rows"]

COLUMNS = [
    "detector",
    *(f"{label} (swept)" for label in PROFILE_LABELS.values()),
    "thresholds (swept)",
    *(f"{label} (alerts)" for label in PROFILE_LABELS.values()),
    *(f"{label} (alerts, swept)" for label in PROFILE_LABELS.values()),
    "thresholds (alerts, swept)",
    "windows found",
    "false alerts",
    "seconds",
    "points/s",
]
LEFT = {"detector", "thresholds (swept)", "thresholds (alerts, swept)"}  # the other columns are numbers, aligned right


def _threshold(t: float) -> str:
    """
    >>> _threshold(float("inf")), _threshold(0.99993), _threshold(0.5)
    ('never', '0.99993', '0.5')
    """
    return "never" if math.isinf(t) else f"{t:.6g}"


def table_rows(results: Sequence[BenchScore]) -> list[list[str]]:
    """One row of `COLUMNS` per result; scores to one decimal, as NAB publishes them."""
    rows = []
    for r in results:
        standard = r.shipped["standard"]
        rows.append([
            r.name,
            *(f"{r.swept[p].normalised:.1f}" for p in PROFILES),
            " / ".join(_threshold(r.swept[p].threshold) for p in PROFILES),
            *(f"{r.shipped[p].normalised:.1f}" for p in PROFILES),
            *(f"{r.alerts_swept[p].normalised:.1f}" if r.alerts_swept else "-" for p in PROFILES),
            " / ".join(_threshold(r.alerts_swept[p].threshold) for p in PROFILES) if r.alerts_swept else "-",
            f"{standard.tp}/{standard.tp + standard.fn}",
            f"{standard.fp:,}",
            f"{r.seconds:.2f}",
            f"{r.points_per_second:,.0f}",
        ])
    return rows


def markdown_table(results: Sequence[BenchScore]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" if c in LEFT else "---:" for c in COLUMNS) + " |",
        *("| " + " | ".join(row) + " |" for row in table_rows(results)),
    ]
    return "\n".join(lines) + "\n"
