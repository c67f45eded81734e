"""What the HTTP app is made of: the engine, the store, the metrics, the outbox, the mutes and the config."""

from __future__ import annotations

from typing import Protocol

from vigil.config import Config
from vigil.engine import Engine
from vigil.metrics import Metrics
from vigil.outputs.mutes import MuteBook
from vigil.outputs.notify.outbox import Outbox
from vigil.outputs.store import Store

__all__ = ["Parts"]


class Parts(Protocol):
    """The running parts the API reads (`vigil.service.Service` has them all)."""

    @property
    def config(self) -> Config: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def store(self) -> Store: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def outbox(self) -> Outbox | None: ...

    @property
    def mutes(self) -> MuteBook: ...
