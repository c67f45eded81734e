"""The event benchmark's table: per run, the corpus and each half, the alerts' scores and the oracle's.

`score_events` scores a run (`vigil.bench.nab_run.run_detector`) on a labelled corpus
(`vigil.bench.labelled`) by the event rules (`vigil.bench.events`): its alerts, the events
`vigil run` would have opened, and its anomaly score at the oracle's threshold, the one
with the best F1 on the very files scored. Each is given for all files and for each half
(`vigil.bench.labelled.half`), the oracle choosing its threshold per part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from vigil.bench.events import EventScore, count_events, layout, oracle
from vigil.bench.labelled import HALVES, LabelledCorpus, half
from vigil.bench.nab_run import BenchRun

__all__ = ["COLUMNS", "LEFT", "NOTE", "PARTS", "EventResult", "markdown_table", "score_events", "table_rows"]

PARTS = ("all", *HALVES)


@dataclass(frozen=True)
class EventResult:
    """One run on one part of the corpus (``all``, ``odd`` or ``even``): its alerts and its oracle."""

    name: str
    part: str
    files: int
    alerts: EventScore
    oracle: EventScore


def score_events(run: BenchRun, corpus: LabelledCorpus) -> list[EventResult]:
    """The run's `EventResult` on every part, in the order of `PARTS`."""
    names = [f.name for f in corpus.files]
    out = []
    for part in PARTS:
        rows = list(range(len(names))) if part == "all" else half(names, part)
        lay = layout([corpus.index[i] for i in rows])
        shipped = count_events(lay, [run.alerts[i] for i in rows])
        best = oracle(lay, [run.scores[i] for i in rows])
        out.append(EventResult(run.name, part, len(rows), shipped, best))
    return out


COLUMNS = [
    "detector",
    "files",
    "caught",
    "false alerts",
    "precision",
    "recall",
    "F1",
    "false alerts / series-day",
    "oracle F1",
    "oracle threshold",
    "oracle caught",
    "oracle false alerts",
]
LEFT = {"detector", "files"}  # the other columns are numbers, aligned right


def _threshold(t: float | None) -> str:
    """
    >>> _threshold(float("inf")), _threshold(0.9999788040817452), _threshold(None)
    ('never', '0.9999788', '-')
    """
    if t is None:
        return "-"
    return "never" if math.isinf(t) else f"{t:.8g}"


def table_rows(results: Sequence[EventResult]) -> list[list[str]]:
    """One row of `COLUMNS` per result: ratios to three decimals, false alerts per day to three."""
    rows = []
    for r in results:
        a, o = r.alerts, r.oracle
        rows.append([
            r.name,
            f"{r.part} ({r.files})",
            f"{a.caught}/{a.events}",
            f"{a.false_alerts:,}",
            f"{a.precision:.3f}",
            f"{a.recall:.3f}",
            f"{a.f1:.3f}",
            f"{a.per_day:.3f}",
            f"{o.f1:.3f}",
            _threshold(o.threshold),
            f"{o.caught}/{o.events}",
            f"{o.false_alerts:,}",
        ])
    return rows


def markdown_table(results: Sequence[EventResult]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" if c in LEFT else "---:" for c in COLUMNS) + " |",
        *("| " + " | ".join(row) + " |" for row in table_rows(results)),
    ]
    return "\n".join(lines) + "\n"


NOTE = (
    "Event rules (docs/benchmark.md): each labelled window is an event, caught by an alert from 5 rows before "
    "its start to its end; alerting rows outside every such window are false alerts, one per run of rows, and "
    "a run longer than an hour counts once per hour; only rows from each file's scored_from on count. "
    "Columns up to *false alerts / series-day* score the alerts, the rows where `vigil run` opens an event at "
    "the settings it ships. The *oracle* columns score the anomaly score (`vigil_anomaly_score`) at the one "
    "threshold that gives the best F1 on these very files, chosen with their labels: an upper bound, not "
    "something a user gets. *files*: all files, and the two halves, the files sorted by name taken "
    "alternately (odd: 1st, 3rd, ...; even: 2nd, 4th, ...), whatever their labels; each half's oracle "
    "chooses its own threshold.\n"
)
