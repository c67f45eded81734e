"""SQLite store (WAL) in the data directory: anomaly events, people's feedback on them, and state snapshots.

Events are upserted by id, so replaying samples after a restart updates an event instead
of opening a second one. Hooks added with `add_event_hook` run inside the transaction that
writes events (the notification outbox enqueues there), so an event is stored and queued
together or not at all. Snapshots are opaque blobs by name (one per query) with their
parts: the large buffers are files in ``data_dir/snapshots`` (raw bytes, written and synced
before the transaction that names them commits), so a crash leaves either the old
snapshot or the new one, and a snapshot of 100,000 series costs a file write, not a
gigabyte pushed through SQLite's pages and its WAL.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from vigil.engine.records import EventRecord
from vigil.errors import StateError, StoreError
from vigil.outputs.event import event_doc

__all__ = ["Store", "trouble", "where"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    query TEXT NOT NULL,
    series TEXT NOT NULL,          -- canonical series key
    state TEXT NOT NULL,           -- firing | resolved
    started_at REAL NOT NULL,
    ended_at REAL,
    peak_score REAL,
    doc TEXT NOT NULL,             -- the event JSON
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_started ON events (started_at);
CREATE INDEX IF NOT EXISTS events_state ON events (state);
CREATE TABLE IF NOT EXISTS feedback (  -- verdicts on events (vigil.outputs.feedback), kept once undone
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    query TEXT NOT NULL,
    series TEXT NOT NULL,          -- canonical series key
    verdict TEXT NOT NULL,         -- not_an_incident | incident
    note TEXT,
    author TEXT NOT NULL,
    at REAL NOT NULL,
    accepted TEXT,                 -- JSON: the deviation a not_an_incident accepts
    undone_at REAL,                -- when it was undone, or replaced by a newer verdict
    undone_by TEXT
);
CREATE INDEX IF NOT EXISTS feedback_event ON feedback (event_id);
CREATE INDEX IF NOT EXISTS feedback_series ON feedback (query, series);
CREATE TABLE IF NOT EXISTS snapshots (
    name TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    saved_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshot_parts (  -- large buffers of a snapshot, one row each (before files)
    name TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (name, idx)
);
CREATE TABLE IF NOT EXISTS snapshot_files (  -- large buffers of a snapshot, a file each in snapshots/
    name TEXT NOT NULL,
    idx INTEGER NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (name, idx)
);
"""


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE condition and its arguments from ``(sql with one ?, value)`` pairs; None values are left out."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    return " AND ".join(["1 = 1", *(sql for sql, _ in used)]), [value for _, value in used]


