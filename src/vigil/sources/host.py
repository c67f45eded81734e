"""The `system` source: this host's CPU, memory, swap, disks, network and load, via psutil.

Each `fetch(now)` reads psutil once and returns one sample per series, at time ``now``.
The metric name is in ``__name__``; the labels are the ones listed (the engine adds
``query``, the source's `name`).

- ``cpu_utilization``: percent of CPU time spent busy since the last fetch, all CPUs
  together (0..100). Busy is everything except ``idle`` and ``iowait``.
- ``cpu_mode_percent{mode}``: percent of CPU time in each mode the platform reports
  (on Linux ``user``, ``nice``, ``system``, ``idle``, ``iowait``, ``irq``, ``softirq``,
  ``steal``). ``guest`` and ``guest_nice`` are left out: Linux already counts them in
  ``user`` and ``nice``, so the modes add up to 100.
- ``memory_used_percent``: ``(total - available) / total``, in percent.
- ``memory_available_bytes``: memory that can be given to processes without swapping.
- ``swap_used_percent``: only while the host has swap (total > 0).
- ``disk_used_percent{mountpoint,device}``: per mounted physical partition
  (``psutil.disk_partitions(all=False)``).
- ``disk_read_bytes_per_second{device}``, ``disk_write_bytes_per_second{device}``: per
  whole disk; loop, RAM and fd devices and partitions are left out (the pattern
  `DEFAULT_DISK_DEVICE_EXCLUDE`, node_exporter's default).
- ``network_receive_bytes_per_second{interface}``,
  ``network_transmit_bytes_per_second{interface}``: per interface except loopback.
- ``load1``, ``load5``, ``load15``: the load averages.

The CPU series and the ``*_per_second`` rates come from the change of psutil's counters
between two fetches (CPU: fractions of the CPU time that passed; rates: divided by the
seconds between the two ``now`` values). So the first fetch has only the gauges. A counter
that went down (a reset, a replaced device) gives no sample that tick and is measured
again from its new value; devices that appear start with the next fetch, devices that
vanish just stop.

Every psutil call is non-blocking (``cpu_times``, never ``cpu_percent(interval)``), and
the whole read runs in a worker thread so that a slow mount cannot stall the event loop.
If psutil raises for one item (a mount, the disk counters, the load average), that item is
skipped, counted in `HostSource.failures` and logged once at debug level; the rest still
come. Only when every item fails does `fetch` raise `SourceUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import psutil

from vigil.errors import ConfigError, SourceUnavailable
from vigil.sources.base import SeriesBatch, Source

__all__ = ["DEFAULT_DISK_DEVICE_EXCLUDE", "DEFAULT_INTERFACE_EXCLUDE", "HostSource"]

log = logging.getLogger(__name__)

DEFAULT_DISK_DEVICE_EXCLUDE = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"
DEFAULT_INTERFACE_EXCLUDE = r"^lo$"

_CPU_LEFT_OUT = frozenset({"guest", "guest_nice"})  # already inside user and nice
_CPU_IDLE = frozenset({"idle", "iowait"})

_Labels = dict[str, str]
_Key = tuple[tuple[str, str], ...]
_Sample = tuple[_Labels, float]


def _key(labels: _Labels) -> _Key:
    return tuple(sorted(labels.items()))


class HostSource(Source):
    """Samples this host with psutil; see the module docstring for the series.

    Parameters
    ----------
    name
        The source's name, which the engine puts in the ``query`` label.
    interval
        Seconds between fetches (the step the engine polls at); > 0.
    psutil_module
        The psutil module, or any object with the same functions (tests pass a fake).
    disk_device_exclude
        Regular expression of disk device names (as in ``disk_io_counters``) whose I/O
        rates are not reported.
    interface_exclude
        Regular expression of network interface names that are not reported.
    """

    def __init__(
        self,
        name: str = "host",
        interval: float = 5.0,
        *,
        psutil_module: Any = psutil,
        disk_device_exclude: str = DEFAULT_DISK_DEVICE_EXCLUDE,
        interface_exclude: str = DEFAULT_INTERFACE_EXCLUDE,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"system source: name is {name!r}; write a non-empty name")
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not (math.isfinite(interval) and interval > 0)
        ):
            raise ConfigError(
                f"system source {name!r}: interval is {interval!r}; write a number of seconds > 0"
            )
        self.name = name
        self.interval = float(interval)
        self._psutil = psutil_module
        self._disk_exclude = self._pattern("disk_device_exclude", disk_device_exclude)
        self._interface_exclude = self._pattern("interface_exclude", interface_exclude)
        # last reading of each counter, per group: group -> labels -> (time, value)
        self._counters: dict[str, dict[_Key, tuple[float, float]]] = {}
        self._cpu_times: dict[str, float] | None = None
        self._logged: set[str] = set()
        self._lock = threading.Lock()
        self.failures: Counter[str] = Counter()  # item -> times psutil raised for it

    def _pattern(self, key: str, pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ConfigError(
                f"system source {self.name!r}: {key} is {pattern!r}, not a regular expression "
                f"({exc}); write one such as {DEFAULT_INTERFACE_EXCLUDE!r}"
            ) from exc

    async def fetch(self, now: float) -> list[SeriesBatch]:
        """Read the host once; one batch per series, each with one sample at ``now``."""
        return await asyncio.to_thread(self.sample, now)

    async def close(self) -> None:
        """Forget the previous counter readings (nothing else is held)."""
        with self._lock:
            self._counters.clear()
            self._cpu_times = None

    def sample(self, now: float) -> list[SeriesBatch]:
        """The synchronous body of `fetch`."""
        steps: list[tuple[str, Callable[[float], list[_Sample]]]] = [
            ("cpu", self._cpu),
            ("memory", self._memory),
            ("swap", self._swap),
            ("disk usage", self._disk_usage),
            ("disk io", self._disk_io),
            ("network", self._network),
            ("load", self._load),
        ]
        samples: dict[_Key, _Sample] = {}
        errors: list[str] = []
        with self._lock:
            for item, step in steps:
                try:
                    found = step(now)
                except Exception as exc:  # noqa: BLE001 - one bad item never stops the rest
                    self._skip(item, exc)
                    errors.append(f"{item}: {exc!r}")
                    continue
                for labels, value in found:
                    samples[_key(labels)] = (labels, value)
        if len(errors) == len(steps):
            raise SourceUnavailable(
                f"system source {self.name!r}: psutil failed for every item: " + "; ".join(errors)
            )
        t = np.array([now], dtype=np.float64)
        return [
            SeriesBatch(labels=labels, t=t.copy(), v=np.array([value], dtype=np.float64))
            for labels, value in samples.values()
        ]

    def _skip(self, item: str, exc: BaseException) -> None:
        self.failures[item] += 1
        if item not in self._logged:
            self._logged.add(item)
            log.debug("system source %r: skipping %s, psutil raised %r", self.name, item, exc)

    # --- gauges ---------------------------------------------------------------------

    def _memory(self, now: float) -> list[_Sample]:
        mem = self._psutil.virtual_memory()
        return [
            ({"__name__": "memory_used_percent"}, float(mem.percent)),
            ({"__name__": "memory_available_bytes"}, float(mem.available)),
        ]

    def _swap(self, now: float) -> list[_Sample]:
        swap = self._psutil.swap_memory()
        if not swap.total > 0:
            return []
        return [({"__name__": "swap_used_percent"}, float(swap.percent))]

    def _disk_usage(self, now: float) -> list[_Sample]:
        out: list[_Sample] = []
        for part in self._psutil.disk_partitions(all=False):
            try:
                used = float(self._psutil.disk_usage(part.mountpoint).percent)
            except Exception as exc:  # noqa: BLE001 - skip this one, keep the rest
                self._skip(f"disk usage {part.mountpoint}", exc)
                continue
            labels = {
                "__name__": "disk_used_percent",
                "mountpoint": str(part.mountpoint),
                "device": str(part.device),
            }
            out.append((labels, used))
        return out

    def _load(self, now: float) -> list[_Sample]:
        load1, load5, load15 = self._psutil.getloadavg()
        return [
            ({"__name__": "load1"}, float(load1)),
            ({"__name__": "load5"}, float(load5)),
            ({"__name__": "load15"}, float(load15)),
        ]

    # --- from counters ----------------------------------------------------------------

    def _cpu(self, now: float) -> list[_Sample]:
        times = self._psutil.cpu_times()
        current = {mode: float(getattr(times, mode)) for mode in times._fields}
        previous, self._cpu_times = self._cpu_times, current
        if previous is None:
            return []
        delta = {
            mode: current[mode] - previous[mode]
            for mode in current
            if mode in previous and mode not in _CPU_LEFT_OUT
        }
        total = sum(delta.values())
        if any(d < 0 for d in delta.values()) or not total > 0:
            return []  # counters went back, or no CPU time passed
        busy = total - sum(d for mode, d in delta.items() if mode in _CPU_IDLE)
        out: list[_Sample] = [
            ({"__name__": "cpu_utilization"}, min(100.0, max(0.0, 100.0 * busy / total)))
        ]
        out += [
            ({"__name__": "cpu_mode_percent", "mode": mode}, 100.0 * d / total)
            for mode, d in delta.items()
        ]
        return out

    def _disk_io(self, now: float) -> list[_Sample]:
        disks = self._psutil.disk_io_counters(perdisk=True) or {}
        fields = (
            ("disk_read_bytes_per_second", "read_bytes"),
            ("disk_write_bytes_per_second", "write_bytes"),
        )
        return self._per_device("disk io", now, disks, "device", self._disk_exclude, fields)

    def _network(self, now: float) -> list[_Sample]:
        nics = self._psutil.net_io_counters(pernic=True) or {}
        fields = (
            ("network_receive_bytes_per_second", "bytes_recv"),
            ("network_transmit_bytes_per_second", "bytes_sent"),
        )
        return self._per_device("network", now, nics, "interface", self._interface_exclude, fields)

    def _per_device(
        self,
        group: str,
        now: float,
        devices: dict[str, Any],
        label: str,
        exclude: re.Pattern[str],
        fields: tuple[tuple[str, str], ...],
    ) -> list[_Sample]:
        readings: list[_Sample] = []
        for device, counters in devices.items():
            if exclude.search(device):
                continue
            try:
                values = [float(getattr(counters, attr)) for _, attr in fields]
            except Exception as exc:  # noqa: BLE001 - skip this one, keep the rest
                self._skip(f"{group} {device}", exc)
                continue
            readings += [
                ({"__name__": metric, label: device}, value)
                for (metric, _), value in zip(fields, values, strict=True)
            ]
        return self._rates(group, now, readings)

    def _rates(self, group: str, now: float, readings: Iterable[_Sample]) -> list[_Sample]:
        """Per-second rates of the counters in ``readings`` since their previous reading.

        The group's previous readings are replaced only here, so a group whose read failed
        keeps its old readings and the next rate spans both intervals.
        """
        previous = self._counters.get(group, {})
        current: dict[_Key, tuple[float, float]] = {}
        out: list[_Sample] = []
        for labels, value in readings:
            key = _key(labels)
            current[key] = (now, value)
            if key not in previous:
                continue
            then, before = previous[key]
            elapsed = now - then
            if elapsed > 0 and value >= before:
                out.append((labels, (value - before) / elapsed))
        self._counters[group] = current
        return out
