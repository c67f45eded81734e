"""Gates that keep a score under the threshold: each member's deviation, and the series' resolution.

The decision's gates (direction, minimum absolute and relative deviation;
`vigil.detection.decision`) hold for the sample against the band's expected value. In an
ensemble, each member also has its own expected value, and a member may score a sample
high for a deviation the gates refuse: a query that watches only drops, and a member that
saw a rise. `gate_members` keeps such a member's score under the threshold, so it neither
opens an event nor starts a hold. `gate_resolution` does the same for a sample within a few
steps of the series' resolution of its expected value.
"""

from __future__ import annotations

import numpy as np

from vigil.detection.settings import DecisionConfig
from vigil.state import FloatArray

__all__ = ["RESOLUTIONS", "gate_members", "gate_resolution"]

RESOLUTIONS = 5.0
"""A deviation of fewer steps of the series' resolution than this is not an incident."""


def gate_members(config: DecisionConfig, observed: FloatArray, expected: FloatArray, scores: FloatArray) -> FloatArray:
    """`scores` (members, rows, steps) kept under the threshold where `observed` (rows, steps)
    fails the gates against that member's `expected`; a member without an expected value passes."""
    c = config
    if c.direction == "both" and c.min_abs_deviation <= 0 and c.min_rel_deviation <= 0:
        return scores
    with np.errstate(invalid="ignore"):
        dev = observed[None] - expected
        fails = np.zeros(scores.shape, dtype=np.bool_)
        if c.direction == "above":
            fails |= ~(dev > 0)
        elif c.direction == "below":
            fails |= ~(dev < 0)
        if c.min_abs_deviation > 0:
            fails |= np.abs(dev) < c.min_abs_deviation
        if c.min_rel_deviation > 0:
            fails |= np.abs(dev) < c.min_rel_deviation * np.abs(expected)
        fails &= ~np.isnan(expected)
        under = np.nextafter(c.threshold, 0.0)
        return np.where(fails & (scores > under), under, scores)


def gate_resolution(
    threshold: float, observed: FloatArray, expected: FloatArray, resolution: FloatArray, score: FloatArray
) -> FloatArray:
    """`score` kept below `threshold` where `observed` is within `RESOLUTIONS` steps of the series'
    `resolution` of its `expected` value: a byte on a series of zeros is not an incident."""
    with np.errstate(invalid="ignore"):
        near = np.abs(observed - expected) < RESOLUTIONS * resolution
        under = np.nextafter(threshold, 0.0)
        return np.where(near & (score > under), under, score)
