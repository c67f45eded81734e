"""YAML read without trusting it: plain data only, with bounds on nesting and on aliases.

`parse_yaml` reads one document with PyYAML's safe constructor (no Python objects from
tags) and refuses, while composing and so before any value is built:

- a character YAML does not allow (NUL and the other controls of a binary file);
- values nested deeper than `MAX_DEPTH`;
- an alias inside the value its anchor names (``a: &a [*a]``), which never ends;
- more than `MAX_VALUES` values in the document, each alias counted as the values it
  names: aliases of aliases multiply ("billion laughs"). Each node's expanded count is
  kept as it is composed, so the check stops the reading at that many values, whatever
  the file holds.

A value the constructor cannot build (``2001-13-45``, an integer of 5,000 digits) and
text that is not YAML are errors too. Every error is one `ConfigError` line with the file,
the line and column, what is wrong and what to write. The events come from libyaml when
PyYAML has it (about five times faster), else from PyYAML's own parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import Event
from yaml.nodes import CollectionNode, MappingNode, Node
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from vigil.errors import ConfigError, redact_url

__all__ = ["LIBYAML", "MAX_DEPTH", "MAX_VALUES", "parse_yaml"]

MAX_DEPTH = 32
MAX_VALUES = 50_000
LIBYAML: bool = yaml.__with_libyaml__


class _Mark(Protocol):
    line: int  # from 0
    column: int


class _Refused(Exception):
    def __init__(self, problem: str, mark: _Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.mark = mark


class _Bounded(Composer, SafeConstructor, Resolver):
    """Composes and constructs within the bounds; a parser later in the MRO gives the events.

    Each composed node's size is kept as (values, levels) with its aliases expanded.
    """

    def __init__(self) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._values = 0  # in the document so far, aliases expanded
        self._open: set[str] = set()  # anchors of the nodes being composed
        self._size: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels)

    if TYPE_CHECKING:  # given by the parser

        def peek_event(self) -> Event: ...
        def dispose(self) -> None: ...

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event, parent, index)
        if self._depth >= MAX_DEPTH:
            raise _Refused(f"values nest more than {MAX_DEPTH} levels deep; write the config flatter", event.start_mark)
        self._count(1, event.start_mark)
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
        self._depth -= 1
        if node is not None:
            self._measure(node)
        return node

    def _alias(self, event: yaml.AliasEvent, parent: Node | None, index: int) -> Node | None:
        if event.anchor in self._open:
            raise _Refused(
                f"the alias *{event.anchor} is inside the value &{event.anchor} names, so it never ends; "
                "write the value out instead",
                event.start_mark,
            )
        node = super().compose_node(parent, index)  # an undefined alias is PyYAML's error
        if node is not None:
            values, levels = self._size[id(node)]
            if self._depth + levels > MAX_DEPTH:
                raise _Refused(
                    f"the alias *{event.anchor} nests values more than {MAX_DEPTH} levels deep; write the config flatter",
                    event.start_mark,
                )
            self._count(values, event.start_mark)
        return node

    def _count(self, values: int, mark: _Mark | None) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise _Refused(
                f"the file holds more than {MAX_VALUES:,} values, each alias counted as the values it names "
                "(aliases of aliases multiply); a config needs far fewer: alias less",
                mark,
            )

    def _measure(self, node: Node) -> None:
        children: list[Node] = []
        if isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, CollectionNode):
            children = list(node.value)
        sizes = [self._size[id(child)] for child in children]
        self._size[id(node)] = (1 + sum(v for v, _ in sizes), 1 + max((d for _, d in sizes), default=0))

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # a date such as 2001-13-45, an int too long to read
            reason = f" ({str(exc).partition(';')[0]})"
        except (KeyError, AttributeError, TypeError):  # PyYAML's own slips: !!bool maybe, !!timestamp nope
            reason = ""
        kind = node.tag.rpartition(":")[2]
        article = "an" if kind[:1] in ("a", "e", "i", "o", "u") else "a"
        raise _Refused(f"this value cannot be read as {article} {kind}{reason}; put it in quotes if it is text", node.start_mark)


class _PythonLoader(_Bounded, Reader, Scanner, Parser):
    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Bounded.__init__(self)


if LIBYAML:
    from yaml._yaml import CParser  # what yaml.cyaml.CSafeLoader parses with

    class _LibyamlLoader(_Bounded, CParser):
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            _Bounded.__init__(self)


def parse_yaml(text: str, where: str, libyaml: bool = LIBYAML) -> Any:
    """The data of the one YAML document in `text`; one-line ConfigError naming `where` if refused.

    `libyaml`: take the events from libyaml (the default when PyYAML has it). Text that
    is not YAML is read again with PyYAML's parser, so that the message, its line and
    column are the same whichever parser is installed.
    """
    bad = Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        raise ConfigError(
            f"{where}: {_place_in(text, bad.start())}: the character #x{ord(bad.group()):04x} is not allowed in YAML; "
            "remove it (is this a binary file?)"
        )
    if libyaml and LIBYAML:
        try:
            return _load(_LibyamlLoader(text), where)
        except yaml.YAMLError:
            pass
    try:
        return _load(_PythonLoader(text), where)
    except yaml.MarkedYAMLError as exc:
        at = f" at {_place(exc.problem_mark)}" if exc.problem_mark is not None else ""
        problem = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(redact_url(f"{where}: not valid YAML{at}: {problem}")) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(redact_url(f"{where}: not valid YAML: {' '.join(str(exc).split())}")) from exc


def _load(loader: _Bounded, where: str) -> Any:
    try:
        return loader.get_single_data()
    except _Refused as exc:  # the problem may quote the value, as in int()'s "invalid literal"
        raise ConfigError(redact_url(f"{where}: {_place(exc.mark)}: {exc.problem}")) from exc
    finally:
        loader.dispose()


def _place(mark: _Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"


def _place_in(text: str, index: int) -> str:
    before = text[:index]
    line = before.count("\n")
    column = index - before.rfind("\n")  # from 1: rfind is -1 on the first line
    return f"line {line + 1}, column {column}"