def trouble(path: Path, exc: BaseException) -> str:
    """What went wrong with the store at `path`, and what to do about it, in one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    if "full" in lowered or getattr(exc, "errno", None) == errno.ENOSPC:
        return f"{path}: the disk is full; free space on the disk of data_dir (Vigil retries by itself)"
    if "malformed" in lowered or "not a database" in lowered or type(exc) is sqlite3.DatabaseError:
        return (
            f"{path} is damaged ({text}); move it aside (for example to vigil.db.damaged) and start again: "
            "Vigil starts with an empty store and relearns"
        )
    if isinstance(exc, OSError) or any(w in lowered for w in ("readonly", "read-only", "permission", "unable to open")):
        return f"{path}: {text}; check that data_dir is a folder writable by the user running Vigil, or point it elsewhere"
    return f"{path}: {text}"


class Store:
    """Thread-safe access to `vigil.db` in `data_dir` (created if missing).

    A write that fails (disk full, read-only, I/O error) is rolled back whole and raises
    `StoreError`, so the caller can retry it whole; a store that cannot be opened or is
    damaged raises `StateError` at start, saying why and what to do.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "vigil.db"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            problem = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {' '.join(problem.split())}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            # reads have a connection of their own: in WAL mode they see the last commit and never
            # wait for a write in progress (a snapshot of 100,000 series takes seconds)
            self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.parts_dir = self.path.parent / "snapshots"
            self.parts_dir.mkdir(exist_ok=True)
            named = {f for (f,) in self._db.execute("SELECT file FROM snapshot_files")}
            for stray in self.parts_dir.iterdir():  # parts of a save that did not commit
                if stray.name not in named:
                    stray.unlink(missing_ok=True)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the store: {trouble(self.path, exc)}") from None
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._hooks: list[Callable[[sqlite3.Connection, list[dict[str, Any]]], None]] = []

    def add_event_hook(self, hook: Callable[[sqlite3.Connection, list[dict[str, Any]]], None]) -> None:
        """Call `hook(connection, docs)` inside every transaction that writes events."""
        self._hooks.append(hook)

    @contextmanager
    def connection(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The reading connection, or with `write` the writing one in one transaction, which a
        failed write (`StoreError`) leaves as if it had not begun; each under its own lock."""
        if not write:
            with self._read_lock:
                yield self._reader
            return
        with self._lock:
            try:
                self._db.execute("BEGIN")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:  # SQLite may have rolled back already (a full disk at COMMIT)
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error | OSError):
                    raise StoreError(f"cannot write to the store: {trouble(self.path, exc)}") from None
                raise

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._reader.close()
            self._db.close()

    def record_events(self, records: Iterable[EventRecord]) -> None:
        """Store the engine's events as event documents (`vigil.outputs.event`)."""
        self.upsert_events(map(event_doc, records))

    def upsert_events(self, docs: Iterable[dict[str, Any]]) -> None:
        docs = list(docs)
        rows = [
            (
                d["id"], d["query"], d["series_key"], d["state"], d["started_ts"], d.get("ended_ts"),
                d["peak_score"], json.dumps(d["event"], allow_nan=False), time.time(),
            )
            for d in docs
        ]
        if not rows:
            return
        with self.connection(write=True) as db:
            db.executemany(
                """INSERT INTO events (id, query, series, state, started_at, ended_at, peak_score, doc, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET state = excluded.state, ended_at = excluded.ended_at,
                     peak_score = excluded.peak_score, doc = excluded.doc, updated_at = excluded.updated_at""",
                rows,
            )
            for hook in self._hooks:
                hook(db, docs)

    def events(
        self,
        *,
        start: float | None = None,
        end: float | None = None,
        state: str | None = None,
        query: str | None = None,
        series: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Events overlapping [start, end], newest first, and how many match in all.

        `series` restricts to those canonical series keys (label filtering is done by the
        caller, which knows the labels).
        """
        if series is not None and not series:
            return [], 0
        cond, args = where(
            ("(ended_at IS NULL OR ended_at >= ?)", start), ("started_at <= ?", end), ("state = ?", state),
            ("query = ?", query),
        )
        if series is not None:
            cond += f" AND series IN ({','.join('?' * len(series))})"
            args.extend(series)
        with self.connection() as db:
            total = db.execute(f"SELECT COUNT(*) FROM events WHERE {cond}", args).fetchone()[0]  # noqa: S608
            rows = db.execute(
                f"SELECT doc FROM events WHERE {cond} ORDER BY started_at DESC, id LIMIT ? OFFSET ?",  # noqa: S608
                [*args, limit, offset],
            ).fetchall()
        return [json.loads(r[0]) for r in rows], int(total)

    def event(self, event_id: str) -> dict[str, Any] | None:
        """The event document with this id, or None."""
        with self.connection() as db:
            row = db.execute("SELECT doc FROM events WHERE id = ?", (event_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def count_since(self, since: float) -> int:
        with self.connection() as db:
            return int(db.execute("SELECT COUNT(*) FROM events WHERE started_at >= ?", (since,)).fetchone()[0])

    def save_snapshots(
        self, blobs: dict[str, bytes], parts: dict[str, Sequence[memoryview | bytes]] | None = None
    ) -> None:
        """Replace the named snapshots in one transaction.

        `parts` are a snapshot's large buffers (the bytes of its arrays, `vigil.state.encode`),
        written to files straight from memory, so saving never needs a second copy of all
        the state; the files of the snapshots replaced are removed once the new ones are in.
        """
        now = time.time()
        written: list[Path] = []
        try:
            files = {name: [self._write_part(buf, written) for buf in bufs] for name, bufs in (parts or {}).items()}
            if written:
                _sync_dir(self.parts_dir)
            with self.connection(write=True) as db:
                old = []
                for name, data in blobs.items():
                    db.execute("INSERT OR REPLACE INTO snapshots (name, data, saved_at) VALUES (?, ?, ?)", (name, data, now))
                    db.execute("DELETE FROM snapshot_parts WHERE name = ?", (name,))
                    old += db.execute("SELECT file FROM snapshot_files WHERE name = ?", (name,)).fetchall()
                    db.execute("DELETE FROM snapshot_files WHERE name = ?", (name,))
                    db.executemany(
                        "INSERT INTO snapshot_files (name, idx, file, size) VALUES (?, ?, ?, ?)",
                        [(name, i, path.name, size) for i, (path, size) in enumerate(files.get(name, ()))],
                    )
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        for (file,) in old:
            (self.parts_dir / file).unlink(missing_ok=True)

    def _write_part(self, buf: memoryview | bytes, written: list[Path]) -> tuple[Path, int]:
        path = self.parts_dir / f"{secrets.token_hex(8)}.part"
        written.append(path)
        try:
            with path.open("xb") as f:
                f.write(buf)
                f.flush()
                os.fsync(f.fileno())
                return path, f.tell()
        except OSError as exc:
            raise StoreError(f"cannot write to the store: {trouble(path, exc)}") from None

    def load_snapshot(self, name: str) -> bytes | None:
        row = self._read("SELECT data FROM snapshots WHERE name = ?", (name,))
        return None if not row else bytes(row[0][0])

    def load_snapshot_parts(self, name: str) -> list[bytearray]:
        """The large buffers of a snapshot, in order, as writable buffers."""
        files = self._read("SELECT file, size FROM snapshot_files WHERE name = ? ORDER BY idx", (name,))
        if not files:  # saved before parts were files
            return [bytearray(r[0]) for r in self._read("SELECT data FROM snapshot_parts WHERE name = ? ORDER BY idx", (name,))]
        out = []
        for file, size in files:
            path = self.parts_dir / file
            try:
                buf = bytearray(size)
                with path.open("rb") as f:
                    got = f.readinto(buf)
            except OSError as exc:
                raise StateError(f"cannot read saved state: {trouble(path, exc)}") from None
            if got != size:
                raise StateError(f"cannot read saved state: {path} holds {got} bytes, not the {size} saved; "
                                 "move data_dir/snapshots aside and start again: Vigil relearns")
            out.append(buf)
        return out

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        """Rows of a read of saved state; StateError, saying why, if the store cannot give them."""
        try:
            with self.connection() as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read saved state: {trouble(self.path, exc)}") from None


def _sync_dir(path: Path) -> None:
    """Make the names of new files in `path` durable (their data is synced already)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
