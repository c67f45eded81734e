"""What maintenance windows and mutes cost a tick: `Query.ingest` of one sample for each of many series.

Four queries take the same samples, tick after tick, in an order that turns each tick so
none is always first: no silences at all; an empty `Silences`; two windows that are not
active; a mute active over 11 % of the series (h1, h10-h19, h100-h199, ...), whose samples
are scored but not learned. The table gives the median and the fastest tick of each.

Writes the table into BENCHMARKS.md (section mutes).

    python benchmarks/mutes.py [--series N] [--ticks N] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from report import finish, header

from vigil.config import Detection, Limits, Window
from vigil.engine import Query
from vigil.engine.mutes import Silence, Silences
from vigil.sources.base import SeriesBatch

T0 = 1_800_000_000.0  # a Friday, 08:00 UTC: the windows (Sundays) are not active


class _Source:
    name = "q"
    interval = 15.0

    async def fetch(self, now: float) -> list[SeriesBatch]:
        return []

    async def close(self) -> None:
        return None


def _cases() -> dict[str, Silences | None]:
    windows = [
        Window.model_validate({"name": "a", "matchers": '{instance="h1"}', "cron": "0 3 * * sun", "duration": "1h"}),
        Window.model_validate({"name": "b", "matchers": '{instance="h2"}', "weekdays": ["sun"], "start": "02:00",
                               "end": "03:00", "time_zone": "Europe/Paris"}),
    ]
    active = Silences()
    active.set_mutes([Silence.once("mute:x", '{instance=~"h1.*"}', T0 - 1, T0 + 86400)])
    return {"no silences": None, "empty Silences": Silences(), "two windows, not active": Silences(windows),
            "a mute active over 11 % of the series": active}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--ticks", type=int, default=14)
    ap.add_argument("--quick", action="store_true", help="print instead of writing BENCHMARKS.md")
    args = ap.parse_args()
    queries = {}
    for name, silences in _cases().items():
        q = Query(_Source(), Detection(), Limits(max_series_per_query=2 * args.series), "q")  # type: ignore[arg-type]
        q.silences = silences
        queries[name] = q
    labels = [{"__name__": "m", "instance": f"h{i}"} for i in range(args.series)]
    rng = np.random.default_rng(0)
    took: dict[str, list[float]] = {name: [] for name in queries}
    order = list(queries)
    for tick in range(args.ticks):
        t = T0 + 15.0 * tick
        values = rng.normal(size=args.series)
        batches = [SeriesBatch(labels[i], np.array([t]), values[i : i + 1]) for i in range(args.series)]
        for name in order[tick % len(order):] + order[: tick % len(order)]:
            began = time.perf_counter()
            queries[name].ingest(batches, t)
            if tick >= 2:  # the first ticks make the rows and compile
                took[name].append(time.perf_counter() - began)
    rows = [f"| {name} | {np.median(v):.3f} s | {min(v):.3f} s |" for name, v in took.items()]
    body = "\n".join([
        header(f"Maintenance windows and mutes: a tick of {args.series:,} series (benchmarks/mutes.py)"),
        "| silences | median tick | fastest tick |", "| --- | --- | --- |", *rows, "",
    ])
    finish("mutes", body, args.quick)


if __name__ == "__main__":
    main()
