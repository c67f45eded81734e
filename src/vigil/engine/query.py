"""One watched query: its source, its pipeline, its series table, and what it took in.

A `Query` takes in batches of samples (`ingest`): it drops duplicates and out-of-order
points, puts the samples of many series on one time grid, runs its pipeline over them in
blocks and records the outputs in its `SeriesTable`. What happened comes back as an
`Ingested`, with an `EventRecord` for every event that opened, changed or resolved: the
engine hands those to its event log (the store), which writes the event document.

With a `Shard`, a `Query` takes in only the series its shard owns (`vigil.sharding`): the
others are dropped as their batches enter, before any row or state is made for them, and
counted (`Ingested.not_owned`); every series and event it outputs says the shard.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from vigil.config import DEFAULT_EXPORT, Detection, Limits
from vigil.detection.acceptance import Acceptance
from vigil.detection.decision import Event
from vigil.detection.pipeline import Pipeline, pipeline_from
from vigil.engine.mutes import RowMatches, Silences, segments, unlearned
from vigil.engine.records import EventRecord, Ingested, SnapshotStore
from vigil.engine.series import SeriesTable
from vigil.errors import ConfigError
from vigil.labels import exposition_labels
from vigil.sharding import Shard
from vigil.snapshot import decode, encode, entry, from_blob, refuse, to_blob
from vigil.sources.base import Samples, SeriesBatch, Source
from vigil.state import FloatArray

__all__ = ["Query", "build_query_pipeline"]

log = logging.getLogger("vigil.engine")

_CHUNK = 512  # steps per pipeline call when a fetch brings a long history
# and at most this many samples (series x steps): a block's intermediate arrays, some tens of
# float64s a sample, stay some hundred MB however many series a catch-up brings
_CELLS = 500_000
_FORMAT = 1


def build_query_pipeline(d: Detection, where: str) -> Pipeline:
    """The pipeline of a query's ``detection`` keys; a wrong value raises ConfigError naming `where`."""
    try:
        return pipeline_from(d.settings())
    except ConfigError as exc:
        raise ConfigError(f"{where}.detection: {exc}") from None


