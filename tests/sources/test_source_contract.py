"""Every live source keeps the `Source` contract: the same checks over host, prometheus and replay.

Each check runs for every source it applies to: a down backend (Prometheus on a refused
port, or the real binary stopped; psutil failing for everything), an answer with nothing
in it, a NaN value, a backend that is slow (a server that accepts and never answers;
psutil stuck on a read), and the shape of every batch. Prometheus is the real binary on a
loopback port with backfilled history; psutil is the real one except where it has to be
dead or slow, which only a stand-in can be on demand.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import psutil
import pytest

from support.servers import PrometheusServer, free_port, openmetrics
from vigil.errors import SourceUnavailable
from vigil.labels import series_key
from vigil.sources.base import SeriesBatch, Source
from vigil.sources.host import HostSource
from vigil.sources.prometheus import PrometheusSource
from vigil.sources.replay import ReplaySource

NAME = "contract"
STEP = 15
BASE = (int(time.time()) // 3600 - 3) * 3600  # backfilled history: an hour from here, 15 s apart
N = 3600 // STEP
GAPS = [k for k in range(N) if k % 10 == 3]  # vc_nan is NaN at these samples
START = 1_700_000_000.0  # the replay's first fetch
CSV = "timestamp,value\n" + "".join(
    f"2024-03-01T00:{k:02d}:00Z,{'NaN' if k == 2 else '' if k == 4 else 10 + k}\n" for k in range(8)
)  # one sample a minute; a NaN and an empty cell


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
    server.backfill(openmetrics({
        "vc_gauge": ("gauge", [({"i": i}, BASE + STEP * k, float(k)) for i in "ab" for k in range(N)]),
        "vc_nan": ("gauge", [({}, BASE + STEP * k, math.nan if k in GAPS else float(k)) for k in range(N)]),
    }))
    with server:
        yield server


class Make:
    """Builds each kind of source, named `NAME`; Prometheus is started only when asked for."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp_path = tmp_path

    def host(self, psutil_module: Any = psutil) -> HostSource:
        return HostSource(NAME, 1.0, psutil_module=psutil_module)

    def prometheus(self, query: str = "vc_gauge", url: str | None = None, **kwargs: Any) -> PrometheusSource:
        if url is None:
            url = self.request.getfixturevalue("prometheus").url
        return PrometheusSource(NAME, url, query, step=STEP, lookback=1800, **kwargs)

    def replay(self, text: str = CSV) -> ReplaySource:
        path = self.tmp_path / "replay.csv"
        path.write_text(text)
        return ReplaySource(NAME, path, speed=60)  # a file minute per second


@pytest.fixture
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    return Make(request, tmp_path)


def run(source: Source, body: Callable[[Source], Awaitable[Any]]) -> Any:
    """``body(source)`` in a fresh event loop; the source is closed after it."""

    async def main() -> Any:
        try:
            return await body(source)
        finally:
            await source.close()

    return asyncio.run(main())


def fetch_all(nows: list[float]) -> Callable[[Source], Awaitable[list[list[SeriesBatch]]]]:
    async def body(source: Source) -> list[list[SeriesBatch]]:
        await source.validate()
        return [await source.fetch(now) for now in nows]

    return body


# A healthy source of each kind and instants at which fetching it brings samples.
HEALTHY: dict[str, Callable[[Make], tuple[Source, list[float]]]] = {
    "host": lambda make: (make.host(), [time.time(), time.time() + 1]),
    "prometheus": lambda make: (make.prometheus(), [BASE + 1800, BASE + 1800 + 4 * STEP, BASE + 2400]),
    "replay": lambda make: (make.replay(), [START, START + 2.5, START + 60]),
}


@pytest.mark.parametrize("kind", sorted(HEALTHY))
def test_follows_the_source_contract(kind: str, make: Make) -> None:
    source, _ = HEALTHY[kind](make)
    assert Source in type(source).__mro__
    assert source.name == NAME
    assert type(source.interval) is float and source.interval > 0
    for method in ("validate", "fetch", "close"):
        assert inspect.iscoroutinefunction(getattr(source, method)), method
    assert run(source, lambda s: s.validate()) is None


@pytest.mark.parametrize("kind", sorted(HEALTHY))
def test_batches_are_well_formed(kind: str, make: Make) -> None:
    """Labels with a name, float64 times strictly increasing within and across fetches, values alongside."""
    source, nows = HEALTHY[kind](make)
    answers = run(source, fetch_all(nows))
    last: dict[str, float] = {}
    for now, batches in zip(nows, answers, strict=True):
        keys = [series_key(b.labels) for b in batches]
        assert len(set(keys)) == len(keys), "two batches for one series"
        for key, b in zip(keys, batches, strict=True):
            assert type(b.labels) is dict and isinstance(b.labels.get("__name__"), str) and b.labels["__name__"]
            assert all(type(k) is str and type(v) is str for k, v in b.labels.items())
            assert b.t.dtype == np.float64 and b.v.dtype == np.float64
            assert b.t.ndim == 1 and b.v.shape == b.t.shape
            assert np.isfinite(b.t).all() and (np.diff(b.t) > 0).all()
            if b.t.size:
                assert last.get(key, -math.inf) < b.t[0] and b.t[-1] <= now
                last[key] = float(b.t[-1])
    assert sum(b.t.size for batches in answers for b in batches) > 0


