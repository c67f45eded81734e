"""The one way Vigil writes times and numbers: ISO times, JSON numbers, number and score text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.formatting import iso, iso_times, json_number, number_text, number_texts, rarity_text, score_text, surprise


@pytest.mark.parametrize(
    ("x", "text"),
    [
        pytest.param(97.2, "97.2", id="two-digits-one-decimal"),
        pytest.param(90, "90.0", id="whole-number-keeps-three-digits"),
        pytest.param(41.49, "41.5", id="rounded-to-3-significant"),
        pytest.param(0.912, "0.912", id="under-one-three-digits"),
        pytest.param(0.9, "0.900", id="under-one-keeps-three-digits"),
        pytest.param(5.123, "5.12", id="one-digit-two-decimals"),
        pytest.param(0.00194, "0.00194", id="small-in-fixed-notation"),
        pytest.param(1234.5, "1234", id="thousands-whole"),
        pytest.param(12345, "1.23e4", id="ten-thousands-exponent"),
        pytest.param(-52.94, "-52.9", id="negative"),
        pytest.param(0.0, "0", id="zero"),
        pytest.param(2.5e9, "2.50e9", id="very-large-exponent"),
        pytest.param(3.2e-7, "3.20e-7", id="very-small-exponent"),
        pytest.param(np.float32(97.2), "97.2", id="float32"),
        pytest.param(float("nan"), "?", id="nan-unknown"),
        pytest.param(math.inf, "?", id="inf-unknown"),
        pytest.param(None, "?", id="none-unknown"),
        pytest.param("97.2", "?", id="not-a-number-unknown"),
    ],
)
def test_number_text_has_three_significant_digits(x: object, text: str) -> None:
    assert number_text(x) == text


@pytest.mark.parametrize(
    ("values", "texts"),
    [
        pytest.param((0.9, 0.912, 0.95), ["0.900", "0.912", "0.950"], id="three-digits-suffice"),
        pytest.param((0.00194, 0.0019401, 0.00195), ["0.0019400", "0.0019401", "0.0019500"], id="widened"),
        pytest.param((12345.0, 12350.0, 12399.0), ["1.234e4", "1.235e4", "1.240e4"], id="large-widened"),
        pytest.param((-0.0001, 0.0, 0.0001), ["-1.00e-4", "0", "1.00e-4"], id="around-zero"),
        pytest.param((None, 5.0, 5.0), ["?", "5.00", "5.00"], id="equal-values-read-equal"),
    ],
)
def test_number_texts_never_print_different_values_alike_nor_inverted(values: tuple, texts: list[str]) -> None:
    assert number_texts(*values) == texts
    known = [float(t) for t in texts if t != "?"]
    assert known == sorted(known)


@pytest.mark.parametrize(
    ("score", "level", "text"),
    [
        pytest.param(0.999, 3.0, "1 in 1,000 samples", id="one-in-a-thousand"),
        pytest.param(0.99992, 4.09691001, "1 in 12,000 samples", id="two-significant-digits"),
        pytest.param(1 - 3e-8, 7.522878745, "1 in 3.3e7 samples", id="millions-exponent"),
        pytest.param(1.0, 12.0, "1 in over 1e12 samples", id="one-capped"),
        pytest.param(0.0, 0.0, "1 in 1 samples", id="zero"),
        pytest.param(None, None, "?", id="unknown"),
    ],
)
def test_surprise_and_rarity_read_a_score_near_one(score: float | None, level: float | None, text: str) -> None:
    assert surprise(score) == (None if level is None else pytest.approx(level))
    assert rarity_text(score) == text


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
