"""Answers computed once per change of the engine's state, for every client that asks meanwhile.

The page asks for the same listing from every open browser, every few seconds, while the
series change only when a tick lands. `AnswerCache` keeps the answer to each recent
request with the engine's `generation` it was computed at; a request of the same
generation gets the stored bytes. While the answer of a new generation is being made, the
requests that arrive meanwhile get the one before it (one tick old, for the fraction of a
second the new one takes) instead of queueing behind it; with no answer before it, they
wait for it rather than compute it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["AnswerCache"]


class AnswerCache:
    """The `size` most recent answers, each valid for one generation."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._answers: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._busy: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def fresh(self, key: Hashable, generation: int) -> bytes | None:
        """The answer to `key` if one was made at `generation`, else None."""
        with self._lock:
            hit = self._answers.get(key)
            if hit is None or hit[0] != generation:
                return None
            self._answers.move_to_end(key)
            return hit[1]

    def get(self, key: Hashable, generation: int, compute: Callable[[], bytes]) -> bytes:
        """The answer to `key` at `generation`, computed by `compute` if no one has yet (or
        the answer before it, while another request computes it)."""
        body = self.fresh(key, generation)
        if body is not None:
            return body
        with self._lock:
            busy = self._busy.setdefault(key, threading.Lock())
            before = self._answers.get(key)
        if not busy.acquire(blocking=before is None):
            assert before is not None
            return before[1]
        try:
            body = self.fresh(key, generation)
            if body is not None:
                return body
            body = compute()
            with self._lock:
                self._answers[key] = (generation, body)
                self._answers.move_to_end(key)
                while len(self._answers) > self.size:
                    self._answers.popitem(last=False)
                if len(self._busy) > 2 * self.size:  # the locks of keys no longer kept, unless in use
                    for k in [k for k, lock in self._busy.items() if k not in self._answers and not lock.locked()]:
                        del self._busy[k]
            return body
        finally:
            busy.release()
