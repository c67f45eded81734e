"""Bands clipped to what a series can take: never below 0 for a series never seen below 0.

A percentage, a count or a rate cannot go below 0, yet a band of ± k deviations around a
small expected value does. Whether each series has shown a value below 0 is kept (in the
pipeline's state, so it is snapshotted); until it has, the expected value and the band
are clipped at 0. Scores are not touched: each member is scored on its own band.
"""

from __future__ import annotations

import numpy as np

from vigil.state import FloatArray

__all__ = ["clip_at_zero"]


def clip_at_zero(
    below: np.ndarray, rows: np.ndarray, observed: FloatArray, exp: FloatArray, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """`exp`, `lo` and `hi` (rows, steps) clipped at 0 at each sample of a series not seen below 0
    up to it; `below` (per row, False for a new series) is updated with `observed`."""
    with np.errstate(invalid="ignore"):
        under = observed < 0  # False where NaN
    seen = np.logical_or.accumulate(np.concatenate([below[rows][:, None], under], axis=1), axis=1)[:, 1:]
    if seen.shape[1]:
        below[rows] = seen[:, -1]
    floor = np.where(seen, -np.inf, 0.0)
    return np.maximum(exp, floor), np.maximum(lo, floor), np.maximum(hi, floor)
