"""The house by layer: folders in the order data flows, no import upward, no circle, small modules.

The layer order is written here, lowest first. A module may import from its own layer and
the layers below it, never from one above; no module may reach itself through imports
(lazy imports inside functions and ``TYPE_CHECKING`` blocks count). Every module stays
under `MAX_LINES` lines and opens with a docstring whose first line says its job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vigil"
MAX_LINES = 400

# Lowest first. A name is a module or a package of src/vigil (its folder, with everything in it).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("ground", ("vigil", "vigil.errors", "vigil.labels", "vigil.formatting", "vigil.matchers", "vigil.snapshot", "vigil.state",
                "vigil.sharding", "vigil.metrics")),
    ("sources", ("vigil.sources",)),
    ("detection", ("vigil.detection",)),
    ("config", ("vigil.config",)),
    ("engine", ("vigil.engine",)),
    ("outputs", ("vigil.outputs",)),
    ("http", ("vigil.http",)),
    ("service", ("vigil.service",)),
    ("backtest", ("vigil.backtest",)),
    ("bench", ("vigil.bench",)),
    ("tools", ("vigil.tools",)),
    ("cli", ("vigil.cli",)),
    ("entry", ("vigil.__main__",)),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> int:
    """The index of the layer that holds module `name` (the longest matching prefix wins)."""
    best, best_len = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact = prefix == "vigil"
            if (name == prefix or (not exact and name.startswith(prefix + "."))) and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    if best < 0:
        raise AssertionError(f"module {name} is in no layer; add its folder to LAYERS in {__file__}")
    return best


def imports(path: Path, known: set[str]) -> set[str]:
    """The vigil modules `path` imports (``from vigil.a import b`` is vigil.a.b when that is a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name.split(".")[0] == "vigil"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vigil":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, known) & known - {name} for name, path in found.items()}


def test_every_module_is_in_a_layer() -> None:
    for name in modules():
        layer_of(name)


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})"
        for name, deps in graph().items() for dep in sorted(deps) if layer_of(dep) > layer_of(name)
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    g = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(g[node]):
            if state.get(dep) == 1:
                circles.append([*path[path.index(dep):], dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("name", sorted(modules()))
def test_each_module_is_small_and_says_its_job(name: str) -> None:
    path = modules()[name]
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path} has {lines} lines; split the second idea in it into a module of its own"
    doc = ast.get_docstring(ast.parse(text))
    assert doc and doc.strip().splitlines()[0].strip(), f"{path} has no docstring saying what it does"


def test_the_layer_checks_catch_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    """The checks themselves: a made-up upward import and circle are found."""
    assert layer_of("vigil.sources.csv") < layer_of("vigil.detection.pipeline") < layer_of("vigil.cli.root")
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from vigil.cli.root import app\nimport vigil.labels\n")
    b.write_text("def f():\n    from vigil.sources import csv\n")
    known = {"vigil.cli.root", "vigil.labels", "vigil.sources", "vigil.sources.csv"}
    assert imports(a, known) == {"vigil.cli.root", "vigil.labels"}
    assert imports(b, known) == {"vigil.sources.csv"}
