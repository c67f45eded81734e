from __future__ import annotations

import io
import json
import math
from collections import namedtuple
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from vigil.errors import ConfigError
from vigil.tools.healthcheck import Report, Status, Thresholds, check, exit_code, render_table, to_json

Memory = namedtuple("Memory", "total available percent")
Partition = namedtuple("Partition", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")

WHEN = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


class FakePsutil:
    def __init__(self, cpu: float = 10.0, memory: float = 20.0, disks: dict[str, Any] | None = None):
        self.cpu = cpu
        self.memory = memory
        self.disks: dict[str, Any] = {"/": 30.0} if disks is None else disks
        self.intervals: list[float] = []

    def cpu_percent(self, interval: float | None = None) -> float:
        assert interval is not None and interval > 0, "must measure over an interval"
        self.intervals.append(interval)
        return self.cpu

    def virtual_memory(self) -> Memory:
        return Memory(total=16 * 2**30, available=8 * 2**30, percent=self.memory)

    def disk_partitions(self, all: bool = False) -> list[Partition]:
        return [Partition(f"/dev/d{i}", mp, "ext4", "rw") for i, mp in enumerate(self.disks)]

    def disk_usage(self, path: str) -> Usage:
        percent = self.disks[path]
        if isinstance(percent, Exception):
            raise percent
        return Usage(total=100 * 2**30, used=percent * 2**30, free=(100 - percent) * 2**30,
                     percent=percent)


def run(fake: FakePsutil, thresholds: Thresholds | None = None) -> Report:
    return check(thresholds, psutil_module=fake, cpu_interval=0.01, clock=lambda: WHEN)


def statuses(report: Report) -> dict[str, Status]:
    return {item.name: item.status for item in report.items}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.0, Status.OK, id="idle"),
        pytest.param(79.9, Status.OK, id="just-below-warning"),
        pytest.param(80.0, Status.WARNING, id="at-warning"),
        pytest.param(94.9, Status.WARNING, id="just-below-critical"),
        pytest.param(95.0, Status.CRITICAL, id="at-critical"),
        pytest.param(100.0, Status.CRITICAL, id="full"),
    ],
)
def test_cpu_status_and_exit_code_at_below_and_above_thresholds(
    value: float, expected: Status
) -> None:
    report = run(FakePsutil(cpu=value))
    assert statuses(report)["cpu"] is expected
    assert report.status is expected
    assert exit_code(report) == {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2}[expected]


@pytest.mark.parametrize(
    ("memory", "disk", "expected"),
    [
        pytest.param(84.9, 84.9, (Status.OK, Status.OK), id="below"),
        pytest.param(85.0, 85.0, (Status.WARNING, Status.WARNING), id="at-warning"),
        pytest.param(95.0, 99.0, (Status.CRITICAL, Status.CRITICAL), id="at-and-above-critical"),
    ],
)
def test_memory_and_disk_use_their_own_default_thresholds(
    memory: float, disk: float, expected: tuple[Status, Status]
) -> None:
    got = statuses(run(FakePsutil(memory=memory, disks={"/": disk})))
    assert (got["memory"], got["disk:/"]) == expected


def test_the_worst_item_decides_the_overall_status() -> None:
    fake = FakePsutil(cpu=10.0, memory=90.0, disks={"/": 30.0, "/var": 97.0, "/home": 50.0})
    report = run(fake)
    assert statuses(report) == {
        "cpu": Status.OK, "memory": Status.WARNING,
        "disk:/": Status.OK, "disk:/var": Status.CRITICAL, "disk:/home": Status.OK,
    }
    assert report.status is Status.CRITICAL and exit_code(report) == 2
    fake.disks["/var"] = 50.0
    assert exit_code(run(fake)) == 1


def test_overridden_thresholds_are_used_and_reported() -> None:
    thresholds = Thresholds(cpu_warning=5, cpu_critical=50, disk_warning=20, disk_critical=25)
    report = run(FakePsutil(cpu=10.0, disks={"/": 30.0}), thresholds)
    cpu, _, disk = report.items
    assert (cpu.status, cpu.warning, cpu.critical) == (Status.WARNING, 5.0, 50.0)
    assert disk.status is Status.CRITICAL
    assert "critical level 25%" in disk.message


