"""Label sets: their canonical text, the ids derived from it, and their text on /metrics.

A series is a label set (its metric name in ``__name__``). `series_key` writes it once, in
one canonical form; the series' id in the API (`series_id`), its shard and the ids of its
events (`event_id`) all derive from that text, so they are the same in every process,
after every restart and on every machine.

Examples
--------
>>> key = series_key({"__name__": "cpu", "instance": "web-1", "cpu": "0"})
>>> key
'cpu{cpu="0",instance="web-1"}'
>>> series_id("host", key)
'...'
>>> len(event_id("host", key, 1700000000.0))
20
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["event_id", "exposition_labels", "series_id", "series_key"]


def series_key(labels: dict[str, str]) -> str:
    """A canonical text form of a label set: ``name{a="1",b="2"}`` with sorted labels.

    Values are escaped as in Prometheus's text format, and a name that is not a plain
    Prometheus name is quoted the same way (as Prometheus 3 writes UTF-8 names), so two
    different label sets never share a key:

    >>> series_key({"a": 'x",b="y'}) != series_key({"a": "x", "b": "y"})
    True
    >>> print(series_key({"__name__": "up", 'a="1",b': "2"}))
    up{"a=\\"1\\",b"="2"}
    """
    name = labels.get("__name__", "")
    if not _PLAIN_METRIC.fullmatch(name):
        name = f'"{_escape(name)}"'
    inner = ",".join(
        f'{k if _PLAIN_LABEL.fullmatch(k) else chr(34) + _escape(k) + chr(34)}="{_escape(v)}"'
        for k, v in sorted(labels.items()) if k != "__name__"
    )
    return f"{name}{{{inner}}}"


_PLAIN_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*|")
_PLAIN_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def series_id(query: str, key: str) -> str:
    """Stable id of a series in the API: 16 hex characters from the query and label set."""
    return hashlib.sha256(f"{query}\0{key}".encode()).hexdigest()[:16]


def event_id(query: str, key: str, started_at: float) -> str:
    """Deterministic: the same incident replayed after a restart gets the same id."""
    return hashlib.sha256(f"{query}\0{key}\0{started_at:.3f}".encode()).hexdigest()[:20]


_OURS = ("metric", "query", "detector")
_SHARDED = (*_OURS, "vigil_shard")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition_labels(labels: dict[str, str], query: str, detector: str, shard: str | None = None) -> str:
    """The label text of a series' lines on /metrics: its labels plus ours, sorted.

    A series' own label named like ours becomes ``exported_<name>``.

    >>> exposition_labels({"__name__": "up", "query": "x"}, "q", "default")
    'detector="default",exported_query="x",metric="up",query="q"'
    """
    ours = _OURS if shard is None else _SHARDED
    out = {(f"exported_{k}" if k in ours else k): v for k, v in labels.items() if k != "__name__"}
    out["metric"] = labels.get("__name__", "")
    out["query"] = query
    out["detector"] = detector
    if shard is not None:
        out["vigil_shard"] = shard
    return ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(out.items()))
