"""The /metrics text: every series' results, then Vigil's own health.

Per-series families are written straight from the arrays (one line per series and family,
label strings cached per row by the engine's `Query`), not through 100,000 labelled Gauge
children; the self-monitoring (`vigil.metrics`) follows. Each query shows the families
its ``export`` names (`vigil.config.export`; by default ``vigil_anomaly_score`` and
``vigil_anomaly``, two lines per series); a family no query exports is left out whole.

The ``vigil_event_*`` families say the open event's values at its peak, one line per series
with an event open and none for the others, whatever the export: what an alert rule's
annotations read, so they show the anomaly and not the values at evaluation time (after
the peak, or a held score).

`Exposition` is what /metrics serves. It renders a query's lines once per change of the
query (`Query.version`: a tick, an eviction, a restore) and keeps them as raw deflate,
so scrapes between two ticks cost no rendering, and a query that ticks re-renders its own
lines only; many gzip scrapers cost one compression. Only the self-monitoring, which is
small, is rendered per scrape.

Sharded (`vigil.sharding`), every per-series line also carries ``vigil_shard="2"`` (a
series' own label of that name becomes ``exported_vigil_shard``).
"""

from __future__ import annotations

import dataclasses
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, repeat

import numpy as np
from prometheus_client import generate_latest

from vigil.engine.query import Query
from vigil.metrics import CATALOGUE, Metrics

__all__ = ["SERIES_FAMILIES", "Exposition", "accepts_gzip"]

# (family, column of the series table, the export name that shows it)
SERIES_FAMILIES = (
    ("vigil_observed_value", "value", "observed"),
    ("vigil_expected_value", "expected", "expected"),
    ("vigil_upper_bound", "upper", "bounds"),
    ("vigil_lower_bound", "lower", "bounds"),
    ("vigil_anomaly_score", "score", "score"),
    ("vigil_anomaly", "anomalous", "anomaly"),
    ("vigil_warming_up", "warming", "warming_up"),
)

# the open event's values at its peak, from the decision's state
_EVENT_FAMILIES = (
    ("vigil_event_observed_value", "observed"),
    ("vigil_event_expected_value", "expected"),
    ("vigil_event_upper_bound", "upper"),
    ("vigil_event_lower_bound", "lower"),
    ("vigil_event_peak_score", "peak_score"),
)
_ALL = (*(f for f, _, _ in SERIES_FAMILIES), *(f for f, _ in _EVENT_FAMILIES))

_SPECIAL = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}  # repr -> the exposition's spelling
_BIT = ("0", "1")
_LEVEL = 1  # zlib level: the text is labels repeated line after line; 1 compresses it about as well as 6, 3x faster
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no mtime, unknown OS (RFC 1952)


def _header(family: str) -> str:
    return f"# HELP {family} {CATALOGUE[family][1]}\n# TYPE {family} gauge\n"


def _texts(values: np.ndarray) -> list[str]:
    """The values as the exposition writes them: ``0``/``1`` for flags, else the shortest
    text that reads back as the same float64 (``repr``), with ``NaN``, ``+Inf`` and ``-Inf``.

    >>> _texts(np.array([0.5, np.nan, -np.inf, 1e-20, 3.0])), _texts(np.array([True, False]))
    (['0.5', 'NaN', '-Inf', '1e-20', '3.0'], ['1', '0'])
    """
    if not values.size:
        return []
    if values.dtype == np.bool_:
        return list(map(_BIT.__getitem__, values.tolist()))
    # one repr of the whole list formats every float in C: a third cheaper than a repr per value
    texts = repr(values.astype(np.float64, copy=False).tolist())[1:-1].split(", ")
    if not np.isfinite(values).all():
        texts = list(map(_SPECIAL.get, texts, texts))
    return texts


def _lines(family: str, prefixes: list[str], values: np.ndarray) -> str:
    """``family{labels} value`` lines; `prefixes` are the label texts followed by ``"} "``.

    >>> print(_lines("vigil_anomaly", ['query="q"} ', 'query="r"} '], np.array([True, False])), end="")
    vigil_anomaly{query="q"} 1
    vigil_anomaly{query="r"} 0
    """
    return "".join(chain.from_iterable(zip(repeat(family + "{"), prefixes, _texts(values), repeat("\n"))))


@dataclasses.dataclass(frozen=True)
class _Text:
    """A piece of the per-series text, kept only as its raw deflate and its length (a
    thirtieth of the text: at 100,000 series 0.7 MiB, not 24); the text is inflated when
    asked for, by a plain scrape (Prometheus asks for gzip)."""

    deflated: bytes
    size: int

    @classmethod
    def of(cls, text: bytes) -> _Text:
        c = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        # a sync flush ends on a byte boundary with no final block: such streams concatenate
        return cls(c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH), len(text))

    @property
    def text(self) -> bytes:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(self.deflated)


@dataclasses.dataclass
class _Lines:
    """One query's lines of every family it shows, rendered at `version` of the query."""

    version: int
    series: dict[str, _Text]  # family -> its lines
    events: dict[str, _Text]


