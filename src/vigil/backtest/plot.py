"""Plot a backtest: the series, its expected value and band, anomalies, events and the score.

Drawn with Matplotlib's Agg canvas directly (no pyplot, no display, no global state), so
it works on a server, in tests and from several threads.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from vigil.backtest.run import BacktestResult
from vigil.errors import DataError
from vigil.state import FloatArray

__all__ = ["ANOMALY_COLOR", "envelope", "plot_backtest", "score_nines"]

ANOMALY_COLOR = "#ff0000"  # anomalous points; nothing else on the plot is this red
_VALUE = "#1f4e79"
_EXPECTED = "#2a9d3f"
_EVENT = "#ff9f1c"
_SCORE = "#7b3fa0"
_THRESHOLD = "#444444"
_MAX_NINES = 12.0
_MAX_POINTS = 20_000  # per line drawn; longer series are drawn as their envelope


def score_nines(score: FloatArray) -> FloatArray:
    """``-log10(1 - score)``: 0.9 -> 1, 0.99 -> 2, 0.9999 -> 4 (capped at 12). NaN stays NaN.

    Anomaly scores crowd against 1; counting their nines spreads them out.

    >>> score_nines(np.array([0.0, 0.9, 0.9999, 1.0, np.nan])).round(6).tolist()
    [0.0, 1.0, 4.0, 12.0, nan]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.minimum(-np.log10(np.clip(1.0 - score, 0.0, 1.0)), _MAX_NINES)
    return out + 0.0  # turn -0.0 into 0.0


def envelope(values: FloatArray, max_points: int = _MAX_POINTS) -> np.ndarray:
    """Indices that keep the shape of a long series: each bucket's lowest and highest point.

    A 1400-pixel-wide plot cannot show a million points; drawing each bucket's extremes
    keeps every spike visible at a fraction of the cost.

    >>> envelope(np.array([0.0, 5, 1, 2, -3, 2, 1, 0]), max_points=4).tolist()
    [0, 1, 4, 5]
    """
    n = values.shape[0]
    if n <= max_points:
        return np.arange(n)
    k = math.ceil(n / (max_points // 2))
    m = math.ceil(n / k)
    v = np.concatenate([values, np.full(m * k - n, np.nan)]).reshape(m, k)
    base = np.arange(m) * k
    low = np.argmin(np.where(np.isnan(v), np.inf, v), axis=1) + base
    high = np.argmax(np.where(np.isnan(v), -np.inf, v), axis=1) + base
    idx = np.unique(np.concatenate([low, high]))
    out: np.ndarray = idx[idx < n]
    return out


def _times(t: FloatArray) -> np.ndarray:
    return np.round(t * 1000).astype(np.int64).astype("datetime64[ms]")


def plot_backtest(
    result: BacktestResult, path: str | Path, title: str = "", width: int = 1400, height: int = 700
) -> None:
    """Save a PNG of `result`: `width` x `height` pixels.

    Top panel: the observed value, the expected value, the band (shaded), anomalous
    points (hot while an event is open) in red, and each event's span shaded. Bottom
    panel: the anomaly score on a scale of nines (``-log10(1 - score)``) with the
    threshold line.
    """
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
    )
    x = _times(result.t)
    end = x[-1] if len(x) else None

    for i, e in enumerate(result.events):
        start = _times(np.array([e.started_at]))[0]
        stop = _times(np.array([e.ended_at]))[0] if e.ended_at is not None else end
        for ax in (top, bottom):
            ax.axvspan(
                start,
                stop,
                color=_EVENT,
                alpha=0.25,
                lw=0,
                label="event" if ax is top and i == 0 else None,
            )

    keep = envelope(result.value)
    xs = x[keep]
    top.fill_between(
        xs, result.lower[keep], result.upper[keep], color=_EXPECTED, alpha=0.18, lw=0, label="band"
    )
    top.plot(xs, result.expected[keep], color=_EXPECTED, lw=1.0, ls="--", label="expected")
    top.plot(xs, result.value[keep], color=_VALUE, lw=0.9, label="value")
    marks = result.anomaly
    top.scatter(
        x[marks],
        result.value[marks],
        s=22,
        color=ANOMALY_COLOR,
        zorder=5,
        label="anomaly",
        edgecolors="none",
    )
    top.legend(loc="upper left", fontsize=8, ncols=5, frameon=False)
    top.set_ylabel(result.columns[0] if result.columns else "value")
    if title:
        top.set_title(title, fontsize=11)
    top.grid(alpha=0.25)

    nines = score_nines(result.score)
    keep = envelope(nines)
    bottom.plot(x[keep], nines[keep], color=_SCORE, lw=0.8)
    bottom.axhline(
        float(score_nines(np.array([result.threshold]))[0]), color=_THRESHOLD, ls="--", lw=1.0
    )
    bottom.set_ylim(0, None)
    bottom.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    bottom.yaxis.set_major_formatter(FuncFormatter(_nines_label))
    bottom.set_ylabel("score")
    bottom.grid(alpha=0.25)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_formatter(formatter)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.94 if title else 0.97, bottom=0.08)
    try:
        fig.savefig(path, format="png")
    except OSError as exc:
        raise DataError(f"cannot write the plot to {path} ({exc.strerror or exc})") from exc


def _nines_label(y: float, _pos: int) -> str:
    """Tick label of a score drawn as nines: 2 -> 0.99."""
    if y <= 0:
        return "0"
    if y != int(y):
        return ""
    return "0." + "9" * int(y) if y <= 6 else f"1-1e-{int(y)}"
