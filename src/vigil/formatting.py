"""Times and numbers as Vigil writes them, in JSON and in text, the same everywhere.

- `iso` / `iso_times`: ISO-8601 UTC such as ``2024-03-02T01:00:00Z``, to the second, with
  milliseconds only when a time needs them.
- `json_number`: a float for a JSON document, rounded to 9 decimals; None when not finite.
- `number_text`: a number for a person: at least 3 significant digits and at least one
  decimal (``97.2``, ``90.0``, ``0.00194``, ``1234.5``), an exponent only below 1e-4 or
  from 1e6 on (``1.23e+06``); ``?`` when unknown.
- `score_text`: an anomaly score to 6 decimals, cut rather than rounded, so a score just
  under 1 never reads as 1; ``?`` when unknown.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["UNKNOWN", "iso", "iso_times", "json_number", "json_numbers", "number_text", "score_text"]

UNKNOWN = "?"
_SCORE_STEP = Decimal("0.000001")


def _utc(when: Any, whole: bool) -> Any:
    return np.datetime_as_string(when, unit="s" if whole else "ms", timezone="UTC")


def iso_times(t: npt.ArrayLike) -> list[str]:
    """ISO-8601 UTC texts of finite epoch seconds: to the second, or all to the millisecond
    when any of them needs it.

    >>> iso_times([0.0, 1709341200.0])
    ['1970-01-01T00:00:00Z', '2024-03-02T01:00:00Z']
    >>> iso_times([0.0, 1709251200.5])
    ['1970-01-01T00:00:00.000Z', '2024-03-01T00:00:00.500Z']
    """
    ms = np.round(np.asarray(t, dtype=np.float64) * 1000).astype(np.int64)
    out: list[str] = _utc(ms.astype("datetime64[ms]"), bool(np.all(ms % 1000 == 0))).tolist()
    return out


def iso(ts: float | None) -> str | None:
    """One time as `iso_times` writes it; None for None, NaN or infinity.

    >>> iso(1700000000.0), iso(1700000000.25), iso(float("inf"))
    ('2023-11-14T22:13:20Z', '2023-11-14T22:13:20.250Z', None)
    """
    if ts is None or not math.isfinite(ts):
        return None
    ms = round(ts * 1000)
    return str(_utc(np.datetime64(ms, "ms"), ms % 1000 == 0))


def _finite(x: object) -> float | None:
    if type(x) is float:  # the common case, first: documents have hundreds of numbers
        value = x
    elif isinstance(x, bool) or not isinstance(x, int | float | np.floating | np.integer):
        return None
    else:
        value = float(x)
    return value if math.isfinite(value) else None


def json_number(x: object) -> float | None:
    """`x` rounded to 9 decimals, as a plain float; None when it is not a finite number.

    >>> json_number(np.float32(97.2)), json_number(0.9999996), json_number(float("nan"))
    (97.199996948, 0.9999996, None)
    """
    value = _finite(x)
    return None if value is None else json_numbers([value])[0]


def json_numbers(values: npt.ArrayLike) -> list[float | None]:
    """`json_number` of each value of an array, at numpy's speed (a page of sparklines has thousands).

    Values from a million up are kept as they are: float64 has no ninth decimal to round there.

    >>> json_numbers(np.array([1 / 3, np.nan, 2.5e9 + 0.1, -np.inf], dtype=np.float64))
    [0.333333333, None, 2500000000.1, None]
    """
    a = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        a = np.where(np.abs(a) < 1e6, np.round(a, 9), a)
    out: list[float | None] = a.tolist()
    for i in np.flatnonzero(~np.isfinite(a)).tolist():
        out[i] = None
    return out


def number_text(x: object) -> str:
    """At least 3 significant digits and one decimal; an exponent when very large or small.

    >>> [number_text(v) for v in (97.2, 41.49, 90, 0.00194, 1234.5, 5.123, 0.0)]
    ['97.2', '41.5', '90.0', '0.00194', '1234.5', '5.12', '0.0']
    >>> number_text(2.5e9), number_text(-3.2e-7), number_text(None), number_text(float("nan"))
    ('2.50e+09', '-3.20e-07', '?', '?')
    """
    value = _finite(x)
    if value is None:
        return UNKNOWN
    size = abs(value)
    if size and not 1e-4 <= size < 1e6:
        return f"{value:.2e}"
    decimals = max(1, 2 - math.floor(math.log10(size))) if size else 1
    return f"{value:.{decimals}f}"


def score_text(x: object) -> str:
    """A score to 6 decimals, cut: 0.9999996 is ``0.999999``, never ``1.000000``.

    >>> score_text(0.9999996), score_text(1.0), score_text(0.98), score_text(1e-9), score_text(None)
    ('0.999999', '1.000000', '0.980000', '0.000000', '?')
    """
    value = _finite(x)
    if value is None:
        return UNKNOWN
    return f"{Decimal(repr(value)).quantize(_SCORE_STEP, rounding=ROUND_DOWN):f}"
