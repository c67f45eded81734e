"""Decision: anomaly scores -> anomaly events, one event per incident.

A sample is *hot* when its score is at or above the threshold and it passes the gates
(direction, minimum absolute and relative deviation from the expected value). An event
opens on a hot sample when at least `k` of the last `n` scored samples of a series are
hot (and the series is not cooling down after its previous event), stays open while hot
samples keep coming, and resolves after `resolve_after` scored samples in a row that are
not hot and not held (the pipeline holds a detected incident for a while: its event stays
open while it lasts). A sample without a score (NaN: warming up, missing value) changes
nothing. The settings, `DecisionConfig`, live with their defaults in
`vigil.detection.settings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numba import njit

from vigil.detection.settings import DecisionConfig
from vigil.state import Field, FloatArray, RowState

__all__ = ["Decision", "DecisionConfig", "Event"]

_DIRECTIONS = {"both": 0, "above": 1, "below": 2}
_AT = 11  # column of the time of the step that made an event record
_MEMBERS = 12  # first column of the member scores in an event record


@dataclass
class Event:
    """One anomaly incident on one series (row). Times are in the caller's time unit."""

    row: int
    number: int  # 1 for the first event of this row, 2 for the next, ...
    state: Literal["firing", "resolved"]
    started_at: float
    ended_at: float | None
    peak_score: float
    peak_at: float
    observed: float
    expected: float
    lower: float
    upper: float
    detectors: dict[str, float] = field(default_factory=dict)


def _nan_or(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


class Decision:
    """Vectorised event logic for many series; its state is a `RowState`."""

    def __init__(self, config: DecisionConfig, members: list[str]) -> None:
        self.config = config
        self.members = list(members)
        self._mask = (1 << config.n) - 1

    def fields(self) -> dict[str, Field]:
        f = {
            "hist": Field((), np.int64, 0),
            "open": Field((), np.bool_, False),
            "number": Field((), np.int32, 0),
            "run_start": Field((), np.float64, np.nan),
            "started_at": Field((), np.float64, np.nan),
            "last_hot": Field((), np.float64, np.nan),
            "quiet": Field((), np.int32, 0),  # at most resolve_after
            "cooldown": Field((), np.int32, 0),  # at most cooldown
            "peak_members": Field((len(self.members),), np.float64, np.nan),
        }
        for name in ("peak_score", "peak_at", "observed", "expected", "lower", "upper"):
            f[name] = Field((), np.float64, np.nan)
        return f

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def update(
        self,
        state: RowState,
        rows: np.ndarray,
        t: FloatArray,
        x: FloatArray,
        score: FloatArray,
        expected: FloatArray,
        lower: FloatArray,
        upper: FloatArray,
        member_scores: FloatArray,
        holding: np.ndarray | None = None,
        escalated: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Event]]:
        """Advance the event logic over a block; returns (hot, open, opened, events).

        All arrays are shaped (len(rows), steps), `member_scores` (members, len(rows), steps).
        `holding` marks samples during which the pipeline says a detected incident goes on:
        an open event does not count them towards resolving. `escalated` marks samples far
        worse than the incident going on: a hot one resolves the open event and opens another.
        `open[i, j]` says whether row i has an open event after step j, `opened[i, j]`
        whether an event opened at step j (also where an escalation ends one and opens another).
        """
        c = self.config
        rows = np.ascontiguousarray(rows, dtype=np.intp)
        arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (t, x, score, expected, lower, upper)]
        members = np.ascontiguousarray(member_scores, dtype=np.float64)
        hot = np.zeros(score.shape, dtype=np.bool_)
        is_open = np.zeros(score.shape, dtype=np.bool_)
        opened = np.zeros(score.shape, dtype=np.bool_)
        holding, escalated = (np.zeros(score.shape, dtype=np.bool_) if a is None else np.ascontiguousarray(a, np.bool_)
                              for a in (holding, escalated))
        records = np.empty((2 * score.size, _MEMBERS + len(self.members)))
        s = state.arrays
        count = _decide(  # type: ignore[call-arg]
            rows, *arrays, members, holding, escalated,
            c.threshold, _DIRECTIONS[c.direction], c.min_abs_deviation, c.min_rel_deviation,
            c.k, self._mask, c.resolve_after, c.cooldown,
            s["hist"], s["open"], s["number"], s["run_start"], s["started_at"], s["last_hot"], s["quiet"],
            s["cooldown"], s["peak_score"], s["peak_at"], s["observed"], s["expected"], s["lower"], s["upper"],
            s["peak_members"], hot, is_open, opened, records,
        )
        records = records[:count]
        records = records[np.lexsort((records[:, 0], records[:, _AT]))]
        return hot, is_open, opened, [self._from_record(rec) for rec in records]

    def _from_record(self, rec: np.ndarray) -> Event:
        return Event(
            row=int(rec[0]),
            number=int(rec[1]),
            state="resolved" if rec[2] else "firing",
            started_at=float(rec[3]),
            ended_at=float(rec[4]) if rec[2] else None,
            peak_score=float(rec[5]),
            peak_at=float(rec[6]),
            observed=float(rec[7]),
            expected=float(rec[8]),
            lower=float(rec[9]),
            upper=float(rec[10]),
            detectors={
                m: v for m, v in zip(self.members, map(_nan_or, rec[_MEMBERS:]), strict=True) if v is not None
            },
        )

    def open_events(self, state: RowState) -> list[Event]:
        """The events open now, with their current peak."""
        rows = np.arange(state.n_rows)
        s = state.arrays
        return [self._event(s, rows, int(i), "firing") for i in np.flatnonzero(s["open"])]

    def _event(self, s: dict[str, np.ndarray], rows: np.ndarray, i: int, st: Literal["firing", "resolved"]) -> Event:
        return Event(
            row=int(rows[i]),
            number=int(s["number"][i]),
            state=st,
            started_at=float(s["started_at"][i]),
            ended_at=float(s["last_hot"][i]) if st == "resolved" else None,
            peak_score=float(s["peak_score"][i]),
            peak_at=float(s["peak_at"][i]),
            observed=float(s["observed"][i]),
            expected=float(s["expected"][i]),
            lower=float(s["lower"][i]),
            upper=float(s["upper"][i]),
            detectors={
                m: v for m, v in zip(self.members, map(_nan_or, s["peak_members"][i]), strict=True) if v is not None
            },
        )


