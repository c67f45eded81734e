"""Bytes per series of the default pipeline's state, by member and stage (arrays only).

Builds the pipeline `vigil run` uses, makes room for `--series` series and divides each
state's arrays by that number: what a watched series costs in detection state, before
Python objects, the page's history and the interpreter. Prints a table; writes nothing.

    python benchmarks/state_bytes.py
    python benchmarks/state_bytes.py --detector level --calibration record
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np


def rows_of(detector: str, calibration: str, n: int) -> list[tuple[str, float, str]]:
    from vigil.detection.pipeline import build_pipeline

    p = build_pipeline(detector=detector, calibration=calibration)  # type: ignore[arg-type]
    p.resize(n)
    out = []

    def add(name: str, arrays: dict[str, np.ndarray]) -> None:
        parts = ", ".join(f"{k} {a.dtype}{list(a.shape[1:])} {a.nbytes // n}" for k, a in arrays.items())
        out.append((name, sum(a.nbytes for a in arrays.values()) / n, parts))

    for (name, _), det, cal in zip(p.members, p.detector_states, p.calibration_states, strict=True):
        add(f"{name}", det.arrays)
        add(f"{name}: calibration", cal.arrays)
    stages: list[tuple[str, Any]] = [("hold", p.hold_state), ("decision", p.decision_state),
                                     ("cadence", p.cadence_state), ("range", p.range_state)]
    for name, st in stages:
        add(name, st.arrays)
    add("accepted deviations", {"flag": p.accepted.flag})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=100_000, help="rows to make room for (default 100,000)")
    ap.add_argument("--detector", default="default", help="what vigil run would run (default: default)")
    ap.add_argument("--calibration", default="tail", choices=["tail", "record"])
    args = ap.parse_args()
    rows = rows_of(args.detector, args.calibration, args.series)
    print("| state | bytes / series | arrays (bytes / series) |")
    print("| --- | ---: | --- |")
    for name, size, parts in rows:
        print(f"| {name} | {size:,.0f} | {parts} |")
    print(f"| all | {sum(r[1] for r in rows):,.0f} | |")


if __name__ == "__main__":
    main()
