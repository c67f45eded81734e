"""The engine: polls each query's source on its own schedule and runs its pipeline.

`Engine.run` is the tick loop over the `Query` objects (`vigil.engine.query`): a source
that fails is retried with exponential backoff while the others go on; the CPU work of a
tick runs in a worker thread so the API stays responsive; the events each tick brings go
to the event log (`EventLog`, the store), state is snapshotted every `snapshot_every` and
at stop, and restored at start, so a restart resumes instead of relearning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from vigil.config import Config
from vigil.engine.query import EventRecord, Query, SnapshotStore
from vigil.errors import QueryRejected, SourceError, StateError
from vigil.labels import event_id
from vigil.metrics import Metrics

__all__ = ["Engine", "EventLog"]

log = logging.getLogger("vigil.engine")

_MAX_BACKOFF = 60.0


class EventLog(SnapshotStore, Protocol):
    """What the engine writes to: its events, and its state (`vigil.outputs.store.Store`)."""

    def record_events(self, records: Sequence[EventRecord]) -> None: ...


class Engine:
    """Runs every query's tick loop, the snapshots and the eviction."""

    def __init__(
        self,
        config: Config,
        queries: list[Query],
        store: EventLog,
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
                log.warning("not restoring query %s (it starts fresh): %s", q.name, exc)
                continue
            self.restored.append(q.name)
            records, dropped = q.drop_not_owned()
            if records:
                self.store.record_events(records)
            if dropped:
                log.info(
                    "query %s: %d saved series belong to other shards now (shard %s); forgotten",
                    q.name, dropped, q.shard.text if q.shard else "?",
                )
            log.info("query %s resumes with %d series from its saved state", q.name, len(q.table))

    async def validate(self) -> None:
        """Ask each source to check its query now; a rejected query stops the start."""
        for q in self.queries.values():
            try:
                await q.source.validate()
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
        if got.events:
            await asyncio.to_thread(self.store.record_events, got.events)
            self.metrics.events.labels(q.name).inc(sum(r.event.state == "firing" for r in got.events))
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
                records, n = await asyncio.to_thread(q.evict, now)
                if records:
                    await asyncio.to_thread(self.store.record_events, records)
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
