"""Write examples/cpu_spike.csv: a calm CPU series with one injected spike.

2,000 one-minute samples in the seed format (``Date,Timestamp,CPU_Utilization``,
time of day in ``Timestamp``) from 2024-03-01 00:00 UTC: a daily wave around 35 %,
seeded Gaussian noise, and a spike to about 93 % for five minutes starting at row 1,500
(2024-03-02 01:00 UTC). Run it again to get the same file byte for byte:

    python examples/make_cpu_spike.py
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROWS = 2000
START = datetime(2024, 3, 1, tzinfo=UTC)
SPIKE_ROW = 1500
SPIKE_MINUTES = 5
SEED = 7


def make(rows: int = ROWS, seed: int = SEED) -> tuple[list[datetime], np.ndarray]:
    rng = np.random.default_rng(seed)
    minutes = np.arange(rows)
    wave = 35.0 + 12.0 * np.sin(
        2 * np.pi * (minutes - 480) / 1440
    )  # low at night, high mid-afternoon
    cpu = wave + rng.normal(0.0, 1.2, rows)
    cpu[SPIKE_ROW : SPIKE_ROW + SPIKE_MINUTES] = 93.0 + rng.normal(0.0, 1.0, SPIKE_MINUTES)
    times = [START + timedelta(minutes=int(m)) for m in minutes]
    return times, np.clip(np.round(cpu, 2), 0.0, 100.0)


def main(path: Path) -> None:
    times, cpu = make()
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("Date,Timestamp,CPU_Utilization\n")
        for when, value in zip(times, cpu, strict=True):
            f.write(f"{when:%Y-%m-%d},{when:%H:%M:%S},{value:.2f}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("cpu_spike.csv"))
