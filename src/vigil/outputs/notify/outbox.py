"""The outbox: every notification is a row in SQLite before anything is sent.

The table ``outbox`` lives in the store's database (``vigil.db``) and is written in the
same transaction as the events (`Store.add_event_hook`): an event is stored and queued
together or not at all. One row per (receiver, idempotency key), the key being
``"<event id>:<state>"``, so the samples replayed after a restart, which bring the same
events again, enqueue nothing twice (``INSERT OR IGNORE``).

A row is ``pending`` until the sender delivers it (``sent``) or gives up (``dead``:
rejected with a 4xx, or out of attempts or time). ``attempts``, ``next_attempt_at`` and
``last_error`` say where a pending row stands. The payload is the event JSON as it was
when queued; the body each receiver gets is rendered from it at send time.

Which receivers get an event (`Route`): those whose ``queries`` include the event's query
(all when unset), whose ``states`` include its state, and whose ``min_score`` its peak
score reaches. A resolution is queued for a receiver only if the firing was, so nobody
hears "resolved" about an anomaly they never heard of. A muted event (its ``muted`` set:
a maintenance window or a mute covered its series when it began) is queued for nobody,
but the resolution of one whose firing was queued before it was marked (a mute made later
that reaches back over its start) still is, so no receiver is left with an alert that never ends. An event that was already over more
than `max_age` seconds ago when it was stored (found in the history read at the first
start, or in a long catch-up after downtime) is not queued at all: it is news to nobody.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.config import Receiver
from vigil.outputs.notify.content import idempotency_key
from vigil.outputs.store import Store, where

__all__ = ["Message", "Outbox", "Route", "statuses"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    key TEXT NOT NULL,                      -- idempotency key: "<event id>:<state>"
    event_id TEXT NOT NULL,
    state TEXT NOT NULL,                    -- the event's state: firing | resolved
    payload TEXT NOT NULL,                  -- the event JSON when queued
    status TEXT NOT NULL DEFAULT 'pending', -- pending | sent | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    sent_at REAL,
    UNIQUE (receiver, key)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (receiver, status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_event ON outbox (event_id, receiver);
"""

STATUSES = ("pending", "sent", "dead")
# a pending message whose event has no older pending message for the same receiver
_READY = """o.status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.event_id = o.event_id
            AND p.receiver = o.receiver AND p.status = 'pending' AND p.id < o.id)"""


@dataclass(frozen=True)
class Route:
    """Which events one receiver gets."""

    receiver: str
    queries: frozenset[str] | None = None
    min_score: float = 0.0
    states: frozenset[str] = frozenset({"firing", "resolved"})

    @classmethod
    def of(cls, r: Receiver) -> Route:
        return cls(r.name, None if r.queries is None else frozenset(r.queries), r.min_score, frozenset(r.states))

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self.queries is not None and event.get("query") not in self.queries:
            return False
        if event.get("state") not in self.states:
            return False
        score = event.get("peak_score")
        return self.min_score <= 0 or (isinstance(score, int | float) and score >= self.min_score)


@dataclass(frozen=True)
class Message:
    """One pending message as the sender sees it."""

    id: int
    receiver: str
    key: str
    event_id: str
    state: str
    event: dict[str, Any]
    attempts: int
    created_at: float


