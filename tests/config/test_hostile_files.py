"""Config files from an attacker or an accident: each refused at once with one line that says where.

The inputs come from a hostile-input campaign against `vigil run --config`: a binary file,
YAML aliases that recurse or multiply ("billion laughs"), nesting without end, values the
YAML constructor cannot build, a file too large to be a config. Each used to end in a
traceback or a hang. `parse_yaml` is checked with libyaml's events and with PyYAML's own
parser, since either may be the one installed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vigil.config import load_config
from vigil.config.load import MAX_BYTES
from vigil.config.safe_yaml import LIBYAML, MAX_DEPTH, MAX_VALUES, parse_yaml
from vigil.errors import ConfigError

PARSERS = [
    pytest.param(False, id="pyyaml"),
    pytest.param(True, id="libyaml", marks=pytest.mark.skipif(not LIBYAML, reason="PyYAML without libyaml")),
]


def billion_laughs(levels: int = 9) -> str:
    """Each level a list of nine aliases of the one before: 9**levels strings once expanded."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def refusal(text: str, libyaml: bool) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "vigil.yml", libyaml)
    message = str(caught.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith("vigil.yml: ")
    return message


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert len(message.splitlines()) == 1, message
    return message


# -- the file itself -----------------------------------------------------------------------


def test_a_binary_file_is_not_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yml"
    path.write_bytes(bytes([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]) * 100)  # a JPEG header, repeated
    message = load_error(path)
    assert f"{path}: not UTF-8 text (byte 0 is 0xff); give a YAML file saved as UTF-8" == message


def test_a_file_over_a_mebibyte_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text("# a comment\n" * (MAX_BYTES // 12 + 1))
    assert MAX_BYTES == 1024 * 1024 and path.stat().st_size > MAX_BYTES
    assert load_error(path) == f"{path}: larger than 1 MiB, too large for a config file; is it the right file?"


def test_a_file_of_just_under_a_mebibyte_is_read(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text("snapshot_every: 2m\n" + "#" * (MAX_BYTES - 20) + "\n")
    assert path.stat().st_size == MAX_BYTES
    assert load_config(path).snapshot_every == 120.0


@pytest.mark.parametrize("libyaml", PARSERS)
def test_a_control_character_is_named_with_its_line_and_column(libyaml: bool) -> None:
    message = refusal("server:\n  listen: 1\x00\n", libyaml)
    assert message == (
        "vigil.yml: line 2, column 12: the character #x0000 is not allowed in YAML; remove it (is this a binary file?)"
    )


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("a: &a [*a]\n", "line 1, column 8: the alias *a is inside the value &a names", id="recursive-alias"),
        pytest.param(billion_laughs(), "the file holds more than 50,000 values", id="billion-laughs"),
        pytest.param("a: " + "[" * 5000 + "]" * 5000 + "\n", "values nest more than 32 levels deep", id="deep-nesting"),
        pytest.param("a: 2001-13-45\n", "line 1, column 4: this value cannot be read as a timestamp (month must be", id="impossible-date"),
    ],
)
def test_each_hostile_file_is_one_config_error_line_within_a_second(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text(text)
    began = time.perf_counter()
    message = load_error(path)
    assert time.perf_counter() - began < 1.0
    assert message.startswith(f"{path}: ") and says in message


# -- aliases and nesting -------------------------------------------------------------------


@pytest.mark.parametrize("libyaml", PARSERS)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: &a [*a]\n", id="list-holds-itself"),
        pytest.param("a: &a {b: *a}\n", id="mapping-holds-itself"),
        pytest.param("a: &a [1, [2, {b: [*a]}]]\n", id="three-levels-down"),
        pytest.param("a: &a {<<: *a}\n", id="merge-key"),
    ],
)
def test_a_recursive_alias_is_refused(text: str, libyaml: bool) -> None:
    message = refusal(text, libyaml)
    assert "the alias *a is inside the value &a names, so it never ends; write the value out instead" in message


@pytest.mark.timeout(30)
@pytest.mark.parametrize("libyaml", PARSERS)
def test_billion_laughs_is_refused_within_a_second(libyaml: bool) -> None:
    began = time.perf_counter()
    message = refusal(billion_laughs(), libyaml)
    assert time.perf_counter() - began < 1.0
    assert f"holds more than {MAX_VALUES:,} values, each alias counted as the values it names" in message
    assert message.startswith("vigil.yml: line 5, column ")  # l5 is the first level over the bound


@pytest.mark.parametrize("libyaml", PARSERS)
def test_aliases_within_the_bound_are_expanded(libyaml: bool) -> None:
    data = parse_yaml(billion_laughs(levels=3), "vigil.yml", libyaml)
    assert len(data["l3"]) == 9 and data["l3"][0][0] == data["l1"] and len(data["l1"][8]) == 9
    shared = parse_yaml("base: &d {direction: above}\nq: [{detection: *d}, {detection: *d}]\n", "x", libyaml)
    assert shared["q"][1]["detection"] == {"direction": "above"}


@pytest.mark.parametrize("libyaml", PARSERS)
def test_many_plain_values_are_bounded_too(libyaml: bool) -> None:
    message = refusal("a: [" + ", ".join(["1"] * (MAX_VALUES + 1)) + "]\n", libyaml)
    assert f"the file holds more than {MAX_VALUES:,} values" in message


@pytest.mark.parametrize("libyaml", PARSERS)
def test_nesting_deeper_than_the_bound_is_refused(libyaml: bool) -> None:
    assert parse_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1), "x", libyaml) is not None
    message = refusal("a: " + "[" * 500 + "]" * 500 + "\n", libyaml)
    assert message == f"vigil.yml: line 1, column {MAX_DEPTH + 3}: values nest more than {MAX_DEPTH} levels deep; write the config flatter"


