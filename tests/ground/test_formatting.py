"""The one way Vigil writes times and numbers: ISO times, JSON numbers, number and score text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.formatting import iso, iso_times, json_number, number_text, score_text


@pytest.mark.parametrize(
    ("x", "text"),
    [
        pytest.param(97.2, "97.2", id="two-digits-one-decimal"),
        pytest.param(90, "90.0", id="whole-number-keeps-a-decimal"),
        pytest.param(41.49, "41.5", id="rounded-to-3-significant"),
        pytest.param(5.123, "5.12", id="one-digit-two-decimals"),
        pytest.param(0.00194, "0.00194", id="small-in-fixed-notation"),
        pytest.param(1234.5, "1234.5", id="large-keeps-one-decimal"),
        pytest.param(-52.94, "-52.9", id="negative"),
        pytest.param(0.0, "0.0", id="zero"),
        pytest.param(2.5e9, "2.50e+09", id="very-large-exponent"),
        pytest.param(3.2e-7, "3.20e-07", id="very-small-exponent"),
        pytest.param(np.float32(97.2), "97.2", id="float32"),
        pytest.param(float("nan"), "?", id="nan-unknown"),
        pytest.param(math.inf, "?", id="inf-unknown"),
        pytest.param(None, "?", id="none-unknown"),
        pytest.param("97.2", "?", id="not-a-number-unknown"),
    ],
)
def test_number_text_has_three_significant_digits_and_a_decimal(x: object, text: str) -> None:
    assert number_text(x) == text


@pytest.mark.parametrize(
    ("x", "text"),
    [
        pytest.param(0.9999996, "0.999999", id="just-under-one-is-not-one"),
        pytest.param(1 - 1e-15, "0.999999", id="a-hair-under-one"),
        pytest.param(1.0, "1.000000", id="one"),
        pytest.param(0.29, "0.290000", id="no-binary-error-when-cutting"),
        pytest.param(0.5, "0.500000", id="half"),
        pytest.param(None, "?", id="unknown"),
    ],
)
def test_score_text_cuts_six_decimals_and_never_rounds_up(x: object, text: str) -> None:
    assert score_text(x) == text


def test_json_number_rounds_to_nine_decimals_and_drops_what_is_not_finite() -> None:
    assert json_number(0.9999996) == 0.9999996
    assert json_number(1 / 3) == 0.333333333
    assert json_number(np.float64(2.0)) == 2.0 and type(json_number(np.float64(2.0))) is float
    assert [json_number(v) for v in (math.nan, -math.inf, None, True)] == [None, None, None, None]


def test_times_are_to_the_second_with_milliseconds_only_when_needed() -> None:
    assert iso(1709341200.0) == "2024-03-02T01:00:00Z"
    assert iso(1709341200.25) == "2024-03-02T01:00:00.250Z"
    assert iso(1709341200.9996) == "2024-03-02T01:00:01Z", "rounded to the millisecond"
    assert [iso(v) for v in (None, math.nan, math.inf)] == [None, None, None]
    assert iso_times(np.array([1709341200.0, 1709341260.0])) == ["2024-03-02T01:00:00Z", "2024-03-02T01:01:00Z"]
    assert iso_times([1709341200.0, 1709341200.5]) == ["2024-03-02T01:00:00.000Z", "2024-03-02T01:00:00.500Z"]
    assert iso_times([]) == []
