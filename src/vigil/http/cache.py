"""Answers computed once per change of the engine's state, for every client that asks meanwhile.

The page asks for the same listing from every open browser, every few seconds, while the
series change only when a tick lands. `AnswerCache` keeps the answer to each recent
request with the engine's `generation` it was computed at; a request of the same
generation gets the stored bytes, and requests that arrive while it is being computed wait
for it instead of computing it again.
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
        """The answer to `key` at `generation`, computed by `compute` if no one has yet."""
        body = self.fresh(key, generation)
        if body is not None:
            return body
        with self._lock:
            busy = self._busy.setdefault(key, threading.Lock())
        with busy:
            body = self.fresh(key, generation)
            if body is not None:
                return body
            body = compute()
            with self._lock:
                self._answers[key] = (generation, body)
                self._answers.move_to_end(key)
                while len(self._answers) > self.size:
                    self._answers.popitem(last=False)
                self._busy.pop(key, None)
            return body
