"""Sharding: N replicas of Vigil, each owning the series whose label hash falls in its shard.

A series of query ``q`` with label set ``labels`` belongs to shard

    ``int(series_id(q, series_key(labels)), 16) % N``

that is, the first 8 bytes of SHA-256 over ``q``, a NUL byte and the canonical label text
(`vigil.sources.base.series_key`, metric name included), read as an unsigned big-endian
integer, modulo N. It is the same in every process, after every restart and on every
machine (never Python's salted `hash`), and the 16 hex digits are the series' id in the API,
so ``int(id, 16) % N`` names the replica that holds a series.

The query name is part of the hash on purpose: for Vigil the same label set under two
queries is two series (own state, own id, own events), so they are spread independently
and may land on different shards. A query whose series are few cannot pile up on one
replica because another query shares its labels.

A shard is written ``i/N`` (``0 <= i < N``): on the command line (``vigil run --shard
1/3``), in the environment (``VIGIL_SHARD=1/3``) or in the config (``shard: "1/3"``).
``auto/N`` takes ``i`` from the trailing ordinal of the hostname, as the pods of a
Kubernetes StatefulSet have them (``vigil-2`` is shard 2).

Examples
--------
>>> s = parse_shard("1/3", "--shard")
>>> s, s.text, s.label
(Shard(index=1, count=3), '1/3', '1')
>>> shard_of("requests", 'http_requests_total{route="/"}', 3)
2
>>> parse_shard("auto/3", "VIGIL_SHARD", hostname="vigil-2.vigil-headless.vigil.svc").text
'2/3'
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from vigil.errors import ConfigError
from vigil.labels import series_id, series_key

__all__ = ["Shard", "check_spec", "hostname_ordinal", "parse_shard", "series_hash", "shard_of"]

_SPEC = re.compile(r"\s*(\d+|auto)\s*/\s*(\d+)\s*")
_ORDINAL = re.compile(r"-(\d+)$")
_ADVICE = "write i/N with 0 <= i < N, such as '0/3', or auto/N to take i from the hostname (vigil-2 is 2)"


def series_hash(query: str, key: str) -> int:
    """The 64-bit hash of a series: its API id read as a number.

    >>> hex(series_hash("cpu", 'cpu_utilization{instance="web-1"}'))
    '0x9dc2e761e0451a6a'
    """
    return int(series_id(query, key), 16)


def shard_of(query: str, key: str, count: int) -> int:
    """The shard (0 to `count` - 1) of the series with canonical label text `key` in `query`."""
    return series_hash(query, key) % count


@dataclass(frozen=True)
class Shard:
    """This process's shard: `index` of `count`."""

    index: int
    count: int

    @property
    def text(self) -> str:
        """``'2/3'``: the form of the event JSON and the API."""
        return f"{self.index}/{self.count}"

    @property
    def label(self) -> str:
        """``'2'``: the value of the ``vigil_shard`` label on /metrics."""
        return str(self.index)

    def owns_key(self, query: str, key: str) -> bool:
        return self.count == 1 or shard_of(query, key, self.count) == self.index

    def owns(self, query: str, labels: dict[str, str]) -> bool:
        return self.owns_key(query, series_key(labels))


def check_spec(text: object) -> str:
    """``' 1 / 3'`` -> ``'1/3'``, ``'auto/3'`` stays; ValueError saying what to write.

    >>> check_spec("3/3")
    Traceback (most recent call last):
    ...
    ValueError: i must be below N (shards are numbered 0 to 2); write i/N with 0 <= i < N, ...
    """
    match = _SPEC.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(_ADVICE)
    index, count = match.group(1), int(match.group(2))
    if count < 1:
        raise ValueError(f"N must be 1 or more; {_ADVICE}")
    if index != "auto" and int(index) >= count:
        raise ValueError(f"i must be below N (shards are numbered 0 to {count - 1}); {_ADVICE}")
    return f"{index if index == 'auto' else int(index)}/{count}"


def hostname_ordinal(hostname: str) -> int | None:
    """The trailing ordinal of a StatefulSet pod's name: ``vigil-2`` -> 2; None if it has none.

    >>> hostname_ordinal("vigil-12.vigil-headless"), hostname_ordinal("build-box")
    (12, None)
    """
    match = _ORDINAL.search(hostname.split(".", 1)[0])
    return int(match.group(1)) if match else None


def parse_shard(text: str, where: str, hostname: str | None = None) -> Shard:
    """The shard written `text` (``i/N`` or ``auto/N``); `where` names the key in errors.

    `hostname` (default: this machine's) gives ``i`` for ``auto/N``. Raises ConfigError
    naming `where`, the text and what would be right.
    """
    try:
        spec = check_spec(text)
    except ValueError as exc:
        raise ConfigError(f"{where} is {text!r}; {exc}") from None
    index, count = spec.split("/")
    if index != "auto":
        return Shard(int(index), int(count))
    host = socket.gethostname() if hostname is None else hostname
    n = int(count)
    ordinal = hostname_ordinal(host)
    if ordinal is None:
        raise ConfigError(
            f"{where} is {text!r}, but the hostname {host!r} has no trailing ordinal such as vigil-2 "
            f"(the pods of a Kubernetes StatefulSet have one); write i/{n} with 0 <= i < {n} instead"
        )
    if ordinal >= n:
        raise ConfigError(
            f"{where} is {text!r}, but the hostname {host!r} gives shard {ordinal}, and shards are "
            f"numbered 0 to {n - 1}; make the StatefulSet's replicas equal N, or raise N to the replicas"
        )
    return Shard(ordinal, n)