@pytest.mark.parametrize("libyaml", PARSERS)
def test_an_alias_that_nests_past_the_bound_is_refused(libyaml: bool) -> None:
    deep = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    message = refusal(f"a: &a {deep}\nb: [[*a]]\n", libyaml)
    assert message == f"vigil.yml: line 2, column 6: the alias *a nests values more than {MAX_DEPTH} levels deep; write the config flatter"


# -- values the YAML constructor cannot build ------------------------------------------------


@pytest.mark.parametrize("libyaml", PARSERS)
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("a: 2001-13-45\n", "as a timestamp (month must be in 1..12);", id="impossible-date"),
        pytest.param(
            "a: " + "1" * 5000 + "\n", "as an int (Exceeds the limit (4300 digits) for integer string conversion", id="huge-int"
        ),
        pytest.param("a: !!int abc\n", "as an int (invalid literal for int()", id="tagged-int"),
        pytest.param("a: !!bool maybe\n", "as a bool;", id="tagged-bool"),
        pytest.param("a: !!timestamp never\n", "as a timestamp;", id="tagged-timestamp"),
    ],
)
def test_a_value_that_cannot_be_built_says_where_and_to_quote_it(text: str, reason: str, libyaml: bool) -> None:
    message = refusal(text, libyaml)
    assert message.startswith("vigil.yml: line 1, column 4: this value cannot be read ")
    assert reason in message and message.endswith("; put it in quotes if it is text")


@pytest.mark.parametrize("libyaml", PARSERS)
def test_a_value_quoted_in_the_reason_has_no_url_password(libyaml: bool) -> None:
    message = refusal("prometheus: {url: !!int '0xhttp://vigil:hunter2@prom:9090'}\n", libyaml)
    assert "hunter2" not in message and "with base 16: 'http://vigil:***@prom:9090')" in message


@pytest.mark.parametrize("libyaml", PARSERS)
@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("a: !!python/object/apply:os.system [echo hi]\n", "could not determine a constructor", id="python-tag"),
        pytest.param("a: *nowhere\n", "found undefined alias 'nowhere'", id="undefined-alias"),
        pytest.param("a: &x 1\nb: &x 2\n", "found duplicate anchor 'x'", id="duplicate-anchor"),
        pytest.param("a: 1\n---\nb: 2\n", "expected a single document in the stream, but found another document", id="two-documents"),
    ],
)
def test_yaml_the_safe_loader_refuses_is_one_line(text: str, says: str, libyaml: bool) -> None:
    message = refusal(text, libyaml)
    assert message.startswith("vigil.yml: not valid YAML at line ")
    assert says in message
