"""A series' cadence: its sample interval and the resolution of its values, learned as samples come.

The tail calibration turns a budget of false alarms in time into a budget per sample with
the interval; the pipeline does not call a deviation of a few steps of the series'
resolution an incident (a byte on a series of zeros, a count of one on a gauge that moves
by one). The resolution is the smallest change seen between two samples; before the
first change, one for a series whose values were all whole numbers, else zero.

Examples
--------
>>> c = Cadence(); st = c.new_state(1)
>>> t = np.arange(0.0, 150.0, 15.0)[None]; x = np.array([[0, 0, 1, 0, 3, 0, 0, 2, 0, 0.0]])
>>> c.update(st, np.array([0]), t, x)[0, [0, 2, 4]].tolist()  # the resolution before each sample
[1.0, 1.0, 1.0]
>>> float(st["step"][0]), c.update(st, np.array([0]), t[:, :1] + 150, np.array([[0.5]])).tolist()
(15.0, [[1.0]])
>>> float(st["resolution"][0])
0.5
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vigil.state import Field, FloatArray, RowState

__all__ = ["Cadence"]


class Cadence:
    """Per series: the typical time between samples, and the smallest change of value seen."""

    def fields(self) -> dict[str, Field]:
        return {
            "last_t": Field((), np.float64, np.nan),
            "last_x": Field((), np.float64, np.nan),
            "step": Field((), np.float32, 0.0),  # 0: not known yet
            "resolution": Field((), np.float32, 0.0),  # 0: no change seen yet
            "fraction": Field((), np.bool_, False),  # a value that is not a whole number was seen
        }

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def update(self, state: RowState, rows: np.ndarray, t: FloatArray, x: FloatArray) -> FloatArray:
        """Learn from a block (NaN values are skipped); the resolution before each sample."""
        out = np.zeros(np.shape(x))
        _cadence(
            np.ascontiguousarray(rows, dtype=np.intp), np.ascontiguousarray(t, dtype=np.float64),
            np.ascontiguousarray(x, dtype=np.float64), state["last_t"], state["last_x"], state["step"],
            state["resolution"], state["fraction"], out,
        )
        return out


@njit(cache=True, nogil=True)
def _cadence(rows, t, x, last_t, last_x, step, resolution, fraction, out):  # type: ignore[no-untyped-def]
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(x.shape[1]):
            v = x[i, j]
            if math.isnan(v):
                continue
            out[i, j] = resolution[r] if resolution[r] > 0 or fraction[r] else 1.0
            if v != math.floor(v):
                fraction[r] = True
            if not math.isnan(last_t[r]):
                d = t[i, j] - last_t[r]
                if d > 0:  # the geometric mean of recent intervals: a gap barely moves it
                    step[r] = d if step[r] <= 0 else math.exp(0.98 * math.log(step[r]) + 0.02 * math.log(d))
                change = abs(v - last_x[r])
                if change > 0 and (resolution[r] <= 0 or change < resolution[r]):
                    resolution[r] = change
            last_t[r] = t[i, j]
            last_x[r] = v
