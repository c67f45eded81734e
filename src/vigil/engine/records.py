"""What a query gives back and where it keeps its state: event records, what one ingest
did, and the store a query snapshots to (a protocol: the SQLite store is one floor up)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

from vigil.detection.decision import Event
from vigil.state import FloatArray

__all__ = ["EventRecord", "Ingested", "SnapshotStore"]


@dataclasses.dataclass(frozen=True)
class EventRecord:
    """An event of one series as the engine saw it: what the event document is made of.

    `recent` holds the series' recent points (t, value, expected, lower, upper, score; lists
    or arrays, oldest first), of which the document keeps the last ones up to the event's
    latest moment; `threshold` is the score from which a sample is hot; `shard` is
    ``"i/N"`` when Vigil runs sharded.
    """

    event: Event
    query: str
    key: str
    labels: dict[str, str]
    detector: str
    threshold: float
    recent: Mapping[str, Sequence[float | None] | FloatArray]
    shard: str | None = None
    muted: str | None = None  # the silence (`vigil.engine.mutes`) that covered the series when the event began


class SnapshotStore(Protocol):
    """Where the engine keeps its state between runs (`vigil.outputs.store.Store`)."""

    def load_snapshot(self, name: str) -> bytes | None: ...

    def load_snapshot_parts(self, name: str) -> list[bytearray]: ...

    def save_snapshots(
        self, blobs: dict[str, bytes], parts: dict[str, Sequence[memoryview | bytes]] | None = None
    ) -> None: ...


@dataclasses.dataclass
class Ingested:
    """What one ingest did: events, valid and invalid samples, refused series, and series
    left to other shards (None: the query is not split into shards)."""

    events: list[EventRecord] = dataclasses.field(default_factory=list)
    taken: int = 0
    invalid: int = 0
    refused: int = 0
    not_owned: int | None = None
