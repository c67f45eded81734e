"""A one-shot health report of this host: CPU, memory and each disk against thresholds.

`check` measures the CPU's busy percent over a short interval, the memory used percent and
the used percent of every mounted physical partition, and rates each item ``ok``,
``warning`` or ``critical``: a value at or above the critical threshold is critical, at or
above the warning threshold a warning, below it ok. The report's status is its worst item.
`exit_code` maps that onto the usual 0 / 1 / 2, `render_table` draws it for a terminal and
`to_json` gives a stable document for programs.

>>> t = Thresholds(cpu_warning=70)
>>> t.cpu_warning, t.cpu_critical
(70.0, 95.0)
>>> Thresholds(disk_warning=97)
Traceback (most recent call last):
...
vigil.errors.ConfigError: thresholds.disk_warning is 97.0, above thresholds.disk_critical (95.0); ...
"""

from __future__ import annotations

import enum
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import psutil
from rich.table import Table
from rich.text import Text

from vigil.errors import ConfigError

__all__ = [
    "Item",
    "Report",
    "Status",
    "Thresholds",
    "check",
    "exit_code",
    "render_table",
    "to_json",
]

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    """How an item (or the whole report) stands, from best to worst."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for ok, 1 for warning, 2 for critical (also the process exit code)."""
        return _RANK[self]


_RANK = {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2}


@dataclass(frozen=True)
class Thresholds:
    """Warning and critical levels, in percent (0..100), per kind of item.

    A level of 100 never fires for a percent below 100. A warning level must not be above
    its critical level (equal is allowed: the item goes from ok straight to critical).
    Wrong values raise `ConfigError` naming the key, such as ``thresholds.cpu_warning``.
    """

    cpu_warning: float = 80.0
    cpu_critical: float = 95.0
    memory_warning: float = 85.0
    memory_critical: float = 95.0
    disk_warning: float = 85.0
    disk_critical: float = 95.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value: Any = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(
                    f"thresholds.{f.name} is {value!r}; write a percent from 0 to 100"
                )
            if not (math.isfinite(value) and 0 <= value <= 100):
                raise ConfigError(
                    f"thresholds.{f.name} is {value!r}; write a percent from 0 to 100"
                )
            object.__setattr__(self, f.name, float(value))
        for kind in ("cpu", "memory", "disk"):
            warning, critical = self.levels(kind)
            if warning > critical:
                raise ConfigError(
                    f"thresholds.{kind}_warning is {warning}, above thresholds.{kind}_critical "
                    f"({critical}); write a warning level at or below the critical one"
                )

    def levels(self, kind: str) -> tuple[float, float]:
        """``(warning, critical)`` for ``cpu``, ``memory`` or ``disk``."""
        return getattr(self, f"{kind}_warning"), getattr(self, f"{kind}_critical")

    def rate(self, kind: str, value: float) -> Status:
        """The status of a ``kind`` item whose value is ``value`` percent."""
        warning, critical = self.levels(kind)
        if value >= critical:
            return Status.CRITICAL
        if value >= warning:
            return Status.WARNING
        return Status.OK


@dataclass(frozen=True)
class Item:
    """One measured thing: ``cpu``, ``memory`` or ``disk:<mountpoint>``."""

    name: str
    value: float
    unit: str
    status: Status
    message: str
    warning: float
    critical: float


