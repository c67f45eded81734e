"""The time of a CSV row: which column holds it, in which form, and its reading as epoch seconds.

`choose_time` decides, from the header and the first `SAMPLE` rows, how the time is
written (the rules are listed in `vigil.sources.csv`); the `TimeSpec` it returns parses a
whole column at once. Epoch times are numbers, so the number parsing that the value
columns share lives here too (`parse_numbers`, `number`, and the cells that mean `MISSING`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from vigil.errors import DataError
from vigil.state import FloatArray

__all__ = [
    "MISSING", "SAMPLE", "TIME_COLUMNS", "TimeSpec", "choose_time", "datetime_seconds", "number", "parse_datetimes",
    "parse_numbers",
]

TIME_COLUMNS = ("timestamp", "time", "datetime", "date", "ts")
MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})
SAMPLE = 50  # first rows that decide how a column is read
_DATETIME = re.compile(
    r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


def number(s: str) -> float | None:
    """The float a cell holds, or None."""
    try:
        return float(s)
    except ValueError:
        return None


def parse_numbers(strings: Sequence[str], missing_ok: bool) -> tuple[FloatArray, np.ndarray]:
    """Floats and a mask of unreadable cells; missing cells are NaN (bad unless `missing_ok`)."""
    n = len(strings)
    try:
        return np.fromiter(map(float, strings), dtype=np.float64, count=n), np.zeros(n, dtype=bool)
    except ValueError:
        pass
    out = np.empty(n)
    bad = np.zeros(n, dtype=bool)
    for i, s in enumerate(strings):
        try:
            out[i] = float(s)
        except ValueError:
            out[i] = np.nan
            bad[i] = not (missing_ok and s.strip().lower() in MISSING)
    return out, bad


def datetime_seconds(s: str) -> float | None:
    """Epoch seconds of an ISO-8601 datetime or date (UTC unless it has an offset)."""
    s = s.strip()
    try:
        d = datetime.fromisoformat(s)
    except ValueError:
        m = _DATETIME.fullmatch(s)
        if m is None:
            return None
        year, month, day, hour, minute, second, frac, tz = m.groups()
        try:
            d = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
        except ValueError:
            return None
        if frac:
            d += timedelta(seconds=float("0." + frac))
        if tz and tz.upper() != "Z":
            sign = -1 if tz[0] == "-" else 1
            digits = tz[1:].replace(":", "")
            d = d.replace(
                tzinfo=timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            )
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def parse_datetimes(strings: Sequence[str]) -> tuple[FloatArray, np.ndarray]:
    """Epoch seconds and a mask of unreadable cells; vectorised when NumPy can parse them all."""
    n = len(strings)
    if n == 0:
        return np.empty(0), np.zeros(0, dtype=bool)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NumPy warns on offsets: let Python parse those
            d = np.array(strings, dtype=str).astype("datetime64[us]")
        bad = np.isnat(d)
        if not bad.any():
            return d.astype(np.int64) / 1e6, bad
    except (ValueError, Warning):
        pass
    out = np.empty(n)
    for i, s in enumerate(strings):
        v = datetime_seconds(s)
        out[i] = np.nan if v is None else v
    return out, np.isnan(out)


_EPOCH_UNITS = (
    (1e17, 1e9, "nanoseconds"),
    (1e14, 1e6, "microseconds"),
    (1e11, 1e3, "milliseconds"),
)


@dataclass(frozen=True)
class TimeSpec:
    """How the time of a row is read: from which columns and in which form."""

    kind: str  # "epoch", "datetime" or "date+time"
    columns: tuple[int, ...]
    describe: str
    scale: float = 1.0

    def parse(self, cols: list[list[str]]) -> tuple[FloatArray, np.ndarray]:
        if self.kind == "epoch":
            t, bad = parse_numbers(cols[0], missing_ok=False)
            t = t / self.scale
        elif self.kind == "datetime":
            t, bad = parse_datetimes(cols[0])
        else:
            t, bad = parse_datetimes([d + "T" + c for d, c in zip(cols[0], cols[1], strict=True)])
            bad |= np.array([":" not in c for c in cols[1]], dtype=bool)
        bad |= ~np.isfinite(t)
        return t, bad


def choose_time(name: str, names: list[str], records: list[list[str]]) -> TimeSpec:
    lower = [h.lower() for h in names]
    found = {key: lower.index(key) for key in TIME_COLUMNS if key in lower}
    if not found:
        raise DataError(
            f"{name} has no time column (columns: {', '.join(names)}); name it 'timestamp' "
            "(or use the seed layout Date,Timestamp,value)"
        )
    date = found.get("date")
    clock = next((found[k] for k in ("timestamp", "time", "datetime", "ts") if k in found), None)
    candidates: list[TimeSpec] = []
    if clock is not None:
        c = names[clock]
        candidates += [
            TimeSpec("epoch", (clock,), f"{c} as epoch numbers"),
            TimeSpec("datetime", (clock,), f"{c} as ISO-8601 datetimes"),
        ]
        if date is not None:
            candidates.append(
                TimeSpec("date+time", (date, clock), f"{names[date]} + {c} (time of day)")
            )
    if date is not None:
        candidates.append(TimeSpec("datetime", (date,), f"{names[date]} as ISO-8601 datetimes"))

    sample = [col[:SAMPLE] for col in records]
    best, best_ok = candidates[0], -1
    for spec in candidates:
        t, bad = spec.parse([sample[j] for j in spec.columns])
        ok = int(np.count_nonzero(~bad))
        if ok > best_ok:
            best, best_ok, best_t = spec, ok, t[~bad]
    if best_ok <= 0:
        shown = ", ".join(
            f"{names[j]}={sample[j][0]!r}"
            for j in sorted(set(sum((s.columns for s in candidates), ())))
        )
        raise DataError(
            f"{name}: cannot read the time of the first rows ({shown}); write ISO-8601 "
            "(2024-03-01T14:05:00Z), epoch seconds or milliseconds, or Date + time of day"
        )
    if best.kind == "epoch":
        typical = float(np.median(np.abs(best_t)))
        for limit, scale, unit in _EPOCH_UNITS:
            if typical >= limit:
                return TimeSpec(
                    "epoch", best.columns, f"{names[best.columns[0]]} as epoch {unit}", scale
                )
        return TimeSpec("epoch", best.columns, f"{names[best.columns[0]]} as epoch seconds")
    return best
