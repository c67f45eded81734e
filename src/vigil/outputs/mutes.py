"""One-off mutes: kept in the store's database, applied by the engine through its `Silences`.

A mute silences the series its selector matches (``{instance="db-1"}``; the query's name is
the label ``query``) from ``starts_at`` to ``ends_at``: their events are recorded, marked
``muted: "mute:<id>"``, and notify nobody; unless the mute says ``learn``, the model does
not learn the muted samples. `MuteBook.create` is the one way to make a mute (the API and
the MCP server both call it); the table ``mutes`` holds at most `MAX_MUTES` that are not
over, and a mute that is over is deleted the next time the book is written.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from vigil.engine.mutes import Silence, Silences
from vigil.formatting import iso
from vigil.matchers import MatcherError, parse_selector
from vigil.outputs.feedback import MAX_AUTHOR
from vigil.outputs.store import Store

__all__ = ["MAX_COMMENT", "MAX_MUTES", "MAX_SPAN", "MuteBook", "MuteError"]

MAX_MUTES = 1000  # mutes not over yet
MAX_COMMENT = 1000  # characters
MAX_SPAN = 366 * 86400.0  # seconds from the start to the end of one mute
_LATEST = 253402300799.0  # 9999-12-31T23:59:59Z

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mutes (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,       -- the PromQL selector as given
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    comment TEXT NOT NULL,
    author TEXT NOT NULL,
    learn INTEGER NOT NULL,       -- 1: the model learns the muted samples
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mutes_end ON mutes (ends_at);
"""
_COLUMNS = "id, matchers, starts_at, ends_at, comment, author, learn, created_at"


class MuteError(ValueError):
    """A mute that cannot be made; `status` is the HTTP status that says so (400 bad input, 409 too many)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class MuteBook:
    """The ``mutes`` table in `store`'s database, published to `silences` at start and at every change."""

    def __init__(self, store: Store, silences: Silences, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.silences = silences
        self.clock = clock
        self._made: dict[str, Silence] = {}
        self._lock = threading.Lock()
        with store.connection(write=True) as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
        self._publish()

    def create(
        self, matchers: str, ends_at: float, starts_at: float | None = None, comment: str = "",
        author: str = "anonymous", learn: bool = False,
    ) -> dict[str, Any]:
        """Make a mute from `starts_at` (default now) to `ends_at` (Unix seconds) and apply it at
        once; the mute as `list` shows it. MuteError saying what to change if it cannot be made."""
        now = self.clock()
        start = now if starts_at is None else starts_at
        try:
            parse_selector(matchers, "matchers")
        except MatcherError as exc:
            raise MuteError(str(exc)) from None
        if not (0 <= start <= _LATEST and 0 <= ends_at <= _LATEST):
            raise MuteError("starts_at and ends_at must be times from 1970 to 9999")
        if ends_at <= start:
            raise MuteError(f"ends_at ({iso(ends_at)}) is not after starts_at ({iso(start)}); give a later end")
        if ends_at <= now:
            raise MuteError(f"ends_at ({iso(ends_at)}) is already past; give an end in the future")
        if ends_at - start > MAX_SPAN:
            raise MuteError("the mute lasts over 366 days; give a nearer end, or a maintenance window in the config")
        if len(comment) > MAX_COMMENT or len(author) > MAX_AUTHOR:
            raise MuteError(f"comment is at most {MAX_COMMENT} characters and author at most {MAX_AUTHOR}")
        row = (secrets.token_hex(8), matchers, start, ends_at, comment, author or "anonymous", int(learn), now)
        with self.store.connection(write=True) as db:
            db.execute("DELETE FROM mutes WHERE ends_at <= ?", (now,))
            (count,) = db.execute("SELECT COUNT(*) FROM mutes").fetchone()
            if count >= MAX_MUTES:
                raise MuteError(f"{count} mutes are set, the most Vigil keeps; delete some first", 409)
            db.execute(f"INSERT INTO mutes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)  # noqa: S608
        self._publish()
        return self._doc(row, now)

    def list(self) -> list[dict[str, Any]]:
        """The mutes not over yet, the soonest to start first."""
        now = self.clock()
        with self.store.connection() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM mutes WHERE ends_at > ? ORDER BY starts_at, id", (now,)  # noqa: S608
            ).fetchall()
        return [self._doc(r, now) for r in rows]

    def delete(self, mute_id: str) -> bool:
        """Remove a mute (over at once); whether there was one with that id."""
        with self.store.connection(write=True) as db:
            gone = db.execute("DELETE FROM mutes WHERE id = ?", (mute_id,)).rowcount
        self._publish()
        return bool(gone)

    def _publish(self) -> None:
        """Hand the mutes not over to the engine (one publication at a time, so the last one
        handed is the last one read); one unchanged keeps its `Silence`, and so what the
        queries worked out about which series it selects."""
        with self._lock:
            made = {}
            for m in self.list():
                made[m["id"]] = self._made.get(m["id"]) or Silence.once(
                    f"mute:{m['id']}", m["matchers"], m["starts_ts"], m["ends_ts"], m["learn"]
                )
            self._made = made
            self.silences.set_mutes(list(made.values()))

    @staticmethod
    def _doc(row: tuple[Any, ...], now: float) -> dict[str, Any]:
        mute_id, matchers, start, end, comment, author, learn, created = row
        return {
            "id": mute_id, "matchers": matchers, "starts_at": iso(start), "ends_at": iso(end), "comment": comment,
            "author": author, "learn": bool(learn), "created_at": iso(created), "active": start <= now < end,
            "starts_ts": start, "ends_ts": end,
        }