def test_cpu_is_measured_over_the_given_interval() -> None:
    fake = FakePsutil()
    check(psutil_module=fake, cpu_interval=0.25)
    assert fake.intervals == [0.25]


@pytest.mark.parametrize("interval", [0, -1, float("nan")])
def test_bad_cpu_interval_raises_config_error(interval: float) -> None:
    with pytest.raises(ConfigError, match="cpu_interval"):
        check(psutil_module=FakePsutil(), cpu_interval=interval)


def test_a_mount_that_raises_is_left_out_and_the_rest_reported() -> None:
    fake = FakePsutil(disks={"/": 30.0, "/mnt/gone": PermissionError("denied"), "/data": 99.0})
    report = run(fake)
    assert [item.name for item in report.items] == ["cpu", "memory", "disk:/", "disk:/data"]
    assert report.status is Status.CRITICAL


def test_no_disks_gives_cpu_and_memory_only() -> None:
    report = run(FakePsutil(disks={}))
    assert [item.name for item in report.items] == ["cpu", "memory"]
    assert report.status is Status.OK


def test_json_has_stable_keys_and_iso_8601_time() -> None:
    doc = json.loads(to_json(run(FakePsutil(cpu=12.345, memory=90.0))))
    assert set(doc) == {"status", "items", "checked_at"}
    assert doc["status"] == "warning"
    assert datetime.fromisoformat(doc["checked_at"]) == WHEN
    for item in doc["items"]:
        assert set(item) == {"name", "value", "unit", "status", "warning", "critical"}
    assert doc["items"][0] == {"name": "cpu", "value": 12.35, "unit": "percent", "status": "ok",
                               "warning": 80.0, "critical": 95.0}


def test_table_shows_every_item_and_the_overall_status() -> None:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(
        render_table(run(FakePsutil(memory=97.0, disks={"/": 30.0, "/srv": 40.0})))
    )
    text = out.getvalue()
    for word in ("cpu", "memory", "disk:/", "disk:/srv", "critical", "ok", "97.0%"):
        assert word in text
    assert "host health: critical" in text


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        pytest.param({"cpu_warning": 96}, "thresholds.cpu_warning", id="warning-above-critical"),
        pytest.param({"memory_warning": 60, "memory_critical": 50}, "thresholds.memory_warning",
                     id="memory-warning-above-critical"),
        pytest.param({"disk_critical": 101}, "thresholds.disk_critical", id="above-100"),
        pytest.param({"disk_warning": -1}, "thresholds.disk_warning", id="negative"),
        pytest.param({"cpu_critical": math.nan}, "thresholds.cpu_critical", id="nan"),
        pytest.param({"memory_warning": "80"}, "thresholds.memory_warning", id="text"),
        pytest.param({"cpu_warning": True}, "thresholds.cpu_warning", id="bool"),
    ],
)
def test_bad_thresholds_raise_config_error_naming_the_key(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Thresholds(**kwargs)


def test_equal_warning_and_critical_go_straight_to_critical() -> None:
    thresholds = Thresholds(cpu_warning=90, cpu_critical=90)
    assert statuses(run(FakePsutil(cpu=89.0), thresholds))["cpu"] is Status.OK
    assert statuses(run(FakePsutil(cpu=90.0), thresholds))["cpu"] is Status.CRITICAL


def test_real_psutil_reports_cpu_memory_and_disks() -> None:
    report = check(cpu_interval=0.05)
    kinds = {item.name.split(":")[0] for item in report.items}
    assert kinds == {"cpu", "memory", "disk"}
    for item in report.items:
        assert 0.0 <= item.value <= 100.0
        assert item.unit == "percent"
    assert report.checked_at.tzinfo is not None
    assert exit_code(report) in (0, 1, 2)
    json.loads(to_json(report))