@dataclass(frozen=True)
class Report:
    """Every item, the worst status among them, and when the check ran (UTC)."""

    items: tuple[Item, ...]
    checked_at: datetime
    status: Status = field(init=False)

    def __post_init__(self) -> None:
        worst = max((item.status for item in self.items), key=lambda s: s.rank, default=Status.OK)
        object.__setattr__(self, "status", worst)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check(
    thresholds: Thresholds | None = None,
    psutil_module: Any = psutil,
    cpu_interval: float = 0.5,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Report:
    """Measure this host once and rate each item against ``thresholds``.

    Parameters
    ----------
    thresholds
        Warning and critical levels; the defaults of `Thresholds` when None.
    psutil_module
        The psutil module, or an object with its ``cpu_percent``, ``virtual_memory``,
        ``disk_partitions`` and ``disk_usage`` (tests pass a fake).
    cpu_interval
        Seconds over which the CPU's busy percent is measured (the call blocks that long);
        > 0.
    clock
        Returns the time stamped on the report.

    Returns
    -------
    Report
        A ``cpu`` item, a ``memory`` item and one ``disk:<mountpoint>`` item per mounted
        physical partition whose usage could be read (a mount that raises is left out).
    """
    limits = thresholds if thresholds is not None else Thresholds()
    if (
        isinstance(cpu_interval, bool)
        or not isinstance(cpu_interval, (int, float))
        or not (math.isfinite(cpu_interval) and cpu_interval > 0)
    ):
        raise ConfigError(f"cpu_interval is {cpu_interval!r}; write a number of seconds > 0")
    items: list[Item] = []

    def add(kind: str, name: str, value: float, detail: str) -> None:
        warning, critical = limits.levels(kind)
        status = limits.rate(kind, value)
        message = detail
        if status is not Status.OK:
            level = critical if status is Status.CRITICAL else warning
            message += f"; at or above the {status} level {level:g}%"
        items.append(Item(name, value, "percent", status, message, warning, critical))

    cpu = float(psutil_module.cpu_percent(interval=cpu_interval))
    add("cpu", "cpu", cpu, f"CPU {cpu:.1f}% busy over {cpu_interval:g} s")

    mem = psutil_module.virtual_memory()
    used = float(mem.percent)
    add("memory", "memory", used, f"memory {used:.1f}% used, {_gib(mem.available)} available")

    seen: set[str] = set()
    for part in psutil_module.disk_partitions(all=False):
        mountpoint = str(part.mountpoint)
        if mountpoint in seen:
            continue
        seen.add(mountpoint)
        try:
            usage = psutil_module.disk_usage(mountpoint)
        except Exception as exc:  # noqa: BLE001 - one unreadable mount leaves the others
            log.debug("healthcheck: skipping disk %s: %r", mountpoint, exc)
            continue
        percent = float(usage.percent)
        detail = f"{mountpoint} ({part.device}) {percent:.1f}% used, {_gib(usage.free)} free"
        add("disk", f"disk:{mountpoint}", percent, f"{detail} of {_gib(usage.total)}")

    return Report(items=tuple(items), checked_at=clock())


def exit_code(report: Report) -> int:
    """0 when the report is ok, 1 for a warning, 2 for critical."""
    return report.status.rank


_STYLE = {Status.OK: "green", Status.WARNING: "yellow", Status.CRITICAL: "bold red"}


def render_table(report: Report) -> Table:
    """A rich table of the items, titled with the overall status and the time."""
    title = Text.assemble(
        "host health: ",
        (report.status.value, _STYLE[report.status]),
        f"  ({report.checked_at.isoformat(timespec='seconds')})",
    )
    table = Table(title=title, title_justify="left")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_column("status")
    table.add_column("warning", justify="right")
    table.add_column("critical", justify="right")
    table.add_column("detail", overflow="fold")
    for item in report.items:
        table.add_row(
            item.name,
            f"{item.value:.1f}%",
            Text(item.status.value, style=_STYLE[item.status]),
            f"{item.warning:g}%",
            f"{item.critical:g}%",
            item.message,
        )
    return table


def to_json(report: Report) -> str:
    """The report as JSON with stable keys.

    ``{"status", "checked_at" (ISO-8601, UTC), "items": [{"name", "value", "unit",
    "status", "warning", "critical"}]}``; values are rounded to 2 decimals.
    """
    doc = {
        "status": report.status.value,
        "checked_at": report.checked_at.isoformat(),
        "items": [
            {
                "name": item.name,
                "value": round(item.value, 2),
                "unit": item.unit,
                "status": item.status.value,
                "warning": item.warning,
                "critical": item.critical,
            }
            for item in report.items
        ],
    }
    return json.dumps(doc, indent=2)
