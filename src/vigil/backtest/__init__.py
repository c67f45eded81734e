"""Backtests: a recorded series replayed through a pipeline as `vigil run` would see it live.

`run` feeds a series to a pipeline and collects every point's outputs and the events, and
writes them as CSV; `plot` draws the series, its band, the anomalies and the score.
"""

from __future__ import annotations

__all__: list[str] = []