@njit(cache=True, nogil=True)
def _passes(v, e, direction, min_abs, min_rel):  # type: ignore[no-untyped-def]
    if math.isnan(e):
        return True
    dev = v - e
    if direction == 1 and not dev > 0:
        return False
    if direction == 2 and not dev < 0:
        return False
    if min_abs > 0 and abs(dev) < min_abs:
        return False
    return not (min_rel > 0 and abs(dev) < min_rel * abs(e))


@njit(cache=True, nogil=True)
def _record(rec, r, kind, at, number, started, ended, peak, peak_at, obs, exp, lo, hi, peak_members):  # type: ignore[no-untyped-def]
    rec[0], rec[1], rec[2], rec[3], rec[4] = r, number, kind, started, ended
    rec[5], rec[6], rec[7], rec[8], rec[9], rec[10], rec[11] = peak, peak_at, obs, exp, lo, hi, at
    for q in range(peak_members.shape[0]):
        rec[12 + q] = peak_members[q]


@njit(cache=True, nogil=True)
def _decide(  # type: ignore[no-untyped-def]
    rows, t, x, score, expected, lower, upper, members, holding, escalated,
    threshold, direction, min_abs, min_rel, k, mask, resolve_after, cooldown_after,
    hist, open_, number, run_start, started_at, last_hot, quiet, cooldown,
    peak_score, peak_at, observed, expected_s, lower_s, upper_s, peak_members,
    hot_out, open_out, opened_out, records,
):
    count = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        h, op, cool, qt = hist[r], open_[r], cooldown[r], quiet[r]
        for j in range(score.shape[1]):
            sc = score[i, j]
            if math.isnan(sc):
                open_out[i, j] = op
                continue
            hot = sc >= threshold and _passes(x[i, j], expected[i, j], direction, min_abs, min_rel)
            if op and hot and escalated[i, j]:  # a new, worse incident: the open event ends here
                _record(
                    records[count], r, 1, t[i, j], number[r], started_at[r], last_hot[r], peak_score[r],
                    peak_at[r], observed[r], expected_s[r], lower_s[r], upper_s[r], peak_members[r],
                )
                count += 1
                op, qt, h = False, 0, 0
            if hot and h == 0:
                run_start[r] = t[i, j]
            h = ((h << 1) | (1 if hot else 0)) & mask
            bits = 0
            b = h
            while b:
                b &= b - 1
                bits += 1
            opening = (not op) and hot and bits >= k and cool == 0
            if not op and cool > 0:
                cool -= 1
            if opening:
                op = True
                started_at[r] = run_start[r]
                number[r] += 1
            if op and hot:
                if opening or sc > peak_score[r]:
                    peak_score[r], peak_at[r], observed[r] = sc, t[i, j], x[i, j]
                    expected_s[r], lower_s[r], upper_s[r] = expected[i, j], lower[i, j], upper[i, j]
                    for q in range(members.shape[0]):
                        peak_members[r, q] = members[q, i, j]
                last_hot[r] = t[i, j]
            if op:
                qt = 0 if hot or holding[i, j] else qt + 1
            for kind in range(2):
                if (kind == 0 and opening) or (kind == 1 and op and qt >= resolve_after):
                    _record(
                        records[count], r, kind, t[i, j], number[r], started_at[r], last_hot[r], peak_score[r],
                        peak_at[r], observed[r], expected_s[r], lower_s[r], upper_s[r], peak_members[r],
                    )
                    count += 1
            if op and qt >= resolve_after:
                op, cool, qt, h = False, cooldown_after, 0, 0
            hot_out[i, j] = hot
            open_out[i, j] = op
            opened_out[i, j] = opening
        hist[r], open_[r], cooldown[r], quiet[r] = h, op, cool, qt
    return count
