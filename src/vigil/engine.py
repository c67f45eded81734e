"""The engine: polls each query's source on its own schedule and runs its pipeline.

One `Query` per configured query (the host, each PromQL query, each replayed file) holds
its source, its pipeline (detectors, calibration, decision), its series table and its
status. `Engine.run` is the tick loop: a source that fails is retried with exponential
backoff while the others go on; the CPU work of a tick runs in a worker thread so the API
stays responsive; state is snapshotted to the store every `snapshot_every` and at stop,
and restored at start, so a restart resumes instead of relearning.

With a `Shard`, each `Query` takes in only the series its shard owns (`vigil.sharding`):
the others are dropped as their batches enter, before any row or state is made for them,
and counted (`Ingested.not_owned`); every series and event it outputs says the shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pickle
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vigil.config import Config, Detection, Limits
from vigil.errors import ConfigError, QueryRejected, SourceError, StateError
from vigil.events import event_doc, event_id
from vigil.exporter import Metrics, _label_string
from vigil.pipeline import Pipeline, build_pipeline
from vigil.series import SeriesTable
from vigil.sharding import Shard
from vigil.sources.base import SeriesBatch, Source, series_key
from vigil.store import Store

__all__ = ["Engine", "Ingested", "Query", "build_query_pipeline"]

log = logging.getLogger("vigil.engine")

_CHUNK = 512  # steps per pipeline call when a fetch brings a long history
_MAX_BACKOFF = 60.0
_RECENT = 30  # points of history in an event document
_FORMAT = 1


@dataclasses.dataclass
class Ingested:
    """What one ingest did: event documents, valid and invalid samples, refused series,
    and series left to other shards (None: the query is not split into shards)."""

    docs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    taken: int = 0
    invalid: int = 0
    refused: int = 0
    not_owned: int | None = None


def build_query_pipeline(d: Detection, where: str) -> Pipeline:
    try:
        return build_pipeline(
            d.detector, d.params, d.decision(), calibrate=d.calibrate, valid_range=d.valid_range,
            calibration_window=d.calibration_window, calibration_min_samples=d.calibration_min_samples, hold=d.hold,
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}.detection: {exc}") from None


class Query:
    """One named query: its source, pipeline, series and status.

    `shard`: this process's shard, said by every series and event of the query. With
    `split` (the default) the query takes in only the series that shard owns; the host
    query is not split: each replica watches its own machine whole.
    """

    def __init__(
        self, source: Source, detection: Detection, limits: Limits, where: str,
        shard: Shard | None = None, split: bool = True,
    ) -> None:
        self.name = source.name
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
        self._labels_cache: dict[int, str] = {}
        self._capped = False

    @property
    def interval(self) -> float:
        return float(self.source.interval)

    def label_strings(self, rows: np.ndarray) -> list[str]:
        out = []
        for r in rows.tolist():
            text = self._labels_cache.get(r)
            if text is None:
                labels = self.table.labels[r] or {}
                shard = None if self.shard is None else self.shard.label
                text = _label_string(labels, self.name, self.detection.detector, shard)
                self._labels_cache[r] = text
            out.append(text)
        return out

    def ingest(self, batches: list[SeriesBatch], now: float) -> Ingested:
        """Score and learn new samples."""
        with self.lock:
            return self._ingest(batches, now)

    def _ingest(self, batches: list[SeriesBatch], now: float) -> Ingested:
        if not batches:
            return Ingested()
        keys = [series_key(b.labels) for b in batches]
        not_owned = None
        if self.split and self.shard is not None:  # before any row is made for them
            index, owns = self.table.index, self.shard.owns_key
            mine = [i for i, k in enumerate(keys) if k in index or owns(self.name, k)]
            not_owned = len(batches) - len(mine)
            if not_owned:
                batches, keys = [batches[i] for i in mine], [keys[i] for i in mine]
            if not batches:
                return Ingested(not_owned=not_owned)
        rows, refused = self.table.rows_for([b.labels for b in batches], self.limits.max_series_per_query, keys)
        if refused and not self._capped:
            log.warning(
                "query %s: %d series refused, the cap of %d series per query is reached "
                "(limits.max_series_per_query); narrow the query or raise the cap",
                self.name, refused, self.limits.max_series_per_query,
            )
        self._capped = bool(refused)
        if self.table.state.n_rows > self.pipeline.n_rows:
            self.pipeline.resize(self.table.state.n_rows)
        fresh = [r for r in set(rows.tolist()) if r >= 0 and self.table.state["last_t"][r] == -np.inf]
        if fresh:
            self.pipeline.reset(np.array(fresh))
            for r in fresh:
                self._labels_cache.pop(r, None)

        keep_rows, keep_t, keep_v = [], [], []
        last_t = self.table.state["last_t"]
        for row, b in zip(rows.tolist(), batches, strict=True):
            if row < 0 or not len(b.t):
                continue
            t, v = np.asarray(b.t, dtype=np.float64), np.asarray(b.v, dtype=np.float64)
            new = t > last_t[row]  # drops duplicates of what was taken in and out-of-order points
            t, v = t[new], v[new]
            if t.size > 1:  # duplicates inside the batch: keep the last value of each time
                order = np.argsort(t, kind="stable")
                t, v = t[order], v[order]
                last = np.append(t[1:] != t[:-1], True)
                t, v = t[last], v[last]
            if t.size:
                keep_rows.append(row)
                keep_t.append(t)
                keep_v.append(v)
                self.table.state["last_seen"][row] = now
        if not keep_rows:
            return Ingested(refused=refused, not_owned=not_owned)

        docs: list[dict[str, Any]] = []
        times = np.unique(np.concatenate(keep_t))
        taken = invalid = 0
        for start in range(0, times.size, _CHUNK):
            grid = times[start : start + _CHUNK]
            x = np.full((len(keep_rows), grid.size), np.nan)
            present = np.zeros(x.shape, dtype=bool)
            for i, (t, v) in enumerate(zip(keep_t, keep_v, strict=True)):
                inside = (t >= grid[0]) & (t <= grid[-1])
                idx = np.searchsorted(grid, t[inside])
                x[i, idx] = v[inside]
                present[i, idx] = True
            active = present.any(axis=1)
            if not active.any():
                continue
            r = np.array(keep_rows, dtype=np.intp)[active]
            x, present = x[active], present[active]
            t_block = np.broadcast_to(grid, x.shape)
            res = self.pipeline.update(r, t_block, x)
            valid = present & ~res.invalid
            taken += int(valid.sum())
            invalid += int((present & res.invalid).sum())
            values = {"value": x, "expected": res.expected, "lower": res.lower, "upper": res.upper, "score": res.score}
            self.table.record(r, t_block, values, valid)
            last_valid = np.where(valid, np.arange(grid.size), -1).max(axis=1)
            seen = last_valid >= 0
            self.table.state["warming"][r[seen]] = res.warming_up[seen, last_valid[seen]]
            self.table.state["anomalous"][r] = self.pipeline.decision_state["open"][r]
            for e in res.events:
                docs.append(self._doc(e))
        return Ingested(docs, taken, invalid, refused, not_owned)

    def _doc(self, e: Any) -> dict[str, Any]:
        """The event's document, with the points of history up to its latest moment."""
        row = e.row
        key, labels = self.table.keys[row] or "", self.table.labels[row] or {}
        until = max(e.peak_at, e.ended_at if e.ended_at is not None else e.peak_at)
        recent = self.table.history(row)
        upto = sum(1 for t in recent["t"] if t is not None and t <= until)
        recent = {k: v[max(upto - _RECENT, 0) : upto] for k, v in recent.items()}
        shard = None if self.shard is None else self.shard.text
        return event_doc(e, self.name, key, labels, self.detection.detector, recent, shard)

    def evict(self, now: float) -> tuple[list[dict[str, Any]], int]:
        """Forget series silent for longer than `evict_after`; their open events resolve."""
        with self.lock:
            seen = self.table.state["last_seen"]
            rows = self.table.active_rows()
            if not rows.size:
                return [], 0
            old = rows[seen[rows] < now - self.limits.evict_after]
            return self._forget(old), int(old.size)

    def drop_not_owned(self) -> tuple[list[dict[str, Any]], int]:
        """Forget restored series this shard no longer owns (N changed); their open events resolve."""
        with self.lock:
            if not (self.split and self.shard is not None):
                return [], 0
            owns, keys = self.shard.owns_key, self.table.keys
            gone = np.array(
                [r for r in self.table.active_rows().tolist() if not owns(self.name, keys[r] or "")], dtype=np.intp
            )
            return self._forget(gone), int(gone.size)

    def _forget(self, old: np.ndarray) -> list[dict[str, Any]]:
        if not old.size:
            return []
        docs = []
        last_hot = self.pipeline.decision_state["last_hot"]
        for e in self.pipeline.open_events():
            if e.row in set(old.tolist()):
                docs.append(self._doc(dataclasses.replace(e, state="resolved", ended_at=float(last_hot[e.row]))))
        self.pipeline.reset(old)
        self.table.remove(old)
        for r in old.tolist():
            self._labels_cache.pop(r, None)
        return docs

    def snapshot(self) -> bytes:
        """All state as one pickle (arrays in band)."""
        with self.lock:
            return pickle.dumps(self._payload(), protocol=pickle.HIGHEST_PROTOCOL)

    def save(self, store: Store, name: str) -> None:
        """Write all state to `store` with the arrays out of band: no copy of them is made.

        The query's lock is held until the arrays are written, so they cannot change midway.
        """
        with self.lock:
            buffers: list[pickle.PickleBuffer] = []
            meta = pickle.dumps(self._payload(), protocol=5, buffer_callback=buffers.append)
            store.save_snapshots({name: meta}, {name: [b.raw() for b in buffers]})

    def _payload(self) -> dict[str, Any]:
        return {"format": _FORMAT, "pipeline": self.pipeline.payload(), "table": self.table.payload()}

    def restore(self, data: bytes, parts: list[bytearray] | None = None) -> None:
        """Load state saved by `snapshot` (or by `save`, with its `parts`)."""
        try:
            payload = pickle.loads(data, buffers=parts or ())  # noqa: S301 - our own data directory
        except Exception as exc:
            raise StateError(f"saved state of query {self.name!r} is unreadable ({exc}); delete it") from exc
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise StateError(f"saved state of query {self.name!r} has an unknown format")
        with self.lock:
            self.pipeline.load(payload["pipeline"])
            self.table.load(payload["table"])
            self.pipeline.resize(max(self.table.state.n_rows, self.pipeline.n_rows))
            self._labels_cache.clear()

    def open_count(self) -> int:
        rows = self.table.active_rows()
        return int(self.table.state["anomalous"][rows].sum()) if rows.size else 0


