"""Listings: which series and events pass the filters, in what order, and their items.

Filtering, sorting and paging are done here, so the page asks for one page of rows
whatever the number of series: the cheap arrays pick and order the rows, and only the rows
of the page are turned into items.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from vigil.engine import Query as EngineQuery
from vigil.formatting import iso, json_number, number_texts, score_text
from vigil.http.models import STATUSES, SeriesItem, Sparkline, Status
from vigil.http.params import Matcher
from vigil.http.parts import Parts
from vigil.labels import series_id, series_key
from vigil.outputs.event import subject
from vigil.outputs.feedback import verdicts_in_force
from vigil.outputs.notify.outbox import statuses

__all__ = [
    "Pick", "Selection", "event_spans", "event_text", "iso", "item", "point_marks", "select", "sparklines", "statuses_of", "with_delivery",
    "words",
]


def _ts(text: str | None) -> float:
    """An ISO time of an event document -> Unix seconds (None: still open, +inf)."""
    return math.inf if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def statuses_of(q: EngineQuery, rows: np.ndarray) -> np.ndarray:
    """0 anomalous, 1 warming up, 2 ok (the order of a listing), per row."""
    s = q.table.state
    return np.where(s["anomalous"][rows], 0, np.where(s["warming"][rows], 1, 2))


def shown_scores(q: EngineQuery, rows: np.ndarray) -> np.ndarray:
    """The score a listing shows per row: the latest one, or, while an event is open, its peak
    if higher (a held event's latest score may be 0)."""
    score = q.table.state["score"][rows]
    decision = q.pipeline.decision_state
    inside = rows < decision.n_rows
    peak = np.full(rows.shape, np.nan)
    peak[inside] = np.where(decision["open"][rows[inside]], decision["peak_score"][rows[inside]], np.nan)
    shown: np.ndarray = np.fmax(score, peak)
    return shown


def _search_text(q: EngineQuery, row: int) -> str:
    labels = q.table.labels[row] or {}
    return " ".join([q.name, *(f"{k}={v}" for k, v in labels.items())]).lower()


def words(search: str | None) -> list[str]:
    return (search or "").lower().split()


@dataclass(frozen=True)
class Pick:
    """A series a listing chose, before it is made an item (only the page's are)."""

    q: EngineQuery
    row: int
    status: Status


class Selection(Sequence[Pick]):
    """The series a listing chose, in order, as arrays: only the slices asked for become `Pick`s.

    Order: anomalous first, then warming up, then ok; within each, by score, highest first;
    then by query (in the config's order) and by the order Vigil first saw the series.
    """

    def __init__(self, queries: list[EngineQuery], which: np.ndarray, rows: np.ndarray, ranks: np.ndarray) -> None:
        self._queries, self._which, self._rows, self._ranks = queries, which, rows, ranks

    def __len__(self) -> int:
        return int(self._rows.size)

    @overload
    def __getitem__(self, index: int) -> Pick: ...

    @overload
    def __getitem__(self, index: slice) -> list[Pick]: ...

    def __getitem__(self, index: int | slice) -> Pick | list[Pick]:
        if isinstance(index, slice):
            return [self._pick(i) for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self._pick(index % len(self))

    def _pick(self, i: int) -> Pick:
        return Pick(self._queries[int(self._which[i])], int(self._rows[i]), STATUSES[int(self._ranks[i])])

    def count(self, value: Any) -> int:
        """How many have this status (`Sequence.count` of a status name)."""
        return int((self._ranks == STATUSES.index(value)).sum()) if value in STATUSES else 0

    def with_status(self, status: str | None) -> Selection:
        if status is None:
            return self
        keep = self._ranks == STATUSES.index(status)
        return Selection(self._queries, self._which[keep], self._rows[keep], self._ranks[keep])


def select(parts: Parts, query: str | None, matchers: list[Matcher],
           status: str | None, search: str | None = None) -> Selection:
    """The series that pass the filters, in a listing's order (`Selection`)."""
    wanted = words(search)
    queries = list(parts.engine.queries.values())
    which, rows, ranks, scores = [], [], [], []
    for i, q in enumerate(queries):
        if query is not None and q.name != query:
            continue
        r = q.table.active_rows()
        rank = statuses_of(q, r)
        keep = np.ones(r.size, dtype=np.bool_) if status is None else rank == STATUSES.index(status)
        if matchers or wanted:  # label filters are per series, in Python: only when asked for
            labels = q.table.labels
            keep &= np.array([
                bool(k) and all(m(labels[row] or {}) for m in matchers)
                and (not wanted or all(w in _search_text(q, row) for w in wanted))
                for row, k in zip(r.tolist(), keep.tolist(), strict=True)
            ], dtype=np.bool_)
        which.append(np.full(int(keep.sum()), i, dtype=np.intp))
        rows.append(r[keep])
        ranks.append(rank[keep])
        scores.append(np.nan_to_num(shown_scores(q, r[keep]), nan=0.0))
    if not rows:
        empty = np.zeros(0, dtype=np.intp)
        return Selection(queries, empty, empty, empty)
    w, r, k, sc = (np.concatenate(a) for a in (which, rows, ranks, scores))
    order = np.lexsort((r, w, -sc, k))
    return Selection(queries, w[order], r[order], k[order])


def item(pick: Pick, sparkline: Sparkline | None = None) -> SeriesItem:
    q, row, st = pick.q, pick.row, pick.status
    s = q.table.state
    threshold = q.detection.threshold
    value, exp, lo, hi, latest = (float(s[k][row]) for k in ("value", "expected", "lower", "upper", "score"))
    score = float(shown_scores(q, np.array([row]))[0])
    value_text, exp_text, lo_text, hi_text = number_texts(value, exp, lo, hi)
    if st == "anomalous":
        reason = (
            f"value {value_text} outside the band {lo_text} to {hi_text} "
            f"(expected {exp_text}), score {score_text(latest)}"
            if math.isfinite(exp) else f"anomaly score {score_text(latest)} at or above {threshold}"
        )
        if math.isfinite(latest) and latest < threshold:
            reason = (
                f"anomaly event still open (peak score {score_text(score)}, last {score_text(latest)}; "
                "resolves after quiet samples)"
            )
    elif st == "warming_up":
        reason = "the detector is still learning this series"
    else:
        reason = "within the expected band" if math.isfinite(exp) else "score below the threshold"
    return SeriesItem(
        id=q.table.id_of(row), query=q.name, labels=q.table.labels[row] or {},
        name=subject(q.table.labels[row] or {}, q.name), status=st, value=json_number(value),
        value_text=value_text, band_text=f"{exp_text} ({lo_text} to {hi_text})" if math.isfinite(exp) else None,
        expected=json_number(exp), lower=json_number(lo), upper=json_number(hi), score=json_number(score),
        last_sample_at=iso(float(s["last_t"][row])), reason=reason,
        shard=None if q.shard is None else q.shard.text, sparkline=sparkline,
    )


def point_marks(points: dict[str, list[float | None]], threshold: float, spans: Iterable[tuple[float, float]]) -> list[bool]:
    """Which points are anomalies: their score reached the threshold inside one of the events' spans."""
    edge = json_number(np.float32(threshold))  # history keeps scores as float32, as JSON numbers
    spans = [(a - 1e-3, b + 1e-3) for a, b in spans]  # times went through ISO text (milliseconds)
    return [
        t is not None and s is not None and edge is not None and s >= edge and any(a <= t <= b for a, b in spans)
        for t, s in zip(points["t"], points["score"], strict=True)
    ]


def event_spans(events: Iterable[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(_ts(e["started_at"]), _ts(e["ended_at"])) for e in events]


def sparklines(parts: Parts, picks: Sequence[Pick], n: int) -> list[Sparkline]:
    """The last `n` points of each picked series, with one store query per query for their events."""
    points = [p.q.table.history(p.row, last=n) for p in picks]
    spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name in {p.q.name for p in picks}:
        mine = [(p, pts) for p, pts in zip(picks, points, strict=True) if p.q.name == name]
        first = min((pts["t"][0] for _, pts in mine if pts["t"] and pts["t"][0] is not None), default=None)
        keys = [p.q.table.keys[p.row] or "" for p, _ in mine]
        events, _ = parts.store.events(query=name, series=keys, start=first, limit=10_000)
        for e, span in zip(events, event_spans(events), strict=True):
            spans.setdefault((name, series_key(e["series"])), []).append(span)
    out = []
    for p, pts in zip(picks, points, strict=True):
        marks = point_marks(pts, p.q.detection.threshold, spans.get((p.q.name, p.q.table.keys[p.row] or ""), []))
        out.append(Sparkline(value=pts["value"], lower=pts["lower"], upper=pts["upper"], anomalous=marks))
    return out


def with_delivery(parts: Parts, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add to each event its series id, the verdict in force on it and, with receivers, how its notifications stand."""
    verdicts = verdicts_in_force(parts.store, [e["id"] for e in items])
    items = [
        {**e, "series_id": series_id(e["query"], series_key(e["series"])),
         **({"feedback": verdicts[e["id"]].model_dump()} if e["id"] in verdicts else {})}
        for e in items
    ]
    if parts.outbox is None:
        return items
    ids = [e["id"] for e in items]
    delivery = parts.outbox.delivery(ids)
    sent = statuses(delivery)
    return [{**e, "notifications": sent.get(e["id"], {}), "delivery": delivery.get(e["id"], {})} for e in items]


def event_text(e: dict[str, Any]) -> str:
    labels = " ".join(f"{k}={v}" for k, v in e["series"].items())
    return f"{e['query']} {labels} {e.get('summary', '')}".lower()
