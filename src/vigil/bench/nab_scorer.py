"""NAB's scoring rules (see the corpus' SCORING.md): windows, scaled sigmoid, threshold sweep.

A detection is a scored point (past the probationary period) whose anomaly score is at or
above the threshold. Inside a window only the file's best detection in that window
counts; outside every window each detection costs according to how far it is after the
previous window. The threshold is either given or swept over every distinct score of the
whole corpus, keeping the best total; totals are normalised between the detector that
never fires (0) and the one that fires at the first point of every window only (100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PROFILES", "Costs", "FileScores", "Score", "prepare", "probation", "scaled_sigmoid", "score_corpus"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Costs:
    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Costs] = {
    "standard": Costs(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Costs(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Costs(tp=1.0, fp=0.11, fn=2.0),
}


def probation(n: int) -> int:
    """Points at the start of a file of `n` points that are not scored."""
    return min(math.floor(0.15 * n), 750)


def scaled_sigmoid(y: FloatArray | float) -> FloatArray:
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        s = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, s)


@dataclass(frozen=True)
class FileScores:
    """What scoring needs of one file, independent of the detector.

    For each scored point: `window` (index of its window in the file, -1 outside all),
    `tp` (its worth as a detection inside its window, per unit of A_tp) and `fp` (its cost
    outside every window, per unit of A_fp; negative).
    """

    first: int  # index of the first scored point
    window: npt.NDArray[np.intp]
    tp: FloatArray
    fp: FloatArray
    n_windows: int


def prepare(n: int, windows: list[tuple[int, int]]) -> FileScores:
    """Per-point worth of a detection in a file of `n` points with these window index spans."""
    idx = np.arange(n)
    window = np.full(n, -1, dtype=np.intp)
    tp = np.zeros(n)
    fp = np.full(n, -1.0)  # before any window: the full cost
    top = float(scaled_sigmoid(-1.0))
    for k, (a, b) in enumerate(sorted(windows)):
        width = b - a + 1
        inside = slice(a, b + 1)
        window[inside] = k
        tp[inside] = scaled_sigmoid(-(b - idx[inside] + 1) / width) / top
        after = slice(b + 1, n)
        # a window of one point has no width to scale by: every later detection costs in full
        fp[after] = scaled_sigmoid(np.abs(b - idx[after]) / (width - 1)) if width > 1 else -1.0
    first = probation(n)
    scored_windows = {int(w) for w in window[first:] if w >= 0}
    # windows that end inside the probationary period are not scored at all
    remap = {w: i for i, w in enumerate(sorted(scored_windows))}
    win = np.array([remap.get(int(w), -1) for w in window[first:]], dtype=np.intp)
    return FileScores(first, win, tp[first:], fp[first:], len(scored_windows))


@dataclass(frozen=True)
class Score:
    profile: str
    threshold: float
    raw: float
    normalised: float
    tp: int  # windows detected
    fn: int  # windows missed
    fp: int  # detections outside every window


def _concat(files: list[FileScores], scores: list[FloatArray]) -> tuple[FloatArray, npt.NDArray[np.intp],
                                                                         FloatArray, FloatArray, int]:
    offset = 0
    s, w, tp, fp = [], [], [], []
    for f, sc in zip(files, scores, strict=True):
        if sc.shape[0] != f.first + f.window.shape[0]:
            raise ValueError(f"scores have {sc.shape[0]} points, the file {f.first + f.window.shape[0]}")
        s.append(np.nan_to_num(np.asarray(sc, dtype=np.float64)[f.first:], nan=-np.inf))
        w.append(np.where(f.window >= 0, f.window + offset, -1))
        tp.append(f.tp)
        fp.append(f.fp)
        offset += f.n_windows
    return np.concatenate(s), np.concatenate(w), np.concatenate(tp), np.concatenate(fp), offset


def _totals(s: FloatArray, w: npt.NDArray[np.intp], tp: FloatArray, fp: FloatArray, n_windows: int,
            costs: Costs) -> tuple[FloatArray, FloatArray]:
    """Raw score at every distinct threshold, from the highest score down (detections: score >= t)."""
    order = np.argsort(-s, kind="stable")
    s, w, tp, fp = s[order], w[order], tp[order], fp[order]
    delta = np.where(w < 0, costs.fp * fp, 0.0)
    inside = np.flatnonzero(w >= 0)
    if inside.size:
        # per window, in order of falling score: the running best detection's gain
        by_window = inside[np.argsort(w[inside], kind="stable")]
        wk = w[by_window]
        val = costs.tp * tp[by_window]
        starts = np.r_[0, np.flatnonzero(np.diff(wk)) + 1]
        best = np.empty_like(val)
        for a, b in zip(starts, np.r_[starts[1:], val.size], strict=True):
            best[a:b] = np.maximum.accumulate(val[a:b])
        prev = np.empty_like(best)
        prev[1:] = best[:-1]
        prev[starts] = -costs.fn
        delta[by_window] = best - prev
    total = -costs.fn * n_windows + np.cumsum(delta)
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]  # not np.diff: -inf - -inf warns
    finite = np.isfinite(s[last])
    return s[last][finite], total[last][finite]


def score_corpus(files: list[FileScores], scores: list[FloatArray], profile: str,
                 threshold: float | None = None) -> Score:
    """Score a whole corpus under `profile`; sweep the threshold when it is None.

    NaN scores are never detections.
    """
    costs = PROFILES[profile]
    s, w, tp, fp, n_windows = _concat(files, scores)
    null = -costs.fn * n_windows
    perfect = costs.tp * n_windows
    if threshold is None:
        thresholds, totals = _totals(s, w, tp, fp, n_windows, costs)
        best = int(np.argmax(totals)) if totals.size else -1
        # never firing (threshold inf, raw = null) is a candidate too, and wins ties
        threshold = math.inf if best < 0 or totals[best] <= null else float(thresholds[best])
    hit = s >= threshold
    win = w[hit]
    detected = np.unique(win[win >= 0])
    gain = np.full(n_windows, -costs.fn)
    np.maximum.at(gain, win[win >= 0], costs.tp * tp[hit][win >= 0])
    raw = float(gain.sum() + costs.fp * fp[hit][win < 0].sum())
    return Score(
        profile=profile, threshold=float(threshold), raw=raw,
        normalised=100.0 * (raw - null) / (perfect - null),
        tp=int(detected.size), fn=int(n_windows - detected.size), fp=int((win < 0).sum()),
    )