# -- nothing in the answer -------------------------------------------------------------------

# A source and instants whose last fetch has nothing new to give.
EMPTY: dict[str, Callable[[Make], tuple[Source, list[float]]]] = {
    "prometheus": lambda make: (make.prometheus('vc_gauge{i="nope"}'), [BASE + 1800]),
    "replay": lambda make: (make.replay(), [START + 3, START + 3]),
}


@pytest.mark.parametrize("kind", sorted(EMPTY))
def test_an_empty_answer_is_an_empty_list(kind: str, make: Make) -> None:
    source, nows = EMPTY[kind](make)
    assert run(source, fetch_all(nows))[-1] == []


# -- NaN ---------------------------------------------------------------------------------------

# A source whose series has NaN values, instants that bring them, and the series as it should come.
NANS: dict[str, Callable[[Make], tuple[Source, list[float], np.ndarray, np.ndarray]]] = {
    "prometheus": lambda make: (
        make.prometheus("vc_nan"), [BASE + 1800, BASE + 2400],
        BASE + STEP * np.arange(161.0), np.where(np.isin(np.arange(161), GAPS), np.nan, np.arange(161.0)),
    ),
    "replay": lambda make: (
        make.replay(), [START, START + 7],
        START + np.arange(8.0), np.array([10, 11, np.nan, 13, np.nan, 15, 16, 17], dtype=np.float64),
    ),
}


@pytest.mark.parametrize("kind", sorted(NANS))
def test_a_nan_value_comes_through_as_nan_in_its_place(kind: str, make: Make) -> None:
    source, nows, t, v = NANS[kind](make)
    batches = [b for answer in run(source, fetch_all(nows)) for b in answer]
    assert len({series_key(b.labels) for b in batches}) == 1
    np.testing.assert_array_equal(np.concatenate([b.t for b in batches]), t)
    np.testing.assert_array_equal(np.concatenate([b.v for b in batches]), v)  # NaN where NaN, nothing dropped


# -- down ---------------------------------------------------------------------------------------


class DeadPsutil:
    """psutil on a host where every read fails."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def read(*args: Any, **kwargs: Any) -> Any:
            raise OSError(f"{name}: /proc is gone")

        return read


@dataclass
class Down:
    source: Source
    before: Callable[[], None] | None = None  # after one good fetch, this takes the backend down
    timeout: float = 2.0


def stopped_prometheus(make: Make) -> Down:
    server = PrometheusServer(make.tmp_path / "stopped")
    server.start()
    make.request.addfinalizer(server.stop)
    return Down(make.prometheus("up", url=server.url, timeout=2), server.stop)


DOWN: dict[str, Callable[[Make], Down]] = {
    "host": lambda make: Down(make.host(DeadPsutil())),
    "prometheus-refused": lambda make: Down(make.prometheus(url=f"http://127.0.0.1:{free_port()}", timeout=2)),
    "prometheus-stopped": stopped_prometheus,
}


@pytest.mark.parametrize("kind", sorted(DOWN))
def test_a_backend_that_is_down_is_unavailable_and_says_which_query(kind: str, make: Make) -> None:
    down = DOWN[kind](make)
    started: list[float] = []

    async def body(source: Source) -> None:
        if down.before is not None:
            await source.fetch(time.time())
            down.before()
        started.append(time.monotonic())
        await source.fetch(time.time() + STEP)

    with pytest.raises(SourceUnavailable) as caught:
        run(down.source, body)
    assert time.monotonic() - started[0] < down.timeout
    assert f"'{NAME}'" in str(caught.value)


# -- slow ---------------------------------------------------------------------------------------


class Silent:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except TimeoutError:
                continue

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.held:
            conn.close()


class SlowPsutil:
    """The real psutil, with a load average that takes `delay` seconds to read (a hung mount)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __getattr__(self, name: str) -> Any:
        return getattr(psutil, name)

    def getloadavg(self) -> tuple[float, float, float]:
        time.sleep(self.delay)
        return psutil.getloadavg()


async def ticking_while(work: Awaitable[Any]) -> tuple[Any, int, float]:
    """`work`'s result (or exception), how often a 10 ms ticker ran meanwhile, and the seconds it took."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        result: Any = await work
    except Exception as exc:  # noqa: BLE001 - the caller checks which
        result = exc
    task.cancel()
    return result, ticks, time.monotonic() - started


@pytest.mark.parametrize("kind", ["host", "prometheus"])
def test_a_slow_backend_never_blocks_the_event_loop(kind: str, make: Make) -> None:
    """Prometheus that never answers is unavailable within the timeout; psutil stuck on a read
    (the host source has no timeout) delays only its own fetch."""
    with Silent() as silent:
        source = make.host(SlowPsutil(0.5)) if kind == "host" else make.prometheus(url=silent.url, timeout=0.5)
        result, ticks, seconds = run(source, lambda s: ticking_while(s.fetch(time.time())))
    assert seconds >= 0.45
    assert ticks >= seconds / 0.01 / 4, f"the loop ran {ticks} times in {seconds:.2f} s"
    if kind == "host":
        assert isinstance(result, list) and result
    else:
        assert isinstance(result, SourceUnavailable), result
        assert seconds < 0.5 + 1.0
        assert f"'{NAME}'" in str(result) and "no answer within 0.5 s" in str(result)