class Engine:
    """Runs every query's tick loop, the snapshots and the eviction."""

    def __init__(
        self,
        config: Config,
        queries: list[Query],
        store: Store,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.queries = {q.name: q for q in queries}
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.started_at = clock()
        self.restored: list[str] = []
        self._next_snapshot = 0.0
        self._next_evict = 0.0
        for q in queries:
            metrics.source_up.labels(q.name).set(0)

    def restore(self) -> None:
        """Load the saved state of every query that has one."""
        for q in self.queries.values():
            name = f"query:{q.name}"
            data = self.store.load_snapshot(name)
            if data is None:
                continue
            try:
                q.restore(data, self.store.load_snapshot_parts(name))
            except StateError as exc:
                log.warning("not restoring query %s: %s; it starts fresh", q.name, exc)
                continue
            self.restored.append(q.name)
            docs, dropped = q.drop_not_owned()
            if docs:
                self.store.upsert_events(docs)
            if dropped:
                log.info(
                    "query %s: %d saved series belong to other shards now (shard %s); forgotten",
                    q.name, dropped, q.shard.text if q.shard else "?",
                )
            log.info("query %s resumes with %d series from its saved state", q.name, len(q.table))

    async def validate(self) -> None:
        """Ask each source that can to check its query now; a rejected query stops the start."""
        for q in self.queries.values():
            check = getattr(q.source, "validate", None)
            if check is None:
                continue
            try:
                await check()
            except QueryRejected:
                raise
            except SourceError as exc:
                log.warning("query %s: cannot check it now (%s); will retry", q.name, exc)

    def snapshot(self) -> None:
        for q in self.queries.values():
            q.save(self.store, f"query:{q.name}")

    def open_event_ids(self) -> set[str]:
        """Ids of the events open now in every query (the notifier re-posts only these)."""
        out = set()
        for q in self.queries.values():
            with q.lock:
                for e in q.pipeline.open_events():
                    out.add(event_id(q.name, q.table.keys[e.row] or "", e.started_at))
        return out

    def ready(self) -> tuple[bool, dict[str, str]]:
        """Ready when every query's last fetch succeeded; with the reason per query otherwise."""
        reasons = {}
        for q in self.queries.values():
            if q.errors:
                reasons[q.name] = f"source failing: {q.last_error}"
            elif q.last_ok is None:
                reasons[q.name] = "no successful fetch yet"
        return not reasons, reasons

    async def tick(self, q: Query) -> None:
        now = self.clock()
        began = time.perf_counter()
        try:
            batches = await asyncio.wait_for(q.source.fetch(now), timeout=max(q.interval, 30.0))
        except (SourceError, TimeoutError) as exc:
            kind = "rejected" if isinstance(exc, QueryRejected) else "unavailable"
            message = str(exc) or "timed out"
            q.errors += 1
            if q.errors == 1 or q.last_error != message:
                log.warning("query %s: %s (retrying with backoff)", q.name, message)
            q.last_error = message
            self.metrics.source_errors.labels(q.name, kind).inc()
            self.metrics.source_up.labels(q.name).set(0)
            backoff = min(q.interval * 2 ** (q.errors - 1), _MAX_BACKOFF) * random.uniform(0.8, 1.2)  # noqa: S311
            q.next_due = self.clock() + max(backoff, q.interval)
            return
        if q.errors:
            log.info("query %s: source is back after %d failed fetches", q.name, q.errors)
        q.errors, q.last_error, q.last_ok = 0, None, now
        self.metrics.source_up.labels(q.name).set(1)
        try:
            got = await asyncio.to_thread(q.ingest, batches, now)
        except Exception as exc:  # a bug, not bad data: count it, say it, keep the other queries going
            q.errors += 1
            q.last_error = f"internal error while processing samples: {exc!r}"
            self.metrics.source_errors.labels(q.name, "internal").inc()
            log.exception("query %s: processing samples failed", q.name)
            q.next_due = self.clock() + q.interval
            return
        if got.docs:
            await asyncio.to_thread(self.store.upsert_events, got.docs)
            self.metrics.events.labels(q.name).inc(sum(d["state"] == "firing" for d in got.docs))
        self.metrics.samples.labels(q.name).inc(got.taken)
        if got.invalid:
            self.metrics.invalid.labels(q.name).inc(got.invalid)
        if got.refused:
            self.metrics.refused.labels(q.name).inc(got.refused)
        if got.not_owned is not None and self.metrics.not_owned is not None:
            self.metrics.not_owned.labels(q.name).set(got.not_owned)
        self.metrics.series.labels(q.name).set(len(q.table))
        self.metrics.events_open.labels(q.name).set(q.open_count())
        self.metrics.tick.labels(q.name).observe(time.perf_counter() - began)
        q.next_due = now + q.interval

    async def housekeeping(self, now: float, force_snapshot: bool = False) -> None:
        if now >= self._next_evict:
            self._next_evict = now + 60.0
            for q in self.queries.values():
                docs, n = await asyncio.to_thread(q.evict, now)
                if docs:
                    await asyncio.to_thread(self.store.upsert_events, docs)
                if n:
                    self.metrics.evicted.labels(q.name).inc(n)
                    self.metrics.series.labels(q.name).set(len(q.table))
                    self.metrics.events_open.labels(q.name).set(q.open_count())
        if force_snapshot or now >= self._next_snapshot:
            self._next_snapshot = now + self.config.snapshot_every
            await asyncio.to_thread(self.snapshot)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every query when due until `stop` is set, then save state."""
        self._next_snapshot = self.clock() + self.config.snapshot_every
        self._next_evict = self.clock() + 60.0
        try:
            while not stop.is_set():
                for q in list(self.queries.values()):
                    if stop.is_set():
                        break
                    if q.next_due <= self.clock():
                        try:
                            await self.tick(q)
                        except Exception:  # one broken query must not stop the others
                            log.exception("query %s: tick failed", q.name)
                            q.next_due = self.clock() + q.interval
                await self.housekeeping(self.clock())
                wait = min(q.next_due for q in self.queries.values()) - self.clock() if self.queries else 1.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(max(wait, 0.01), 1.0))
        finally:
            await asyncio.to_thread(self.snapshot)
            for q in self.queries.values():
                await q.source.close()
