"""Times and numbers as Vigil writes them, in JSON and in text, the same everywhere.

- `iso` / `iso_times`: ISO-8601 UTC such as ``2024-03-02T01:00:00Z``, to the second, with
  milliseconds only when a time needs them.
- `json_number`: a float for a JSON document, rounded to 9 decimals; None when not finite.
- `number_text`: a number for a person, to 3 significant digits (4 from 1000 to 9999):
  ``97.2``, ``90.0``, ``0.912``, ``0.00194``, ``1235``; an exponent below 0.001 and from
  10,000 on (``1.23e4``, ``3.20e-7``); ``?`` when unknown.
- `number_texts`: numbers read together (a value, its expected value and band) as
  `number_text` writes them, with more digits where 3 would print two different numbers
  alike, so a band never reads collapsed or inverted.
- `score_text`: an anomaly score to 6 decimals, cut rather than rounded, so a score just
  under 1 never reads as 1; ``?`` when unknown.
- `surprise` / `rarity_text`: the score on a scale people read: -log10(1 - score) (3 for a
  score of 0.999) and ``1 in 1,000 samples``.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_SURPRISE", "UNKNOWN", "iso", "iso_times", "json_number", "json_numbers", "number_text", "number_texts",
    "rarity_text", "score_text", "surprise",
]

UNKNOWN = "?"
_SCORE_STEP = Decimal("0.000001")
MAX_SURPRISE = 12.0  # -log10(1 - score) of a score float64 cannot tell from 1


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


def number_text(x: object, digits: int = 3) -> str:
    """`digits` significant digits (one more from 1000 to 9999, to keep it whole); an exponent
    below 0.001 and from 10,000 on.

    >>> [number_text(v) for v in (97.2, 41.49, 90, 0.912, 0.9, 0.00194, 1234.5, 5.123, 0.0)]
    ['97.2', '41.5', '90.0', '0.912', '0.900', '0.00194', '1234', '5.12', '0']
    >>> number_text(12345), number_text(2.5e9), number_text(-3.2e-7), number_text(None), number_text(float("nan"))
    ('1.23e4', '2.50e9', '-3.20e-7', '?', '?')
    >>> number_text(0.0019412, 5)
    '0.0019412'
    """
    value = _finite(x)
    if value is None:
        return UNKNOWN
    if value == 0:
        return "0"
    size = abs(value)
    if not 1e-3 <= size < 1e4:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    decimals = max(0, digits - 1 - math.floor(math.log10(size)))
    return f"{value:.{decimals}f}"


def number_texts(*values: object) -> list[str]:
    """`number_text` of each value, all with as many more digits as it takes for different
    numbers to read different (at most 9), so a band never reads collapsed or inverted.

    >>> number_texts(0.9, 0.912, 0.95)
    ['0.900', '0.912', '0.950']
    >>> number_texts(0.00194, 0.001941, 0.0019412)
    ['0.00194', '0.001941', '0.0019412']
    >>> number_texts(None, 5.0, 5.0)
    ['?', '5.00', '5.00']
    """
    finite = [_finite(v) for v in values]
    known = sorted({v for v in finite if v is not None})
    for digits in range(3, 10):
        texts = [number_text(v, digits) for v in known]
        if len(set(texts)) == len(texts):
            break
    return [number_text(v, digits) for v in finite]


def surprise(score: object) -> float | None:
    """-log10(1 - score): 1 for a score of 0.9, 3 for 0.999, at most `MAX_SURPRISE`; None when unknown.

    >>> surprise(0.999), surprise(0.0), surprise(1.0), surprise(None)
    (3.0, 0.0, 12.0, None)
    """
    value = _finite(score)
    if value is None:
        return None
    rest = 1.0 - min(max(value, 0.0), 1.0)
    return MAX_SURPRISE if rest <= 10**-MAX_SURPRISE else round(min(-math.log10(rest), MAX_SURPRISE), 9) + 0.0


def rarity_text(score: object) -> str:
    """How rare a score says its sample is: ``1 in N samples``, N = 1 / (1 - score) to 2 significant digits.

    >>> rarity_text(0.999), rarity_text(0.99992), rarity_text(0.5), rarity_text(1.0), rarity_text(None)
    ('1 in 1,000 samples', '1 in 12,000 samples', '1 in 2 samples', '1 in over 1e12 samples', '?')
    """
    level = surprise(score)
    if level is None:
        return UNKNOWN
    if level >= MAX_SURPRISE:
        return f"1 in over 1e{MAX_SURPRISE:.0f} samples"
    n = 10**level
    if n >= 1e6:
        return f"1 in {number_text(n, 2)} samples"
    rounded = float(f"{n:.2g}")
    return f"1 in {rounded:,.0f} samples"


def score_text(x: object) -> str:
    """A score to 6 decimals, cut: 0.9999996 is ``0.999999``, never ``1.000000``.

    >>> score_text(0.9999996), score_text(1.0), score_text(0.98), score_text(1e-9), score_text(None)
    ('0.999999', '1.000000', '0.980000', '0.000000', '?')
    """
    value = _finite(x)
    if value is None:
        return UNKNOWN
    return f"{Decimal(repr(value)).quantize(_SCORE_STEP, rounding=ROUND_DOWN):f}"
