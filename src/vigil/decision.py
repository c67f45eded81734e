"""Decision: anomaly scores -> anomaly events, one event per incident.

A sample is *hot* when its score is at or above the threshold and it passes the gates
(direction, minimum absolute and relative deviation from the expected value). An event
opens when at least `k` of the last `n` scored samples of a series are hot (and the
series is not cooling down after its previous event), stays open while hot samples keep
coming, and resolves after `resolve_after` scored samples in a row that are not hot. A
sample without a score (NaN: warming up, missing value) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vigil.calibration import check_threshold
from vigil.detectors.base import FloatArray
from vigil.errors import ConfigError
from vigil.state import Field, RowState

__all__ = ["Decision", "DecisionConfig", "Event"]

Direction = Literal["above", "below", "both"]


@dataclass(frozen=True)
class DecisionConfig:
    """When a score becomes an event.

    Parameters
    ----------
    threshold
        Anomaly score at or above which a sample is hot.
    direction
        ``above``: only values above the expected value count; ``below``: only below;
        ``both``: either.
    min_abs_deviation, min_rel_deviation
        A hot sample must also differ from the expected value by at least this much, in
        the series' units and as a fraction of ``|expected|``.
    k, n
        Persistence: open an event when `k` of the last `n` scored samples are hot.
    resolve_after
        Scored samples in a row that are not hot before an open event resolves.
    cooldown
        Scored samples after a resolution during which no new event opens on that series.
    """

    threshold: float = 0.9999
    direction: Direction = "both"
    min_abs_deviation: float = 0.0
    min_rel_deviation: float = 0.0
    k: int = 1
    n: int = 1
    resolve_after: int = 5
    cooldown: int = 0

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        if self.direction not in ("above", "below", "both"):
            raise ConfigError(f"direction is {self.direction!r}; write one of above, below, both")
        for key in ("min_abs_deviation", "min_rel_deviation"):
            value = getattr(self, key)
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"{key} is {value!r}; write a number >= 0")
        if not (isinstance(self.n, int) and 1 <= self.n <= 62):
            raise ConfigError(f"n is {self.n!r}; write a whole number from 1 to 62")
        if not (isinstance(self.k, int) and 1 <= self.k <= self.n):
            raise ConfigError(f"k is {self.k!r}; write a whole number from 1 to n ({self.n})")
        for key in ("resolve_after", "cooldown"):
            value = getattr(self, key)
            lowest = 1 if key == "resolve_after" else 0
            if not (isinstance(value, int) and value >= lowest):
                raise ConfigError(f"{key} is {value!r}; write a whole number >= {lowest}")


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
            "number": Field((), np.int64, 0),
            "run_start": Field((), np.float64, np.nan),
            "started_at": Field((), np.float64, np.nan),
            "last_hot": Field((), np.float64, np.nan),
            "quiet": Field((), np.int64, 0),
            "cooldown": Field((), np.int64, 0),
            "peak_members": Field((len(self.members),), np.float64, np.nan),
        }
        for name in ("peak_score", "peak_at", "observed", "expected", "lower", "upper"):
            f[name] = Field((), np.float64, np.nan)
        return f

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows)

    def gates(self, x: FloatArray, expected: FloatArray) -> np.ndarray:
        """True where a sample passes direction and minimum-deviation gates."""
        c = self.config
        dev = x - expected
        unknown = np.isnan(expected)
        ok = np.ones(x.shape, dtype=bool)
        if c.direction == "above":
            ok &= (dev > 0) | unknown
        elif c.direction == "below":
            ok &= (dev < 0) | unknown
        if c.min_abs_deviation > 0:
            ok &= (np.abs(dev) >= c.min_abs_deviation) | unknown
        if c.min_rel_deviation > 0:
            ok &= (np.abs(dev) >= c.min_rel_deviation * np.abs(expected)) | unknown
        return ok

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
    ) -> tuple[np.ndarray, np.ndarray, list[Event]]:
        """Advance the event logic over a block; returns (hot, open, events).

        All arrays are shaped (len(rows), steps), `member_scores` (members, len(rows), steps).
        `open[i, j]` says whether row i has an open event after step j.
        """
        c = self.config
        s = {name: arr[rows] for name, arr in state.arrays.items()}
        passes = self.gates(x, expected)
        hot_out = np.zeros(score.shape, dtype=bool)
        open_out = np.zeros(score.shape, dtype=bool)
        events: list[Event] = []
        for j in range(score.shape[1]):
            sc, tj = score[:, j], t[:, j]
            ok = ~np.isnan(sc)
            hot = ok & (sc >= c.threshold) & passes[:, j]
            hist = s["hist"]
            s["run_start"] = np.where(hot & (hist == 0), tj, s["run_start"])
            hist = np.where(ok, ((hist << 1) | hot) & self._mask, hist)
            s["hist"] = hist
            was_open = s["open"]
            opening = ~was_open & (np.bitwise_count(hist) >= c.k) & (s["cooldown"] == 0) & ok
            is_open = was_open | opening
            s["cooldown"] = np.where(~was_open & ok & (s["cooldown"] > 0), s["cooldown"] - 1, s["cooldown"])

            s["started_at"] = np.where(opening, s["run_start"], s["started_at"])
            s["number"] = s["number"] + opening
            better = is_open & hot & ((sc > s["peak_score"]) | opening)
            if better.any():
                for name, arr in (
                    ("peak_score", sc), ("peak_at", tj), ("observed", x[:, j]),
                    ("expected", expected[:, j]), ("lower", lower[:, j]), ("upper", upper[:, j]),
                ):
                    s[name] = np.where(better, arr, s[name])
                s["peak_members"] = np.where(better[:, None], member_scores[:, :, j].T, s["peak_members"])
            s["last_hot"] = np.where(is_open & hot, tj, s["last_hot"])
            s["quiet"] = np.where(is_open & ok, np.where(hot, 0, s["quiet"] + 1), s["quiet"])
            resolving = is_open & (s["quiet"] >= c.resolve_after)

            for i in np.flatnonzero(opening):
                events.append(self._event(s, rows, i, "firing"))
            for i in np.flatnonzero(resolving):
                events.append(self._event(s, rows, i, "resolved"))
            if resolving.any():
                s["open"] = is_open & ~resolving
                s["cooldown"] = np.where(resolving, c.cooldown, s["cooldown"])
                s["quiet"] = np.where(resolving, 0, s["quiet"])
                s["hist"] = np.where(resolving, 0, s["hist"])
            else:
                s["open"] = is_open
            hot_out[:, j] = hot
            open_out[:, j] = s["open"]
        for name, arr in s.items():
            state.arrays[name][rows] = arr
        return hot_out, open_out, events

    def open_events(self, state: RowState) -> list[Event]:
        """The events open now, with their current peak."""
        rows = np.arange(state.n_rows)
        s = state.arrays
        return [self._event(s, rows, i, "firing") for i in np.flatnonzero(s["open"])]

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
