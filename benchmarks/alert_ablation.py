"""What each choice of the default is worth for the people on call: the default, then one change at a time.

Every variant is a ``detection:`` section a user could write, or other members for the
default (``members``, a change of `DEFAULT_MEMBERS` no config can make). Each is scored on the alerts
`vigil run` would send, on every suite, with the halves apart (choices were made on the
first half of each and are checked on the second):

- cmd and NAB by the event rules of ../shared/EVENT-SCORING.md (`vigil bench events`):
  F1 and false alerts per series-day; halves: the odd and the even files by name;
- NAB also by NAB's own rules (standard profile, the alerts at the shipped settings);
- the noise suite (`vigil bench noise`) at a 15 s step: false events per series-day of its
  worst family; halves: the even and the odd seeds.

Writes the table into BENCHMARKS.md (section alert-ablation).

    python benchmarks/alert_ablation.py [--nab DIR] [--cmd DIR] [--seeds N] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from report import ROOT, finish, header

from vigil.bench.events import count_events, layout
from vigil.bench.labelled import LabelledCorpus, half, load_labelled
from vigil.bench.nab_run import prepare_corpus, run_detector
from vigil.bench.nab_scorer import score_corpus
from vigil.bench.noise_run import run_noise
from vigil.config import Detection
from vigil.detection import pipeline

# (label, detection settings): the default first, then one change each
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("default (tail, 1/month)", {}),
    ("record calibration (issue 7's default)", {"calibration": "record", "calibration_window": 10000}),
    ("false_alarms 1/week", {"false_alarms": "1/week"}),
    ("false_alarms 4/year", {"false_alarms": "4/year"}),
    ("no hold", {"hold": 0}),
    ("calibration memory 16,384", {"calibration_window": 16384}),
    ("shift on the mean of 20", {"params": {"shift": {"recent_median": False}}}),
    ("members with seasonal (issue 7's four)", {"members": ("level", "seasonal", "shift", "volatility")}),
    ("members level and shift", {"members": ("level", "shift")}),
    ("level alone", {"detector": "level"}),
    ("seasonal alone", {"detector": "seasonal"}),
    ("spike alone", {"detector": "spike"}),
    ("zscore alone", {"detector": "zscore"}),
]
PARTS = ("odd", "even")


@contextlib.contextmanager
def members(names: tuple[str, ...] | None) -> Iterator[None]:
    """The default's members for the duration (None: as shipped)."""
    shipped = pipeline.DEFAULT_MEMBERS
    pipeline.DEFAULT_MEMBERS = names or shipped
    try:
        yield
    finally:
        pipeline.DEFAULT_MEMBERS = shipped


def events(corpus: LabelledCorpus, settings: Detection) -> tuple[list[str], Any]:
    """F1 and false alerts per series-day on each half of the corpus; and the run."""
    run = run_detector(corpus.files, "default", settings=settings)
    names = [f.name for f in corpus.files]
    out = []
    for part in PARTS:
        rows = half(names, part)
        score = count_events(layout([corpus.index[i] for i in rows]), [run.alerts[i] for i in rows])
        out.append(f"{score.f1:.3f} / {score.per_day:.3f}")
    return out, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = ROOT.parent / "shared"
    parser.add_argument("--nab", type=Path, default=Path(os.environ.get("VIGIL_NAB", shared / "nab")))
    parser.add_argument("--cmd", type=Path, default=Path(os.environ.get("VIGIL_CMD", shared / "cmd")))
    parser.add_argument("--seeds", type=int, default=20, help="seeds per noise family (halves: even and odd)")
    parser.add_argument("--quick", action="store_true", help="print the table, do not write BENCHMARKS.md")
    args = parser.parse_args()
    cmd, nab = load_labelled(args.cmd), load_labelled(args.nab)
    prepared = prepare_corpus(nab.files)
    rows = []
    for label, change in VARIANTS:
        change = dict(change)
        names = change.pop("members", None)
        settings = Detection.model_validate(change)
        with members(names):
            cmd_halves, _ = events(cmd, settings)
            nab_halves, run = events(nab, settings)
            noise = run_noise(15.0, seeds=args.seeds, settings=settings)
        standard = []
        for part in PARTS:
            idx = half([f.name for f in nab.files], part)
            flags = [run.alerts[i].astype(float) for i in idx]
            standard.append(f"{score_corpus([prepared[i] for i in idx], flags, 'standard', threshold=1.0).normalised:.1f}")
        worst = [noise.largest(part)[1].rate for part in ("choose", "check")]
        rows.append([label, *cmd_halves, *nab_halves, *standard, *(f"{w:.3f}" for w in worst)])
        print(" | ".join(rows[-1]), flush=True)
    head = ["variant", "cmd F1 / FA per day (odd)", "(even)", "NAB F1 / FA per day (odd)", "(even)",
            "NAB standard, alerts (odd)", "(even)", "noise 15 s, worst family (even seeds)", "(odd seeds)"]
    table = "\n".join([
        "| " + " | ".join(head) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ])
    body = header("Alert ablation (benchmarks/alert_ablation.py)") + "\n" + table
    body += ("\n\nEvery cell is measured on the alerts `vigil run` sends with that `detection:` section. "
             "cmd and NAB: event-rule F1 and false alerts per series-day on the odd and the even files; NAB "
             "standard: NAB's score of those alerts; noise: false events per series-day of the worst family "
             "of the noise suite at 15 s, on the even and the odd seeds. docs/benchmark.md says how the "
             "default was chosen from them.\n")
    finish("alert-ablation", body, args.quick)


if __name__ == "__main__":
    main()
