"""The engine: every watched query, its series, and the tick loop that feeds them.

`query` holds one watched query (source, pipeline, series table) and takes in its
samples, giving back what `records` names; `series` maps a query's label sets to rows with their latest outputs and recent
history; `loop` runs every query on its own schedule, writes their events and state to the
store, and restores them at start.
"""

from __future__ import annotations

from vigil.engine.loop import Engine, EventLog
from vigil.engine.query import Query, build_query_pipeline
from vigil.engine.records import EventRecord, Ingested, SnapshotStore
from vigil.engine.series import SeriesTable

__all__ = ["Engine", "EventLog", "EventRecord", "Ingested", "Query", "SeriesTable", "SnapshotStore", "build_query_pipeline"]