class Query:
    """One named query: its source, pipeline, series and status.

    `shard`: this process's shard, said by every series and event of the query. With
    `split` (the default) the query takes in only the series that shard owns; the host
    query is not split: each replica watches its own machine whole. `silences`: the
    maintenance windows and mutes that keep events from notifiers and samples from the model.
    `export`: the names of the per-series families /metrics shows for it (`vigil.config.export`).
    """

    def __init__(
        self, source: Source, detection: Detection, limits: Limits, where: str,
        shard: Shard | None = None, split: bool = True, silences: Silences | None = None,
        export: Sequence[str] = DEFAULT_EXPORT,
    ) -> None:
        self.name = source.name
        self.export = tuple(export)
        self.shard = shard
        self.split = shard is not None and split
        self.source = source
        self.detection = detection
        self.limits = limits
        self.pipeline = build_query_pipeline(detection, where)
        self.table = SeriesTable(self.name, limits.history_points)
        self.lock = threading.Lock()
        self.next_due = 0.0
        self.errors = 0  # failed fetches in a row
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self._labels_cache: list[str | None] = []  # per row: its labels' text on /metrics, and "} "
        self._capped = False
        self.refused_now = 0  # series refused at the last fetch (the engine's and the source's caps)
        self.version = 0  # changes with every change of the series or their results
        self.last_data: float | None = None  # when a fetch last brought new points
        self.accepted: dict[str, Acceptance] = {}  # series key -> what people said was not an incident
        self.silences = silences
        self._matches = RowMatches(self.name, lambda r: self.table.labels[r])
        self._muted: dict[tuple[int, float], str] = {}  # (row, start) of open events -> the silence that muted them
        self._foreign: set[str] = set()  # keys of the last fetch that other shards own: hashed once, not per fetch

    @property
    def interval(self) -> float:
        return float(self.source.interval)

    def line_prefixes(self, rows: np.ndarray) -> list[str]:
        """What follows ``family{`` on a row's /metrics lines: its labels' text and ``"} "``
        (kept per row, so a scrape makes no new string for it)."""
        cache = self._labels_cache
        if len(cache) < self.table.n_rows:
            cache.extend([None] * (self.table.n_rows - len(cache)))
        out = []
        for r in rows.tolist():
            text = cache[r]
            if text is None:
                labels = self.table.labels[r] or {}
                shard = None if self.shard is None else self.shard.label
                text = exposition_labels(labels, self.name, self.detection.detector, shard) + "} "
                cache[r] = text
            out.append(text)
        return out

    def ingest(self, batches: Sequence[SeriesBatch], now: float) -> Ingested:
        """Score and learn new samples (a source's `Samples`, or any batches)."""
        with self.lock:
            try:
                return self._ingest(Samples.from_batches(batches), now)
            finally:
                self.version += 1

    def _ingest(self, samples: Samples, now: float) -> Ingested:
        if not len(samples):
            return Ingested()
        not_owned = None
        if self.split and self.shard is not None:  # before any row is made for them
            index, owns, keys, known = self.table.index, self.shard.owns_key, samples.keys, self._foreign
            foreign = {k for k in keys if k not in index and (k in known or not owns(self.name, k))}
            mine = [i for i, k in enumerate(keys) if k not in foreign]
            self._foreign = foreign
            not_owned = len(keys) - len(mine)
            if not_owned:
                samples = samples.take(mine)
            if not len(samples):
                return Ingested(not_owned=not_owned)
        rows, refused = self.table.rows_for(samples.labels, self.limits.max_series_per_query, samples.keys)
        if refused and not self._capped:
            log.warning(
                "query %s: %d series refused, the cap of %d series per query is reached "
                "(limits.max_series_per_query); narrow the query or raise the cap",
                self.name, refused, self.limits.max_series_per_query,
            )
        self._capped = bool(refused)
        if self.table.state.n_rows > self.pipeline.n_rows:
            self.pipeline.resize(self.table.state.n_rows)
        last_t = self.table.state["last_t"]
        held = rows[rows >= 0]
        fresh = np.unique(held[last_t[held] == -np.inf])
        if fresh.size:
            self.pipeline.reset(fresh)
            self._matches.forget(fresh)
            cache = self._labels_cache
            for r in fresh.tolist():
                if r < len(cache):
                    cache[r] = None
                accepted = self.accepted.get(self.table.keys[r] or "") if self.accepted else None
                if accepted is not None:  # reset accepts nothing
                    self.pipeline.accept(r, accepted)

        # every point with its row; drop refused series, what was taken in before and out-of-order points
        row = np.repeat(rows, samples.counts())
        keep = row >= 0
        keep[keep] = samples.t[keep] > last_t[row[keep]]
        row, t, v = row[keep], samples.t[keep], samples.v[keep]
        by = np.lexsort((t, row))  # stable: of points at the same time, the last one given stays last
        row, t, v = row[by], t[by], v[by]
        last = np.append((row[1:] != row[:-1]) | (t[1:] != t[:-1]), True)  # the last value given for a time
        row, t, v = row[last], t[last], v[last]
        if not row.size:
            return Ingested(refused=refused, not_owned=not_owned)
        self.table.state["last_seen"][row] = now
        self.last_data = now

        records: list[EventRecord] = []
        times, column = np.unique(t, return_inverse=True)
        taken = invalid = 0
        series = int(np.count_nonzero(row[1:] != row[:-1])) + 1  # `row` is sorted
        chunk = max(1, min(_CHUNK, _CELLS // series))
        for start in range(0, times.size, chunk):
            grid = times[start : start + chunk]
            inside = (column >= start) & (column < start + grid.size)
            r, block_row = np.unique(row[inside], return_inverse=True)
            x = np.full((r.size, grid.size), np.nan)
            present = np.zeros(x.shape, dtype=bool)
            x[block_row, column[inside] - start] = v[inside]
            present[block_row, column[inside] - start] = True
            got = self._block(r, grid, x, present, records)
            taken, invalid = taken + got[0], invalid + got[1]
        return Ingested(records, taken, invalid, refused, not_owned)

    def _block(
        self, r: np.ndarray, grid: FloatArray, x: FloatArray, present: np.ndarray, records: list[EventRecord]
    ) -> tuple[int, int]:
        """Run one block through the pipeline, in pieces cut at the edges of the silences
        active over it; (samples taken, invalid)."""
        during = self.silences.during(float(grid[0]), float(grid[-1])) if self.silences is not None else []
        if during:
            self._matches.keep_only([s for s, _ in during])
        if not during or not self._matches.selected([s for s, _ in during], r).any():
            return self._update(r, grid, x, present, records)
        taken = invalid = 0
        for c0, c1, active in segments(during, grid):
            some = present[:, c0:c1].any(axis=1)
            rows = r[some]
            frozen = self._matches.selected([s for s in active if not s.learn], rows)
            with unlearned(self.pipeline.model_states(), rows[frozen]):
                got = self._update(rows, grid[c0:c1], x[some, c0:c1], present[some, c0:c1], records)
            taken, invalid = taken + got[0], invalid + got[1]
        return taken, invalid

    def _update(
        self, r: np.ndarray, grid: FloatArray, x: FloatArray, present: np.ndarray, records: list[EventRecord]
    ) -> tuple[int, int]:
        t_block = np.broadcast_to(grid, x.shape)
        res = self.pipeline.update(r, t_block, x)
        valid = present & ~res.invalid
        values = {"value": x, "expected": res.expected, "lower": res.lower, "upper": res.upper, "score": res.score}
        self.table.record(r, t_block, values, valid)
        last_valid = np.where(valid, np.arange(grid.size), -1).max(axis=1)
        seen = last_valid >= 0
        self.table.state["warming"][r[seen]] = res.warming_up[seen, last_valid[seen]]
        self.table.state["anomalous"][r] = self.pipeline.decision_state["open"][r]
        for e in res.events:
            records.append(self._record(e))
        return int(valid.sum()), int((present & res.invalid).sum())

    def _silence(self, e: Event) -> str | None:
        """The name of the silence that covered the event's series when it began (kept while it is open)."""
        key = (e.row, e.started_at)
        name = self._muted.pop(key, None) if e.state == "resolved" else self._muted.get(key)
        if name is None and self.silences is not None:
            found = self.silences.covering(self._matches.labels_of(e.row), e.started_at)
            name = None if found is None else found.name
            if name is not None and e.state != "resolved":
                self._muted[key] = name
        return name

    def _record(self, e: Event) -> EventRecord:
        """The event with its series and its recent points."""
        row = e.row
        key, labels = self.table.keys[row] or "", self.table.labels[row] or {}
        shard = None if self.shard is None else self.shard.text
        return EventRecord(
            e, self.name, key, labels, self.detection.detector, self.pipeline.decision.config.threshold,
            self.table.history(row), shard, self._silence(e),
        )

    @property
    def evict_after(self) -> float:
        """Seconds without points after which a series is forgotten (`Limits.evict_after_for` its step)."""
        return self.limits.evict_after_for(self.interval)

    def evict(self) -> tuple[list[EventRecord], int]:
        """Forget series that brought no points for `evict_after` before the last fetch that
        brought any (a source that is down, or answers nothing, forgets nothing: a replay that
        ended keeps its series); their open events resolve."""
        with self.lock:
            seen = self.table.state["last_seen"]
            rows = self.table.active_rows()
            if not rows.size or self.last_data is None:
                return [], 0
            old = rows[seen[rows] < self.last_data - self.evict_after]
            return self._forget(old), int(old.size)

    def drop_not_owned(self) -> tuple[list[EventRecord], int]:
        """Forget restored series this shard no longer owns (N changed); their open events resolve."""
        with self.lock:
            if not (self.split and self.shard is not None):
                return [], 0
            owns, keys = self.shard.owns_key, self.table.keys
            gone = np.array(
                [r for r in self.table.active_rows().tolist() if not owns(self.name, keys[r] or "")], dtype=np.intp
            )
            return self._forget(gone), int(gone.size)

    def _forget(self, old: np.ndarray) -> list[EventRecord]:
        if not old.size:
            return []
        records = []
        last_hot = self.pipeline.decision_state["last_hot"]
        for e in self.pipeline.open_events():
            if e.row in set(old.tolist()):
                records.append(self._record(dataclasses.replace(e, state="resolved", ended_at=float(last_hot[e.row]))))
        self.version += 1
        self.pipeline.reset(old)
        self._matches.forget(old)
        self.table.remove(old)
        cache = self._labels_cache
        for r in old.tolist():
            if r < len(cache):
                cache[r] = None
        return records

    def snapshot(self) -> bytes:
        """All state as one blob (`vigil.state.to_blob`)."""
        with self.lock:
            return to_blob(self._payload())

    def save(self, store: SnapshotStore, name: str) -> None:
        """Write all state to `store`: the metadata, and the arrays as parts with no copy made of them.

        The query's lock is held until the arrays are written, so they cannot change midway.
        """
        with self.lock:
            meta, buffers = encode(self._payload())
            store.save_snapshots({name: meta}, {name: buffers})

    def _payload(self) -> dict[str, Any]:
        return {"format": _FORMAT, "pipeline": self.pipeline.payload(), "table": self.table.payload()}

    def restore(self, data: bytes, parts: list[bytearray] | None = None) -> None:
        """Load state saved by `snapshot` (or by `save`, with its `parts`); StateError, and
        nothing changed, if it is an old snapshot, unreadable, or not this query's."""
        what = f"state of query {self.name!r}"
        payload = decode(data, parts, what) if parts else from_blob(data, what)
        if entry(payload, "format", int, what) != _FORMAT:
            raise refuse(what, f"query format {payload['format']!r}, not {_FORMAT}")
        with self.lock:
            table = SeriesTable(self.name, self.limits.history_points)
            try:
                table.load(entry(payload, "table", dict, what))
                self.pipeline.load(entry(payload, "pipeline", dict, what))
            except (KeyError, IndexError, TypeError, ValueError) as exc:  # decoded, but not a query's state
                raise refuse(what, f"{type(exc).__name__}: {exc}") from None
            self.table = table
            self.version += 1
            self.pipeline.resize(max(self.table.state.n_rows, self.pipeline.n_rows))
            self._labels_cache.clear()
            self._matches = RowMatches(self.name, lambda r: self.table.labels[r])
            self._muted.clear()
            for key, accepted in self.accepted.items():
                self._put_acceptance(key, accepted)

    def accept(self, key: str, accepted: Acceptance | None) -> None:
        """Keep below the threshold, on series `key`, deviations up to `accepted` (None: none),
        now and whenever the series comes back."""
        with self.lock:
            if accepted is None or accepted.empty:
                self.accepted.pop(key, None)
                accepted = None
            else:
                self.accepted[key] = accepted
            self._put_acceptance(key, accepted)

    def _put_acceptance(self, key: str, accepted: Acceptance | None) -> None:
        row = self.table.index.get(key)
        if row is not None and row < self.pipeline.n_rows:
            self.pipeline.accept(row, accepted)

    def open_count(self) -> int:
        rows = self.table.active_rows()
        return int(self.table.state["anomalous"][rows].sum()) if rows.size else 0