class Outbox:
    """The ``outbox`` table in `store`'s database, filled for `routes` as events are stored.

    `clock` gives the times written (Unix seconds); its time when the outbox is made is when
    Vigil started (`started`): an event over before then is history. `on_enqueue` is
    called, from the thread that wrote the events, with the names of the receivers that got
    new rows.
    """

    def __init__(
        self, store: Store, routes: Sequence[Route], clock: Callable[[], float] = time.time, max_age: float = 3600.0
    ) -> None:
        self.store = store
        self.routes = list(routes)
        self.clock = clock
        self.max_age = max_age
        self.started = clock()
        self.on_enqueue: Callable[[set[str]], None] | None = None
        with store.connection(write=True) as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
        store.add_event_hook(self._enqueue)

    # -- writing -------------------------------------------------------------------------

    def _enqueue(self, db: sqlite3.Connection, docs: list[dict[str, Any]]) -> None:
        """Queue `docs` (the store's event records) for every route that wants them."""
        now = self.clock()
        woken: set[str] = set()
        news_since = max(self.started, now - self.max_age)
        old = {  # events over before Vigil started, or long ago: history, not news
            d["id"] for d in docs
            if d["state"] == "resolved" and d.get("ended_ts") is not None and d["ended_ts"] < news_since
        }
        for doc in docs:
            event = doc["event"]
            muted = bool(event.get("muted"))
            if muted and event["state"] == "firing":
                continue
            key = idempotency_key(event)
            for route in self.routes:
                if not route.matches(event) or (doc["id"] in old and event["state"] == "firing"):
                    continue
                if event["state"] == "resolved" and ("firing" in route.states or doc["id"] in old or muted):
                    fired = db.execute(
                        "SELECT 1 FROM outbox WHERE receiver = ? AND key = ?", (route.receiver, f"{event['id']}:firing")
                    ).fetchone()
                    if fired is None:
                        continue
                cur = db.execute(
                    """INSERT OR IGNORE INTO outbox
                       (receiver, key, event_id, state, payload, next_attempt_at, created_at, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (route.receiver, key, event["id"], event["state"], json.dumps(event, allow_nan=False),
                     now, now, now),
                )
                if cur.rowcount:
                    woken.add(route.receiver)
        if woken and self.on_enqueue is not None:
            self.on_enqueue(woken)

    def enqueue(self, docs: Iterable[dict[str, Any]]) -> None:
        """Queue event records outside an event write (tests, tools)."""
        with self.store.connection(write=True) as db:
            self._enqueue(db, list(docs))

    def record(
        self, message_id: int, status: str, attempts: int, next_attempt_at: float | None, error: str | None
    ) -> None:
        """Write the outcome of one attempt."""
        now = self.clock()
        with self.store.connection(write=True) as db:
            db.execute(
                """UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = COALESCE(?, next_attempt_at),
                   last_error = ?, updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END
                   WHERE id = ?""",
                (status, attempts, next_attempt_at, error, now, status, now, message_id),
            )

    def prune(self, before: float) -> int:
        """Delete sent and dead messages last changed before `before`; how many went.

        A firing whose resolution is not queued yet stays: it is what lets the resolution be
        queued, and what Alertmanager re-posts are made of. Messages of a receiver that is no
        longer configured (removed or renamed) go too, pending or not: nobody will send them.
        """
        names = [r.receiver for r in self.routes]
        marks = ",".join("?" * len(names)) or "''"
        with self.store.connection(write=True) as db:
            cur = db.execute(
                """DELETE FROM outbox WHERE status != 'pending' AND updated_at < ?
                   AND NOT (state = 'firing' AND NOT EXISTS (SELECT 1 FROM outbox r WHERE r.receiver = outbox.receiver
                            AND r.event_id = outbox.event_id AND r.state = 'resolved'))""",
                (before,),
            )
            gone = db.execute(
                f"DELETE FROM outbox WHERE updated_at < ? AND receiver NOT IN ({marks})", (before, *names)
            )
            return int(cur.rowcount) + int(gone.rowcount)

    # -- reading -------------------------------------------------------------------------

    def due(self, receiver: str, now: float, limit: int) -> list[Message]:
        """Pending messages of `receiver` due at `now`, oldest first.

        A message waits while an older message of the same event is pending for the same
        receiver, so a receiver never hears "resolved" before "firing".
        """
        with self.store.connection() as db:
            rows = db.execute(
                f"""SELECT o.id, o.receiver, o.key, o.event_id, o.state, o.payload, o.attempts, o.created_at
                   FROM outbox o
                   WHERE o.receiver = ? AND o.next_attempt_at <= ? AND {_READY}
                   ORDER BY o.next_attempt_at, o.id LIMIT ?""",
                (receiver, now, limit),
            ).fetchall()
        return [Message(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), int(r[6]), float(r[7])) for r in rows]

    def next_due(self, receiver: str) -> float | None:
        """When the earliest pending message of `receiver` that may go first is due (None: none)."""
        with self.store.connection() as db:
            row = db.execute(
                f"SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.receiver = ? AND {_READY}", (receiver,)
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def pending(self, receiver: str) -> int:
        with self.store.connection() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE receiver = ? AND status = 'pending'", (receiver,)
            ).fetchone()
        return int(row[0])

    def firing_sent(self, receiver: str) -> list[dict[str, Any]]:
        """Events whose firing message `receiver` got and whose resolution is not queued."""
        with self.store.connection() as db:
            rows = db.execute(
                """SELECT f.payload FROM outbox f
                   WHERE f.receiver = ? AND f.state = 'firing' AND f.status = 'sent'
                     AND NOT EXISTS (SELECT 1 FROM outbox r WHERE r.receiver = f.receiver
                                     AND r.event_id = f.event_id AND r.state = 'resolved')
                   ORDER BY f.id""",
                (receiver,),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """receiver -> status -> number of messages (every configured receiver, every status)."""
        out = {r.receiver: dict.fromkeys(STATUSES, 0) for r in self.routes}
        with self.store.connection() as db:
            for receiver, status, n in db.execute("SELECT receiver, status, COUNT(*) FROM outbox GROUP BY 1, 2"):
                out.setdefault(receiver, dict.fromkeys(STATUSES, 0))[status] = int(n)
        return out

    def page(
        self, status: str | None = None, receiver: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Messages newest first, as the API shows them (no URL, no header, no body), and the total."""
        cond, args = where(("status = ?", status), ("receiver = ?", receiver))
        with self.store.connection() as db:
            total = db.execute(f"SELECT COUNT(*) FROM outbox WHERE {cond}", args).fetchone()[0]
            rows = db.execute(
                f"""SELECT id, receiver, key, event_id, state, status, attempts, next_attempt_at, last_error,
                           created_at, updated_at, sent_at, json_extract(payload, '$.summary')
                    FROM outbox WHERE {cond} ORDER BY id DESC LIMIT ? OFFSET ?""",
                [*args, limit, offset],
            ).fetchall()
        items = [
            {
                "id": r[0], "receiver": r[1], "idempotency_key": r[2], "event_id": r[3], "event_state": r[4],
                "status": r[5], "attempts": r[6], "next_attempt_at": r[7] if r[5] == "pending" else None,
                "last_error": r[8], "created_at": r[9], "updated_at": r[10], "sent_at": r[11], "summary": r[12],
            }
            for r in rows
        ]
        return items, int(total)

    def summary(self, event_ids: Sequence[str]) -> dict[str, dict[str, dict[str, str]]]:
        """event id -> receiver -> event state -> delivery status (pending, sent or dead)."""
        return statuses(self.delivery(event_ids))

    def delivery(self, event_ids: Sequence[str]) -> dict[str, dict[str, dict[str, str]]]:
        """event id -> receiver -> event state -> queued, retrying (pending after a failed attempt), sent or dead."""
        out: dict[str, dict[str, dict[str, str]]] = {}
        if not event_ids:
            return out
        marks = ",".join("?" * len(event_ids))
        with self.store.connection() as db:
            rows = db.execute(
                f"SELECT event_id, receiver, state, status, attempts FROM outbox WHERE event_id IN ({marks})",
                list(event_ids),
            ).fetchall()
        for eid, receiver, state, status, attempts in rows:
            word = status if status != "pending" else ("retrying" if attempts else "queued")
            out.setdefault(eid, {}).setdefault(receiver, {})[state] = word
        return out


_STATUS = {"queued": "pending", "retrying": "pending", "sent": "sent", "dead": "dead"}


def statuses(delivery: dict[str, dict[str, dict[str, str]]]) -> dict[str, dict[str, dict[str, str]]]:
    """`Outbox.delivery` in the outbox's own statuses: queued and retrying are both pending."""
    return {
        eid: {receiver: {state: _STATUS[word] for state, word in by_state.items()} for receiver, by_state in by_rcv.items()}
        for eid, by_rcv in delivery.items()
    }
