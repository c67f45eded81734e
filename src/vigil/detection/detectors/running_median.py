"""The median of a window that slides by one sample, kept from sample to sample.

A window of m samples (one row of a ring) keeps its two middle values: when the sample
that leaves and the one that comes are on the same side of them, the median stays; else
one pass around them finds the new ones (a window that slides by one moves its median at
most two places), and only when it moved further is the median selected in a copy. No
sorted copy of the window is kept: memory is the window and two numbers.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["running_median"]


@njit(cache=True, nogil=True)
def _select(a, m, k):  # type: ignore[no-untyped-def]
    """The k-th smallest (from 0) of `a[:m]`, put at `a[k]` with none larger before it and none smaller after."""
    lo, hi = 0, m - 1
    while hi - lo > 8:
        mid = (lo + hi) // 2
        x, y, z = a[lo], a[mid], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))  # the median of three
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:  # between j and i every value is the pivot
            return a[k]
    for q in range(lo + 1, hi + 1):  # a few values left: sort them
        v = a[q]
        p = q
        while p > lo and a[p - 1] > v:
            a[p] = a[p - 1]
            p -= 1
        a[p] = v
    return a[k]


@njit(cache=True, nogil=True)
def _middle(a, r, m, scratch):  # type: ignore[no-untyped-def]
    """The two middle values of `a[r, :m]` in order (the same one twice for an odd m), found
    in a copy in `scratch`: `a` is not reordered."""
    for q in range(m):
        scratch[q] = a[r, q]
    h = m // 2
    upper = _select(scratch, m, h)
    if m % 2:
        return upper, upper
    lower = scratch[0]
    for q in range(1, h):  # the largest of those before the h-th
        lower = max(lower, scratch[q])
    return lower, upper


@njit(cache=True, nogil=True)
def _rank(k, lt, le, pivot, below, below2, above, above2):  # type: ignore[no-untyped-def]
    """The k-th smallest value, known from one pass around `pivot`; NaN when it is further off."""
    if lt <= k < le:
        return pivot
    if k == lt - 1:
        return below
    if k == lt - 2:
        return below2
    if k == le:
        return above
    if k == le + 1:
        return above2
    return math.nan


@njit(cache=True, nogil=True)
def running_median(a, r, m, mid, at, gone, came, scratch):  # type: ignore[no-untyped-def]
    """The median of `a[r, :m]` just after `came` took the place of `gone` in it (`gone` NaN:
    the window grew). `mid[r, at : at + 2]` holds its two middle values before, then after: the
    median stays when both are on the same side of them; else one pass around them finds it,
    as a window that slides by one sample moves its median at most two places.

    (Rows are indexed, not sliced: a slice costs more than the pass.)"""
    lower, upper = mid[r, at], mid[r, at + 1]
    if (gone < lower and came < lower) or (gone > upper and came > upper):  # False where NaN
        return 0.5 * (np.float64(lower) + np.float64(upper))
    pivot = 0.5 * (np.float64(lower) + np.float64(upper))
    if math.isnan(pivot):  # nothing known yet
        lo, hi = _middle(a, r, m, scratch)
        mid[r, at], mid[r, at + 1] = lo, hi
        return 0.5 * (lo + hi)
    lt = 0
    le = 0
    below = below2 = -math.inf  # the two largest values under the pivot
    above = above2 = math.inf  # the two smallest over it
    for q in range(m):
        v = np.float64(a[r, q])
        lt += int(v < pivot)
        le += int(v <= pivot)
        under = v if v < pivot else -math.inf  # selects, not branches: the order of the values is random
        over = v if v > pivot else math.inf
        below2 = max(below2, min(below, under))
        below = max(below, under)
        above2 = min(above2, max(above, over))
        above = min(above, over)
    h = m // 2
    hi = _rank(h, lt, le, pivot, below, below2, above, above2)
    lo = hi if m % 2 else _rank(h - 1, lt, le, pivot, below, below2, above, above2)
    if math.isnan(lo) or math.isnan(hi):  # the window moved further: select
        lo, hi = _middle(a, r, m, scratch)
    mid[r, at], mid[r, at + 1] = lo, hi
    return 0.5 * (lo + hi)
