"""Series keys: one canonical text per label set, and never the same text for two."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vigil.labels import series_key

# names and values with the characters that matter: quotes, commas, equals, braces, backslashes
_TEXT = st.text(alphabet='ab",={}\\\n ', max_size=6)
_LABELS = st.dictionaries(_TEXT, _TEXT, max_size=4)


@given(_LABELS, _LABELS)
def test_two_different_label_sets_never_share_a_key(a: dict[str, str], b: dict[str, str]) -> None:
    assert (series_key(a) == series_key(b)) == (a == b)


def test_a_value_holding_quote_comma_quote_does_not_shadow_another_series() -> None:
    """The case found by the hardening campaign: `",b="` inside a value."""
    one = {"__name__": "up", "a": 'x",b="y'}
    two = {"__name__": "up", "a": "x", "b": "y"}
    assert series_key(one) != series_key(two)
    assert series_key(one) == 'up{a="x\\",b=\\"y"}'


def test_plain_label_sets_keep_the_key_they_always_had() -> None:
    """Saved state, series ids and event ids of ordinary series are unchanged."""
    assert series_key({"__name__": "cpu", "instance": "web-1", "cpu": "0"}) == 'cpu{cpu="0",instance="web-1"}'
    assert series_key({"job": "a:b"}) == '{job="a:b"}'