def _query_lines(q: Query) -> _Lines:
    """The query's lines now. The arrays are read under the query's lock (a tick changes
    them in a worker thread), and the text made after it is released."""
    export = set(q.export)
    with q.lock:
        version = q.version
        rows = q.table.active_rows()
        prefixes = q.line_prefixes(rows) if rows.size else []
        state = q.table.state
        columns = {family: state[field][rows] for family, field, name in SERIES_FAMILIES if name in export}
        decision = q.pipeline.decision_state
        held = rows[rows < decision.n_rows]
        opened = held[decision["open"][held]]
        event_prefixes = q.line_prefixes(opened) if opened.size else []
        peaks = {family: decision[field][opened] for family, field in _EVENT_FAMILIES}
    return _Lines(
        version,
        {family: _Text.of(_lines(family, prefixes, values).encode()) for family, values in columns.items()},
        {family: _Text.of(_lines(family, event_prefixes, values).encode()) for family, values in peaks.items()},
    )


def _layout(parts: list[_Lines]) -> Iterator[str | _Text]:
    """The per-series part in order: each family's name (its header goes there), then the
    lines of each query that shows it, so that a family's lines are one group as the format
    requires. A family no query exports is left out; empty lines are skipped."""
    for family, _, _ in SERIES_FAMILIES:
        shown = [lines.series[family] for lines in parts if family in lines.series]
        if shown:
            yield family
            yield from (t for t in shown if t.size)
    for family, _ in _EVENT_FAMILIES:
        yield family
        yield from (lines.events[family] for lines in parts if lines.events[family].size)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (``gzip``, ``x-gzip`` or ``*``, not with ``q=0``).

    >>> accepts_gzip("gzip"), accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"), accepts_gzip("br, *")
    (True, True, True)
    >>> accepts_gzip(""), accepts_gzip("identity"), accepts_gzip("gzip;q=0"), accepts_gzip("gzip;q=0.000, *")
    (False, False, False, False)
    """
    found: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found[coding.strip()] = q
    for coding in ("gzip", "x-gzip", "*"):
        if coding in found:
            return found[coding] > 0
    return False


class _Body:
    """The per-series part of one state of the queries: its pieces, joined into one gzip
    member when first asked for; the text is inflated again for each plain scrape."""

    def __init__(self, key: tuple[tuple[int, int], ...], pieces: list[_Text]) -> None:
        self.key = key
        self.pieces = pieces
        self._gzip: tuple[bytes, int, int] | None = None
        self._lock = threading.Lock()

    def plain(self) -> bytes:
        return b"".join(p.text for p in self.pieces)

    def gzip(self) -> tuple[bytes, int, int]:
        """(gzip header and the raw deflate of every piece, CRC-32 of the text, its length)."""
        with self._lock:
            if self._gzip is None:
                crc = 0
                for p in self.pieces:  # one piece inflated at a time
                    crc = zlib.crc32(p.text, crc)
                size = sum(p.size for p in self.pieces)
                self._gzip = (_GZIP_HEADER + b"".join(p.deflated for p in self.pieces), crc, size)
            return self._gzip


class Exposition:
    """What /metrics serves: the per-series text kept between ticks, plain and gzipped.

    Parameters
    ----------
    metrics
        Vigil's self-monitoring, rendered per scrape after the per-series families.
    queries
        Gives the queries whose series are exported (``engine.queries.values``).

    A query's lines are rendered when it has changed (`Query.version`) since they were,
    and kept, with their raw deflate once a gzip scrape asked for it; a family's header is
    kept the same way. A scrape joins what is kept: ``body()`` the text, ``body(gzip=True)``
    one gzip member (RFC 1952) of the same text, whose per-series part is compressed once
    per change however many scrapers ask. Scrapes at the same time render once: the others
    wait for it, and get the same bytes.

    Examples
    --------
    >>> import gzip
    >>> exposition = Exposition(Metrics(), lambda: [])
    >>> body = exposition.body()
    >>> body.startswith(b"# HELP vigil_event_observed_value ") and b"# TYPE vigil_samples_total counter" in body
    True
    >>> gzip.decompress(exposition.body(gzip=True)) == body
    True
    """

    def __init__(self, metrics: Metrics, queries: Callable[[], Iterable[Query]]) -> None:
        self.metrics = metrics
        self.queries = queries
        self._lines: dict[int, _Lines] = {}  # id of a query -> its lines
        self._headers: dict[str, _Text] = {family: _Text.of(_header(family).encode()) for family in _ALL}
        self._body: _Body | None = None
        self._lock = threading.Lock()

    def series(self) -> _Body:
        """The per-series part now: the kept one if no query changed since, else made again
        from the lines of the queries that did not change and new lines of those that did."""
        queries = list(self.queries())
        with self._lock:
            key = tuple((id(q), q.version) for q in queries)
            if self._body is not None and self._body.key == key:
                return self._body
            parts = []
            for q in queries:
                lines = self._lines.get(id(q))
                if lines is None or lines.version != q.version:
                    lines = self._lines[id(q)] = _query_lines(q)
                parts.append(lines)
            live = {id(q) for q in queries}
            for gone in [i for i in self._lines if i not in live]:
                del self._lines[gone]
            pieces = [self._headers[p] if isinstance(p, str) else p for p in _layout(parts)]
            # the versions the lines were rendered at (a tick may have ended since `key` was read)
            self._body = _Body(tuple((id(q), lines.version) for q, lines in zip(queries, parts, strict=True)), pieces)
            return self._body

    def body(self, gzip: bool = False) -> bytes:
        """The whole /metrics text, or with `gzip` the same as one gzip member."""
        series = self.series()
        own = generate_latest(self.metrics.registry)
        if not gzip:
            return series.plain() + own
        prefix, crc, size = series.gzip()
        c = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        tail = c.compress(own) + c.flush(zlib.Z_FINISH)
        trailer = struct.pack("<II", zlib.crc32(own, crc), (size + len(own)) & 0xFFFFFFFF)
        return prefix + tail + trailer

