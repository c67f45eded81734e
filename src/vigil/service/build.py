"""Building the live service: a validated config -> sources, queries, engine, store, notifier.

`build_service` turns a `Config` into the running parts (raising ConfigError for what
only shows when they are built: a detector parameter, a secret that cannot be read, an
``auto/N`` shard on a hostname without an ordinal).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from vigil.config import Config
from vigil.engine import Engine, Query
from vigil.engine.mutes import Silences
from vigil.errors import ConfigError
from vigil.metrics import Metrics
from vigil.outputs.mutes import MuteBook
from vigil.outputs.notify import Outbox, Route, Sender, base_url, build_targets
from vigil.outputs.store import Store
from vigil.sharding import Shard, parse_shard
from vigil.sources.base import Source
from vigil.sources.host import HostSource
from vigil.sources.prometheus import PrometheusSource
from vigil.sources.replay import ReplaySource

__all__ = ["Service", "build_service", "build_sources"]



@dataclasses.dataclass
class Service:
    config: Config
    engine: Engine
    store: Store
    metrics: Metrics
    outbox: Outbox | None = None
    sender: Sender | None = None
    shard: Shard | None = None
    mutes: MuteBook = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        """The config's maintenance windows and the stored mutes, applied by every query."""
        silences = Silences(self.config.maintenance)
        for q in self.engine.queries.values():
            q.silences = silences
        self.mutes = MuteBook(self.store, silences, clock=self.engine.clock)


def build_sources(config: Config, shard: Shard | None = None) -> list[tuple[Source, dict[str, Any] | None, str]]:
    """(source, detection override, config location) for every configured query.

    With a `shard`, Prometheus sources keep bookkeeping (and their series cap) only for
    the series it owns; the engine drops the others where they enter.
    """
    out: list[tuple[Source, dict[str, Any] | None, str]] = []
    if config.host_enabled:
        out.append((HostSource("host", config.host.interval), config.host.detection, "host"))
    p = config.prometheus
    if p is not None:
        auth: tuple[str, str, str] | tuple[str, str] | None = None
        if p.basic_auth is not None:
            auth = ("basic", p.basic_auth.username, p.basic_auth.password.get())
        elif p.bearer_token is not None:
            auth = ("bearer", p.bearer_token.get())
        for i, q in enumerate(p.queries):
            owns = None if shard is None else _owns(shard, q.name)
            source = PrometheusSource(
                q.name, p.url, q.query, q.step, lookback=p.lookback, auth=auth, timeout=p.timeout,
                max_series=q.max_series or config.limits.max_series_per_query, counter=q.counter, delay=p.delay,
                forget_after=config.limits.evict_after_for(q.step), owns=owns,
            )
            out.append((source, q.detection, f"prometheus.queries[{i}]"))
    for i, r in enumerate(config.replay):
        out.append((ReplaySource(r.name, r.path, r.value_column, r.speed, r.loop), r.detection, f"replay[{i}]"))
    if not out:
        raise ConfigError("no source is configured: enable host, or add prometheus queries or replay files")
    return out


def _owns(shard: Shard, query: str) -> Callable[[str], bool]:
    return lambda key: shard.owns_key(query, key)


def build_service(config: Config, clock: Callable[[], float] = time.time, hostname: str | None = None) -> Service:
    """The running parts of `config`; `hostname` (default: this machine's) resolves ``shard: auto/N``."""
    shard = None if config.shard is None else parse_shard(config.shard, "shard", hostname)
    exports = config.exports()
    queries = [  # the host query is never split: each replica watches its own machine
        Query(source, config.detection_for(override), config.limits, where, shard=shard, split=where != "host",
              export=exports[source.name])
        for source, override, where in build_sources(config, shard)
    ]
    store = Store(config.data_dir)
    metrics = Metrics(shard=shard)
    engine = Engine(config, queries, store, metrics, clock=clock)
    service = Service(config=config, engine=engine, store=store, metrics=metrics, shard=shard)
    if config.notify.receivers:
        targets = build_targets(config.notify)
        service.outbox = Outbox(
            store, [Route.of(r) for r in config.notify.receivers], clock=clock, max_age=config.notify.max_event_age
        )
        service.sender = Sender(
            service.outbox, targets, config.notify, metrics, base_url(config), open_events=engine.open_event_ids,
            clock=clock,
        )
    return service
