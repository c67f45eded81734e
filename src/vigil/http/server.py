"""Running uvicorn in the foreground without dying of the signal it re-raises.

uvicorn (0.29 and later) shuts down gracefully on SIGINT/SIGTERM and then re-raises the
signal to the handler that was in place before it started. With Python's defaults that
kills the process (SIGTERM) or prints a KeyboardInterrupt traceback (SIGINT) before the
caller can save its state. `after_uvicorn` puts a no-op handler in place for the duration,
so the serving call simply returns.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["after_uvicorn"]


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Receives the signal uvicorn re-raises once it has shut down: nothing left to do."""


@contextmanager
def after_uvicorn() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # no signal handling off the main thread; the caller stops the server
        return
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
