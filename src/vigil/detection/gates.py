"""Gates on each member's contribution: a member's score counts only where its own deviation passes.

The decision's gates (direction, minimum absolute and relative deviation;
`vigil.detection.decision`) hold for the sample against the band's expected value. In an
ensemble, each member also has its own expected value, and a member may score a sample
high for a deviation the gates refuse: a query that watches only drops, and a member that
saw a rise. `gate_members` keeps such a member's score under the threshold, so it neither
opens an event nor starts a hold.
"""

from __future__ import annotations

import numpy as np

from vigil.detection.settings import DecisionConfig
from vigil.state import FloatArray

__all__ = ["gate_members"]


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
