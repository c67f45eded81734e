"""The engine: polls each query's source on its own schedule and runs its pipeline.

`Engine.run` runs one tick loop per `Query` (`vigil.engine.query`), each its own task, so
a source that hangs or fails (retried with exponential backoff) delays no other; the CPU
work of a tick runs in a worker thread so the API stays responsive. The events each tick
brings go to the event log (`EventLog`, the store); state is snapshotted every
`snapshot_every` and at stop, and restored at start, so a restart resumes instead of
relearning. A write the store refuses (a full disk) loses nothing: the events wait in
memory and the snapshot is retried with backoff, detection goes on, and the engine says
it is not ready, and why, until a write succeeds.
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
from vigil.engine.query import Query
from vigil.engine.records import EventRecord, SnapshotStore
from vigil.errors import QueryRejected, SourceError, StateError, StoreError
from vigil.labels import event_id
from vigil.metrics import Metrics

__all__ = ["Engine", "EventLog"]

log = logging.getLogger("vigil.engine")

_MAX_BACKOFF = 60.0
_FIRST_SAVE_RETRY = 5.0  # seconds before a failed snapshot is tried again; doubles up to snapshot_every
_MAX_UNSAVED = 100_000  # events kept in memory while the store refuses writes


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
        self._unsaved: list[EventRecord] = []  # events the store has not taken yet, oldest first
        self._saving = asyncio.Lock()
        self.store_error: str | None = None  # why the last write to the store failed; None once every kind that failed went through
        self._writes = 0  # event writes the store took
        self.busy = 0  # queries ticking now (the API paces itself meanwhile)
        self._failing: dict[str, int] = {}  # failed writes in a row, by what was written
        for q in queries:
            metrics.source_up.labels(q.name).set(0)

    def restore(self) -> None:
        """Load the saved state of every query that has one."""
        for q in self.queries.values():
            name = f"query:{q.name}"
            try:
                data = self.store.load_snapshot(name)
                if data is None:
                    continue
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
        """Save every query's state; StoreError (after trying them all) if the store refused one."""
        failed: StoreError | None = None
        for q in self.queries.values():
            try:
                q.save(self.store, f"query:{q.name}")
            except StoreError as exc:
                failed = failed or exc
        if failed is not None:
            raise failed

    def open_event_ids(self) -> set[str]:
        """Ids of the events open now in every query (the notifier re-posts only these)."""
        out = set()
        for q in self.queries.values():
            with q.lock:
                for e in q.pipeline.open_events():
                    out.add(event_id(q.name, q.table.keys[e.row] or "", e.started_at))
        return out

    @property
    def generation(self) -> int:
        """Changes whenever a query's series or results change or events are stored (the API caches on it)."""
        return self._writes + sum(q.version for q in self.queries.values())

    def ready(self) -> tuple[bool, dict[str, str]]:
        """Ready when every query's last fetch succeeded and the store takes writes; with the
        reason per query (and ``store``) otherwise. A query refusing series is degraded: it
        says so among the reasons, and stays ready."""
        reasons, ready = {}, True
        for q in self.queries.values():
            if q.errors:
                reasons[q.name], ready = f"source failing: {q.last_error}", False
            elif q.last_ok is None:
                reasons[q.name], ready = "no successful fetch yet", False
            elif q.refused_now:
                reasons[q.name] = (
                    f"degraded: {q.refused_now} series refused at the last fetch, the cap of "
                    f"{q.limits.max_series_per_query} series is reached (limits.max_series_per_query); "
                    "narrow the query or raise the cap"
                )
        if self.store_error is not None:
            reasons["store"], ready = f"{self.store_error}; detection goes on, unsaved events wait in memory", False
        return ready, reasons

    async def tick(self, q: Query) -> None:
        self.busy += 1
        try:
            await self._tick(q)
        finally:
            self.busy -= 1

    async def _tick(self, q: Query) -> None:
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
            self.metrics.events.labels(q.name).inc(sum(r.event.state == "firing" for r in got.events))
        await self.save_events(got.events)
        self.metrics.samples.labels(q.name).inc(got.taken)
        if got.invalid:
            self.metrics.invalid.labels(q.name).inc(got.invalid)
        refused = got.refused + int(getattr(q.source, "capped_series", 0))  # the source's own cap too
        q.refused_now = refused
        if refused:
            self.metrics.refused.labels(q.name).inc(refused)
        if got.not_owned is not None and self.metrics.not_owned is not None:
            self.metrics.not_owned.labels(q.name).set(got.not_owned)
        self.metrics.series.labels(q.name).set(len(q.table))
        self.metrics.events_open.labels(q.name).set(q.open_count())
        self.metrics.tick.labels(q.name).observe(time.perf_counter() - began)
        q.next_due = now + q.interval

    def _evict_every(self) -> float:
        return min([60.0, *(q.evict_after / 2 for q in self.queries.values())])

    async def housekeeping(self, now: float, force_snapshot: bool = False) -> None:
        if now >= self._next_evict:
            self._next_evict = now + self._evict_every()
            for q in self.queries.values():
                records, n = await asyncio.to_thread(q.evict)
                await self.save_events(records)
                if n:
                    self.metrics.evicted.labels(q.name).inc(n)
                    self.metrics.series.labels(q.name).set(len(q.table))
                    self.metrics.events_open.labels(q.name).set(q.open_count())
        if self._unsaved:
            await self.save_events([])
        if force_snapshot or now >= self._next_snapshot:
            self._next_snapshot = now + self.config.snapshot_every
            await self.save_state()

    async def save_events(self, records: Sequence[EventRecord]) -> None:
        """Write `records` (after any the store refused before) to the event log; kept in memory if it refuses."""
        async with self._saving:
            self._unsaved.extend(records)
            if not self._unsaved:
                return
            if len(self._unsaved) > _MAX_UNSAVED:
                dropped = len(self._unsaved) - _MAX_UNSAVED
                del self._unsaved[:dropped]
                log.error("%d events could not be stored and are dropped, the oldest first", dropped)
            try:
                await asyncio.to_thread(self.store.record_events, list(self._unsaved))
            except StoreError as exc:
                self._store_failed(exc, "events")
                return
            self._unsaved.clear()
            self._writes += 1
            self._store_ok("events")

    async def save_state(self) -> bool:
        """Snapshot every query; on a refused write, try again after a backoff (5 s, doubling up to `snapshot_every`)."""
        try:
            await asyncio.to_thread(self.snapshot)
        except StoreError as exc:
            self._store_failed(exc, "snapshot")
            retry = min(_FIRST_SAVE_RETRY * 2 ** (self._failing["snapshot"] - 1), self.config.snapshot_every)
            self._next_snapshot = self.clock() + retry
            return False
        self._store_ok("snapshot")
        return True

    def _store_failed(self, exc: StoreError, what: str) -> None:
        message = str(exc)
        if not self._failing:  # once per spell, whichever write failed first
            log.error("%s; detection goes on and the write is retried", message)
        self.store_error = message
        self._failing[what] = self._failing.get(what, 0) + 1
        self.metrics.store_errors.labels(what).inc()

    def _store_ok(self, what: str) -> None:
        """`what` was written. The spell ends once every kind of write that failed has gone
        through: on a nearly full disk a small write can fit where a snapshot does not."""
        failed = self._failing.pop(what, 0)
        if failed and not self._failing:
            log.info("the store takes writes again (the %s went through after %d failures)", what, failed)
        if not self._failing:
            self.store_error = None

    async def _tick_loop(self, q: Query, stop: asyncio.Event) -> None:
        """Tick `q` whenever it is due until `stop` is set."""
        while not stop.is_set():
            if q.next_due <= self.clock():
                try:
                    await self.tick(q)
                except Exception:  # one broken query must not stop the others
                    log.exception("query %s: tick failed", q.name)
                    q.next_due = self.clock() + q.interval
            wait = q.next_due - self.clock()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(max(wait, 0.01), 1.0))

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every query on its own schedule until `stop` is set, then save state."""
        self._next_snapshot = self.clock() + self.config.snapshot_every
        self._next_evict = self.clock() + self._evict_every()
        loops = [asyncio.create_task(self._tick_loop(q, stop)) for q in self.queries.values()]
        try:
            while not stop.is_set():
                await self.housekeeping(self.clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
        finally:
            stop.set()
            _, hung = await asyncio.wait(loops, timeout=5.0)  # a fetch in flight is not waited for
            for task in hung:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.save_events([])
            await self.save_state()
            for q in self.queries.values():
                await q.source.close()
