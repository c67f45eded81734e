"""Silences: the maintenance windows of the config and the one-off mutes of the API, as a query applies them.

A `Silence` covers the series its matchers select (the query's name is the label
``query``) during its spans of time. While one covers a series, the series' events are
recorded and marked with the silence's name (`EventRecord.muted`), which keeps them from
every notifier; unless the silence says `learn`, the samples it covers are scored but
not learned: the rows' model state (every state of the pipeline but the decision's) is
put back as it was before them (`unlearned`).

A query cuts each block of samples at the edges of the silences active in it
(`segments`), so each piece is wholly inside or wholly outside each silence. With no
silence active over a block, the block goes through the pipeline as it comes: the cost
is one look at the list of silences.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from vigil.config import Window
from vigil.matchers import Matcher, parse_selector
from vigil.state import RowState

__all__ = ["RowMatches", "Silence", "Silences", "segments", "unlearned"]

Spans = Callable[[float, float], list[tuple[float, float]]]


@dataclass(frozen=True, eq=False)
class Silence:
    """One window or mute: `name` (``maintenance:<name>`` or ``mute:<id>``) is what muted events say."""

    name: str
    matchers: tuple[Matcher, ...]
    spans: Spans  # (t0, t1) -> the spans [from, to) overlapping [t0, t1]
    learn: bool = False

    @classmethod
    def window(cls, w: Window) -> Silence:
        return cls(f"maintenance:{w.name}", tuple(parse_selector(w.matchers)), w.spans, w.learn)

    @classmethod
    def once(cls, name: str, selector: str, start: float, end: float, learn: bool = False) -> Silence:
        """A one-off mute over ``[start, end)``."""
        def spans(t0: float, t1: float) -> list[tuple[float, float]]:
            return [(start, end)] if end > t0 and start <= t1 else []

        return cls(name, tuple(parse_selector(selector)), spans, learn)

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m(labels) for m in self.matchers)


class Silences:
    """The config's windows and the API's mutes; `set_mutes` replaces the mutes whole (from any thread)."""

    def __init__(self, windows: Sequence[Window] = ()) -> None:
        self.windows = tuple(Silence.window(w) for w in windows)
        self._all = self.windows
        self._lock = threading.Lock()

    def set_mutes(self, mutes: Sequence[Silence]) -> None:
        with self._lock:
            self._all = (*self.windows, *mutes)

    def during(self, t0: float, t1: float) -> list[tuple[Silence, list[tuple[float, float]]]]:
        """The silences with a span overlapping ``[t0, t1]``, and those spans."""
        out = []
        for s in self._all:
            spans = s.spans(t0, t1)
            if spans:
                out.append((s, spans))
        return out

    def covering(self, labels: dict[str, str], t: float) -> Silence | None:
        """The first silence covering the series of `labels` (with ``query``) at time `t`, if any."""
        for s, spans in self.during(t, t):
            if any(a <= t < b for a, b in spans) and s.matches(labels):
                return s
        return None


def segments(
    during: list[tuple[Silence, list[tuple[float, float]]]], grid: np.ndarray
) -> Iterator[tuple[int, int, list[Silence]]]:
    """``(first, past_last, silences)``: the column ranges of `grid` (sample times, increasing)
    that no silence edge cuts, each with the silences active over it."""
    edges = [e for _, spans in during for span in spans for e in span if grid[0] < e <= grid[-1]]
    cuts = np.unique(np.searchsorted(grid, edges, side="left")).tolist() if edges else []
    bounds = [0, *cuts, int(grid.size)]
    for c0, c1 in zip(bounds[:-1], bounds[1:], strict=True):
        if c0 < c1:
            t = float(grid[c0])
            yield c0, c1, [s for s, spans in during if any(a <= t < b for a, b in spans)]


class RowMatches:
    """Which rows of a query each silence selects, worked out once per row and silence."""

    def __init__(self, query: str, labels: Callable[[int], dict[str, str] | None]) -> None:
        self.query = query
        self.labels = labels
        self._known: dict[Silence, np.ndarray] = {}  # per silence: 1 selected, 0 not, -1 not worked out yet

    def labels_of(self, row: int) -> dict[str, str]:
        labels = self.labels(row) or {}
        return labels if "query" in labels else {**labels, "query": self.query}

    def selected(self, silences: list[Silence], rows: np.ndarray) -> np.ndarray:
        """Per row of `rows`: whether any of `silences` selects it."""
        out = np.zeros(rows.size, dtype=bool)
        for s in silences:
            known = self._known.get(s)
            if known is None or known.size <= rows.max(initial=-1):
                grown = np.full(max(int(rows.max(initial=-1)) + 1, 2 * (0 if known is None else known.size)), -1,
                                dtype=np.int8)
                if known is not None:
                    grown[: known.size] = known
                known = self._known[s] = grown
            todo = rows[known[rows] < 0]
            for r in todo.tolist():
                known[r] = s.matches(self.labels_of(r))
            out |= known[rows] == 1
        return out

    def keep_only(self, current: Sequence[Silence]) -> None:
        """Forget what was worked out for silences not in `current` (a deleted mute, a window over)."""
        keep = set(current)
        for s in [s for s in self._known if s not in keep]:
            del self._known[s]

    def forget(self, rows: Sequence[int] | np.ndarray) -> None:
        """Rows whose series changed are worked out again."""
        idx = np.asarray(rows, dtype=np.intp)
        for known in self._known.values():
            inside = idx[idx < known.size]
            known[inside] = -1


@contextmanager
def unlearned(states: Sequence[RowState], rows: np.ndarray) -> Iterator[None]:
    """Put `rows` of `states` back as they were before the block run inside (arrays and objects)."""
    if not rows.size:
        yield
        return
    listed = rows.tolist()
    saved = [({k: a[rows].copy() for k, a in st.arrays.items()}, [st.objects[r] for r in listed]) for st in states]
    yield
    for st, (arrays, objects) in zip(states, saved, strict=True):
        for k, a in arrays.items():
            st.arrays[k][rows] = a
        for r, o in zip(listed, objects, strict=True):
            st.objects[r] = o
