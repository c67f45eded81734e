"""Sources: where samples come from.

A source turns something outside Vigil (a CSV file, a Prometheus server, the host itself)
into timestamps and values as NumPy arrays, and says clearly when the input cannot be
used (`vigil.errors.DataError`, `vigil.errors.SourceError`). The live sources (`host`,
`prometheus`, `replay`) follow the contract in `base`; `csv` reads a whole file at once
for `vigil backtest`.
"""

from __future__ import annotations

from vigil.sources.csv import CsvSeries, read_csv

__all__ = ["CsvSeries", "read_csv"]
