"""What people accepted on a series is kept per row that has some, and forgotten with the row."""

from __future__ import annotations

import math

import numpy as np

from vigil.detection import acceptance
from vigil.detection.acceptance import Acceptance

THRESHOLD = 0.99996
UP = Acceptance(above=3.0, above_level=13.0, above_slack=0.3)


def gated(state: acceptance.Accepted, rows: np.ndarray, observed: float) -> np.ndarray:
    n = len(rows)
    ones = np.ones((n, 1))
    return acceptance.gate(state, rows, ones * observed, ones * 10.0, ones * 9.0, ones * 11.0, ones * 0.99999, THRESHOLD)


def test_an_accepted_deviation_stays_below_the_threshold_on_its_row_only() -> None:
    state = acceptance.new_state(3)
    acceptance.put(state, 1, UP)
    score = gated(state, np.array([0, 1, 2]), 12.5)
    assert score[1, 0] < THRESHOLD and score[0, 0] == score[2, 0] == 0.99999
    assert gated(state, np.array([1]), 20.0)[0, 0] == 0.99999, "a clearly larger deviation still alerts"
    assert state["above_level"].tolist()[1] == 13.0 and math.isnan(state["above_level"][0])


def test_reset_and_shrink_forget_what_a_row_accepted() -> None:
    state = acceptance.new_state(3)
    acceptance.put(state, 1, UP)
    acceptance.put(state, 2, UP)
    state.reset(np.array([1]))
    state.resize(2)
    state.resize(3)
    assert np.isnan(state["above"]).all() and not state.rows
    assert gated(state, np.array([0, 1, 2]), 12.5)[:, 0].tolist() == [0.99999] * 3
    acceptance.put(state, 0, UP)
    acceptance.put(state, 0, None)
    assert not state.rows and not state.flag.any()
