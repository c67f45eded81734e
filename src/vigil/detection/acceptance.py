"""Accepted deviations: what an operator said was not an incident no longer alerts on that series.

An `Acceptance` holds, for each direction (above and below the expected value), the
largest deviation a person marked "not an incident" on one series, in two measures that
survive the band moving: in band half-widths (``(observed - expected) / (upper -
expected)``, so a baseline that shifts carries the deviation with it), and as the level
reached (so a band that narrowed in a calm spell does not make the same spike new). A
later sample on the same side is accepted when either measure is within the accepted one
plus `MARGIN` of it; a clearly larger deviation still alerts. The pipeline keeps an
accepted sample's score just below the threshold (`gate`): it is learned as usual and
opens no event. It keeps them in an `Accepted`, for the rows that have one: a series
without one costs a flag (1 byte).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

import numpy as np

from vigil.formatting import number_text
from vigil.state import FloatArray

__all__ = ["MARGIN", "Accepted", "Acceptance", "accepted_from", "gate", "new_state", "put"]

MARGIN = 0.1  # a deviation up to 10 % past the accepted one is the same deviation


@dataclass(frozen=True)
class Acceptance:
    """The deviations accepted on one series; NaN: none on that side.

    `above` and `below` are in band half-widths, `above_level` and `below_level` are the
    levels reached, and `above_slack` and `below_slack` the margin on those levels (a
    `MARGIN` of the deviation from the expected value).
    """

    above: float = math.nan
    above_level: float = math.nan
    above_slack: float = math.nan
    below: float = math.nan
    below_level: float = math.nan
    below_slack: float = math.nan

    def merge(self, other: Acceptance) -> Acceptance:
        """The wider of two acceptances on each side."""
        return Acceptance(
            above=float(np.fmax(self.above, other.above)),
            above_level=float(np.fmax(self.above_level, other.above_level)),
            above_slack=float(np.fmax(self.above_slack, other.above_slack)),
            below=float(np.fmax(self.below, other.below)),
            below_level=float(np.fmin(self.below_level, other.below_level)),
            below_slack=float(np.fmax(self.below_slack, other.below_slack)),
        )

    @property
    def empty(self) -> bool:
        return math.isnan(self.above) and math.isnan(self.below)

    def text(self) -> str:
        """What no longer alerts, in a sentence for a person ("" when nothing is accepted)."""
        say = number_text
        parts = []
        if not math.isnan(self.above):
            parts.append(f"up to {say(self.above_level + self.above_slack)} or {self.above * (1 + MARGIN):.3g} "
                         "band half-widths above the expected value")
        if not math.isnan(self.below):
            parts.append(f"down to {say(self.below_level - self.below_slack)} or {self.below * (1 + MARGIN):.3g} "
                         "band half-widths below it")
        return "values " + " and ".join(parts) + " no longer alert on this series" if parts else ""


_NAMES = tuple(f.name for f in fields(Acceptance))


class Accepted:
    """The `Acceptance` of each row that has one (most have none), and a flag per row, so a
    block of rows none of which has one costs one look. Rebuilt from people's feedback by
    its owner, so not saved with the pipeline's state.

    ``accepted[name]`` is one field of every row's acceptance, NaN where there is none.
    """

    def __init__(self, n_rows: int = 0) -> None:
        self.n_rows = n_rows
        self.rows: dict[int, Acceptance] = {}
        self.flag = np.zeros(n_rows, dtype=np.bool_)

    def __getitem__(self, name: str) -> FloatArray:
        if name not in _NAMES:
            raise KeyError(name)
        out = np.full(self.n_rows, math.nan)
        for r, a in self.rows.items():
            out[r] = getattr(a, name)
        return out

    def resize(self, n_rows: int) -> None:
        """Grow (new rows accept nothing) or shrink to `n_rows` rows."""
        flag = np.zeros(n_rows, dtype=np.bool_)
        keep = min(n_rows, self.n_rows)
        flag[:keep] = self.flag[:keep]
        self.flag, self.n_rows = flag, n_rows
        self.rows = {r: a for r, a in self.rows.items() if r < n_rows}

    def reset(self, rows: np.ndarray) -> None:
        """Forget what `rows` accepted, as if their series were new."""
        for r in np.asarray(rows).ravel().tolist():
            self.rows.pop(r, None)
        self.flag[rows] = False


def new_state(n_rows: int = 0) -> Accepted:
    """Nothing accepted on any of `n_rows` rows."""
    return Accepted(n_rows)


def put(state: Accepted, row: int, acceptance: Acceptance | None) -> None:
    """Set row `row`'s acceptance (None: accept nothing)."""
    if acceptance is None:
        state.rows.pop(row, None)
        state.flag[row] = False
    else:
        state.rows[row] = acceptance
        state.flag[row] = True


def accepted_from(points: Iterable[tuple[float | None, float | None, float | None, float | None]]) -> Acceptance:
    """The acceptance of an incident from its points ``(value, expected, lower, upper)``.

    Only points outside their band count (a point inside it was no part of the incident);
    a point without a value, an expected value or a band says nothing.
    """
    out = Acceptance()
    for value, expected, lower, upper in points:
        if value is None or expected is None or lower is None or upper is None:
            continue
        if value > upper and upper > expected:
            ratio = (value - expected) / (upper - expected)
            out = out.merge(Acceptance(above=ratio, above_level=value, above_slack=MARGIN * (value - expected)))
        elif value < lower and lower < expected:
            ratio = (expected - value) / (expected - lower)
            out = out.merge(Acceptance(below=ratio, below_level=value, below_slack=MARGIN * (expected - value)))
    return out


def gate(state: Accepted, rows: np.ndarray, observed: FloatArray, expected: FloatArray, lower: FloatArray,
         upper: FloatArray, score: FloatArray, threshold: float) -> FloatArray:
    """`score`, kept just below `threshold` where a sample's deviation is accepted on its series."""
    some = np.flatnonzero(state.flag[rows])
    if not some.size:
        return score
    field = {name: np.full(len(rows), math.nan) for name in _NAMES}
    for i, r in zip(some.tolist(), np.asarray(rows)[some].tolist(), strict=True):
        for name in _NAMES:
            field[name][i] = getattr(state.rows[r], name)
    col = (slice(None), None)
    with np.errstate(invalid="ignore", divide="ignore"):
        up = (observed > expected) & (
            ((observed - expected) / (upper - expected) <= field["above"][col] * (1 + MARGIN))
            | (observed <= (field["above_level"] + field["above_slack"])[col])
        )
        down = (observed < expected) & (
            ((expected - observed) / (expected - lower) <= field["below"][col] * (1 + MARGIN))
            | (observed >= (field["below_level"] - field["below_slack"])[col])
        )
        under = np.nextafter(threshold, 0.0)
        return np.where((up | down) & (score > under), under, score)
