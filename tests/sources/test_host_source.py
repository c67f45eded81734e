from __future__ import annotations

import asyncio
import logging
import time
from collections import namedtuple
from typing import Any

import numpy as np
import pytest

from vigil.errors import ConfigError, SourceUnavailable
from vigil.labels import series_key
from vigil.sources.base import SeriesBatch
from vigil.sources.host import HostSource

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait steal guest guest_nice")
Memory = namedtuple("Memory", "total available percent")
Swap = namedtuple("Swap", "total used percent")
Partition = namedtuple("Partition", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")
DiskIO = namedtuple("DiskIO", "read_bytes write_bytes")
NetIO = namedtuple("NetIO", "bytes_sent bytes_recv")

RATES = {
    "disk_read_bytes_per_second", "disk_write_bytes_per_second",
    "network_receive_bytes_per_second", "network_transmit_bytes_per_second",
}
CPU = {"cpu_utilization", "cpu_mode_percent"}
GAUGES = {
    "memory_used_percent", "memory_available_bytes", "swap_used_percent", "disk_used_percent",
    "load1", "load5", "load15",
}


class FakePsutil:
    """The few psutil functions the source calls, with values a test sets; `broken` names
    functions that raise."""

    def __init__(self) -> None:
        self.cpu = CpuTimes(user=100.0, nice=0.0, system=50.0, idle=800.0, iowait=10.0,
                            steal=0.0, guest=5.0, guest_nice=0.0)
        self.memory = Memory(total=8 * 2**30, available=6 * 2**30, percent=25.0)
        self.swap = Swap(total=2 * 2**30, used=2**29, percent=25.0)
        self.partitions = [Partition("/dev/sda1", "/", "ext4", "rw"),
                           Partition("/dev/sdb1", "/data", "xfs", "rw")]
        self.usage = {"/": Usage(100, 40, 60, 40.0), "/data": Usage(100, 70, 30, 70.0)}
        self.disks: dict[str, Any] = {"sda": DiskIO(10_000, 20_000), "loop0": DiskIO(1, 1)}
        self.nics: dict[str, Any] = {"eth0": NetIO(bytes_sent=5_000, bytes_recv=7_000),
                                     "lo": NetIO(1, 1)}
        self.load = (0.5, 0.25, 0.125)
        self.broken: set[str] = set()

    def _check(self, name: str) -> None:
        if name in self.broken:
            raise OSError(f"{name} is broken")

    def cpu_times(self) -> CpuTimes:
        self._check("cpu_times")
        return self.cpu

    def virtual_memory(self) -> Memory:
        self._check("virtual_memory")
        return self.memory

    def swap_memory(self) -> Swap:
        self._check("swap_memory")
        return self.swap

    def disk_partitions(self, all: bool = False) -> list[Partition]:
        self._check("disk_partitions")
        assert all is False
        return self.partitions

    def disk_usage(self, path: str) -> Usage:
        self._check("disk_usage")
        self._check(f"disk_usage {path}")
        return self.usage[path]

    def disk_io_counters(self, perdisk: bool = False) -> dict[str, Any]:
        self._check("disk_io_counters")
        assert perdisk
        return self.disks

    def net_io_counters(self, pernic: bool = False) -> dict[str, Any]:
        self._check("net_io_counters")
        assert pernic
        return self.nics

    def getloadavg(self) -> tuple[float, float, float]:
        self._check("getloadavg")
        return self.load


def fetch(source: HostSource, now: float) -> dict[str, SeriesBatch]:
    batches = asyncio.run(source.fetch(now))
    by_key = {series_key(b.labels): b for b in batches}
    assert len(by_key) == len(batches), "two batches for one series"
    return by_key


def values(batches: dict[str, SeriesBatch]) -> dict[str, float]:
    return {key: float(b.v[0]) for key, b in batches.items()}


def names(batches: dict[str, SeriesBatch]) -> set[str]:
    return {b.labels["__name__"] for b in batches.values()}


def advance(fake: FakePsutil) -> None:
    """Ten seconds of activity: CPU 3 s user, 1 s system, 5 s idle, 1 s iowait (40 % busy),
    sda reads 1000 bytes and writes 5000, eth0 receives 2000 and sends 500."""
    c = fake.cpu
    fake.cpu = c._replace(user=c.user + 3, system=c.system + 1, idle=c.idle + 5,
                          iowait=c.iowait + 1, guest=c.guest + 2)
    fake.disks["sda"] = DiskIO(fake.disks["sda"].read_bytes + 1000,
                               fake.disks["sda"].write_bytes + 5000)
    fake.nics["eth0"] = NetIO(bytes_sent=fake.nics["eth0"].bytes_sent + 500,
                              bytes_recv=fake.nics["eth0"].bytes_recv + 2000)


def test_source_has_the_protocol_defaults() -> None:
    source = HostSource(psutil_module=FakePsutil())
    assert source.name == "host"
    assert source.interval == 5.0
    asyncio.run(source.close())


def test_first_fetch_has_gauges_and_no_rates() -> None:
    got = fetch(HostSource(psutil_module=FakePsutil()), 1000.0)
    assert names(got) == GAUGES
    assert values(got) == {
        "memory_used_percent{}": 25.0,
        "memory_available_bytes{}": 6 * 2**30,
        "swap_used_percent{}": 25.0,
        'disk_used_percent{device="/dev/sda1",mountpoint="/"}': 40.0,
        'disk_used_percent{device="/dev/sdb1",mountpoint="/data"}': 70.0,
        "load1{}": 0.5,
        "load5{}": 0.25,
        "load15{}": 0.125,
    }


def test_each_batch_is_one_sample_at_now() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    advance(fake)
    for batch in fetch(source, 1010.0).values():
        assert batch.t.dtype == np.float64 and batch.v.dtype == np.float64
        assert batch.t.tolist() == [1010.0]
        assert batch.v.shape == (1,)


def test_second_fetch_has_rates_from_counter_deltas_over_elapsed_seconds() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    advance(fake)
    got = values(fetch(source, 1010.0))
    assert got['disk_read_bytes_per_second{device="sda"}'] == pytest.approx(100.0)
    assert got['disk_write_bytes_per_second{device="sda"}'] == pytest.approx(500.0)
    assert got['network_receive_bytes_per_second{interface="eth0"}'] == pytest.approx(200.0)
    assert got['network_transmit_bytes_per_second{interface="eth0"}'] == pytest.approx(50.0)


def test_cpu_percentages_come_from_cpu_time_deltas_and_leave_out_guest() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    advance(fake)
    got = values(fetch(source, 1010.0))
    assert got["cpu_utilization{}"] == pytest.approx(40.0)
    modes = {k: v for k, v in got.items() if k.startswith("cpu_mode_percent")}
    assert modes == pytest.approx({
        'cpu_mode_percent{mode="user"}': 30.0,
        'cpu_mode_percent{mode="nice"}': 0.0,
        'cpu_mode_percent{mode="system"}': 10.0,
        'cpu_mode_percent{mode="idle"}': 50.0,
        'cpu_mode_percent{mode="iowait"}': 10.0,
        'cpu_mode_percent{mode="steal"}': 0.0,
    })
    assert sum(modes.values()) == pytest.approx(100.0)


def test_cpu_modes_are_only_those_the_platform_reports() -> None:
    fake = FakePsutil()
    mac_times = namedtuple("mac_times", "user nice system idle")
    fake.cpu = mac_times(10.0, 0.0, 5.0, 85.0)  # type: ignore[assignment]
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    fake.cpu = mac_times(12.0, 0.0, 6.0, 92.0)  # type: ignore[assignment]
    got = values(fetch(source, 1010.0))
    assert {k for k in got if k.startswith("cpu_mode")} == {
        f'cpu_mode_percent{{mode="{m}"}}' for m in ("user", "nice", "system", "idle")
    }
    assert got["cpu_utilization{}"] == pytest.approx(30.0)


def test_counter_going_backwards_gives_no_sample_that_tick_and_restarts_from_there() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    fake.disks["sda"] = DiskIO(read_bytes=10, write_bytes=30_000)  # reads reset, writes grew
    got = values(fetch(source, 1010.0))
    assert 'disk_read_bytes_per_second{device="sda"}' not in got
    assert got['disk_write_bytes_per_second{device="sda"}'] == pytest.approx(1000.0)
    fake.disks["sda"] = DiskIO(read_bytes=210, write_bytes=30_000)
    got = values(fetch(source, 1020.0))
    assert got['disk_read_bytes_per_second{device="sda"}'] == pytest.approx(20.0)


def test_cpu_times_going_backwards_give_no_cpu_samples_that_tick() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    fake.cpu = fake.cpu._replace(user=1.0)
    assert not names(fetch(source, 1010.0)) & CPU
    advance(fake)
    assert names(fetch(source, 1020.0)) >= CPU


def test_same_or_earlier_now_gives_no_rates() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    advance(fake)
    assert not names(fetch(source, 1000.0)) & RATES
    advance(fake)
    assert not names(fetch(source, 990.0)) & RATES


def test_a_device_raising_is_skipped_and_the_rest_still_come(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakePsutil()
    fake.broken = {"disk_usage /data", "getloadavg"}
    source = HostSource(psutil_module=fake)
    with caplog.at_level(logging.DEBUG, logger="vigil.sources.host"):
        fetch(source, 1000.0)
        advance(fake)
        got = fetch(source, 1010.0)
    assert [b.labels["mountpoint"] for b in got.values() if "mountpoint" in b.labels] == ["/"]
    assert not names(got) & {"load1", "load5", "load15"}
    assert names(got) == (GAUGES | RATES | CPU) - {"load1", "load5", "load15"}
    assert source.failures == {"disk usage /data": 2, "load": 2}
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 2, "each failing item is logged once, not every tick"
    assert any("/data" in m for m in skipped) and any("load" in m for m in skipped)


def test_a_device_with_unreadable_counters_is_skipped() -> None:
    fake = FakePsutil()
    fake.disks["sdb"] = object()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    advance(fake)
    got = fetch(source, 1010.0)
    assert {b.labels.get("device") for b in got.values() if "bytes_per" in b.labels["__name__"]
            and "disk" in b.labels["__name__"]} == {"sda"}
    assert source.failures["disk io sdb"] == 2


def test_a_group_that_failed_one_tick_measures_its_next_rate_over_both_intervals() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    advance(fake)
    fake.broken = {"disk_io_counters"}
    assert not any(k.startswith("disk_read") for k in fetch(source, 1010.0))
    fake.broken = set()
    advance(fake)
    got = values(fetch(source, 1020.0))
    assert got['disk_read_bytes_per_second{device="sda"}'] == pytest.approx(2000 / 20)


def test_devices_that_appear_and_vanish_are_fine() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    fake.disks = {"sdc": DiskIO(500, 500)}  # sda gone, sdc new
    got = fetch(source, 1010.0)
    assert not any("disk_read" in k or "disk_write" in k for k in got)
    fake.disks = {"sdc": DiskIO(1500, 500), "sda": DiskIO(10_000, 20_000)}
    got2 = values(fetch(source, 1020.0))
    assert got2['disk_read_bytes_per_second{device="sdc"}'] == pytest.approx(100.0)
    assert 'disk_read_bytes_per_second{device="sda"}' not in got2  # came back: a new baseline


def test_no_swap_gives_no_swap_series() -> None:
    fake = FakePsutil()
    fake.swap = Swap(total=0, used=0, percent=0.0)
    assert "swap_used_percent" not in names(fetch(HostSource(psutil_module=fake), 1000.0))


def test_loopback_interface_and_loop_devices_are_left_out() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    advance(fake)
    got = fetch(source, 1010.0)
    assert {b.labels.get("interface") for b in got.values()} - {None} == {"eth0"}
    assert {b.labels.get("device") for b in got.values() if "mountpoint" not in b.labels} - {
        None
    } == {"sda"}


def test_every_item_failing_raises_source_unavailable() -> None:
    fake = FakePsutil()
    fake.broken = {"cpu_times", "virtual_memory", "swap_memory", "disk_partitions",
                   "disk_io_counters", "net_io_counters", "getloadavg"}
    with pytest.raises(SourceUnavailable, match="every item"):
        fetch(HostSource(psutil_module=fake), 1000.0)


def test_close_forgets_previous_readings() -> None:
    fake = FakePsutil()
    source = HostSource(psutil_module=fake)
    fetch(source, 1000.0)
    asyncio.run(source.close())
    advance(fake)
    assert not names(fetch(source, 1010.0)) & (RATES | CPU)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        pytest.param({"interval": 0}, "interval", id="zero-interval"),
        pytest.param({"interval": float("nan")}, "interval", id="nan-interval"),
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"interface_exclude": "("}, "interface_exclude", id="bad-regex"),
    ],
)
def test_bad_parameters_raise_config_error_naming_them(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        HostSource(psutil_module=FakePsutil(), **kwargs)


def test_real_psutil_gives_cpu_utilization_in_0_to_100_and_disk_series() -> None:
    source = HostSource()
    first = fetch(source, time.time())
    assert {"memory_used_percent", "disk_used_percent", "load1"} <= names(first)
    deadline = time.monotonic() + 5.0
    got: dict[str, SeriesBatch] = {}
    while "cpu_utilization" not in names(got):  # needs a CPU clock tick between two reads
        if time.monotonic() > deadline:
            pytest.fail("no cpu_utilization from real psutil within 5 s")
        time.sleep(0.02)
        got = fetch(source, time.time())
    assert 0.0 <= got["cpu_utilization{}"].v[0] <= 100.0
    assert any(b.labels["__name__"].startswith("disk_") for b in got.values())
    for batch in got.values():
        assert np.isfinite(batch.v).all()
        assert batch.labels["__name__"]
