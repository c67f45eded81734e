"""`vigil bench events` on tiny corpora made in tmp_path: the printed table, the halves, BENCHMARKS.md, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vigil.bench.events import count_events, layout, oracle
from vigil.bench.labelled import half, load_labelled
from vigil.bench.nab_run import run_detector
from vigil.cli import app

runner = CliRunner()
HEADER = "timestamp,value,label\n"


def stamp(i: int) -> str:
    return str(np.datetime64("2021-05-01T00:00:00") + np.timedelta64(300 * i, "s")).replace("T", " ")


def series(seed: int, n: int, spikes: tuple[int, ...]) -> np.ndarray:
    x = np.round(20 + np.random.default_rng(seed).normal(0, 1, n), 3)
    x[list(spikes)] += 25
    return x


@pytest.fixture
def own(tmp_path: Path) -> Path:
    """Four files with a label column: spikes labelled, one unlabelled spike (a false alert), one file with none."""
    root = tmp_path / "own"
    specs = {"a.csv": ((500,), (500,)), "b.csv": ((450, 620), (450,)), "sub/c.csv": ((), ()), "d.csv": ((540,), (540,))}
    for k, (name, (spikes, labelled)) in enumerate(specs.items()):
        x = series(k, 700, spikes)
        lab = np.zeros(700, dtype=int)
        for s in labelled:
            lab[s : s + 3] = 1
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + "".join(f"{stamp(i)},{v!r},{f}\n" for i, (v, f) in enumerate(zip(x.tolist(), lab.tolist(), strict=True))))
    return root


def bench(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["bench", "events", *args])
    return r.exit_code, r.stdout, r.stderr


def rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    out = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 12 and re.fullmatch(r"(all|odd|even) \(\d+\)", cells[1]):
            out[(cells[0], cells[1].split()[0])] = cells
    return out


def test_prints_the_scores_of_the_alerts_and_the_oracle_for_all_files_and_each_half(own: Path) -> None:
    code, stdout, stderr = bench("--corpus", str(own))
    assert code == 0, stderr
    assert "4 files, 2,800 points, 3 events (CSV files with a label column)" in stderr
    table = rows(stdout)
    assert sorted(table) == [("default", "all"), ("default", "even"), ("default", "odd")]

    corpus = load_labelled(own)
    run = run_detector(corpus.files, "default")
    names = [f.name for f in corpus.files]
    assert names == ["a.csv", "b.csv", "d.csv", "sub/c.csv"]
    for part, idx in (("all", [0, 1, 2, 3]), ("odd", half(names, "odd")), ("even", half(names, "even"))):
        lay = layout([corpus.index[i] for i in idx])
        a = count_events(lay, [run.alerts[i] for i in idx])
        o = oracle(lay, [run.scores[i] for i in idx])
        assert table[("default", part)][1:] == [
            f"{part} ({len(idx)})", f"{a.caught}/{a.events}", str(a.false_alerts), f"{a.precision:.3f}",
            f"{a.recall:.3f}", f"{a.f1:.3f}", f"{a.per_day:.3f}", f"{o.f1:.3f}", f"{o.threshold:.8g}",
            f"{o.caught}/{o.events}", str(o.false_alerts),
        ]
    assert half(names, "odd") == [0, 2] and table[("default", "odd")][1] == "odd (2)"
    assert table[("default", "all")][2] == "3/3"  # each labelled spike alerts; b.csv's unlabelled one is false
    assert int(table[("default", "all")][3]) >= 1


def test_writes_one_section_per_corpus_with_machine_date_and_command(own: Path, tmp_path: Path) -> None:
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n<!-- nab:start -->\nkept\n<!-- nab:end -->\n")
    results = tmp_path / "results"
    code, stdout, _ = bench("--corpus", str(own), "--detector", "default", "--detector", "seed-ewma",
                            "--benchmarks-md", str(md), "--results-dir", str(results))
    assert code == 0
    text = md.read_text()
    assert "<!-- nab:start -->\nkept\n<!-- nab:end -->" in text
    section = text.split("<!-- events-own:start -->", 1)[1].split("<!-- events-own:end -->", 1)[0]
    assert "## Event scores on own (vigil bench events)" in section
    assert "- machine: " in section and re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", section)
    assert (f"- command: `vigil bench events --corpus {own} --detector default --detector seed-ewma "
            f"--results-dir {results} --benchmarks-md {md}`") in section
    for name, part in rows(stdout):
        assert f"\n| {name} | {part} (" in section
    assert "| oracle F1 | oracle threshold |" in section and "chosen with their labels" in section
    assert sorted(p.relative_to(results).as_posix() for p in results.rglob("*.csv")) == [
        f"{name}/{f}" for name in ("default", "seed-ewma")
        for f in (f"{name}_a.csv", f"{name}_b.csv", f"{name}_d.csv", f"sub/{name}_c.csv")
    ]


def test_a_nab_layout_corpus_needs_no_index(tmp_path: Path) -> None:
    root = tmp_path / "nabby"
    windows = {}
    for k, name in enumerate(("x/one.csv", "x/two.csv")):
        x = series(10 + k, 800, (600,))
        (root / "data" / "x").mkdir(parents=True, exist_ok=True)
        (root / "data" / name).write_text("timestamp,value\n" + "".join(f"{stamp(i)},{v!r}\n" for i, v in enumerate(x.tolist())))
        windows[name] = [[stamp(595) + ".000000", stamp(610) + ".000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    code, stdout, stderr = bench("--corpus", str(root))
    assert code == 0, stderr
    assert "index derived" in stderr
    assert rows(stdout)[("default", "all")][2] == "2/2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], r"no corpus given: pass --corpus DIR \(NAB's layout, or CSV files with a label column\)",
                     id="no-corpus"),
        pytest.param(["--corpus", "{tmp}/nowhere"], r"--corpus \S+/nowhere: no such folder", id="missing-folder"),
        pytest.param(["--corpus", "{tmp}/empty"], r"\S+/empty is neither a corpus in NAB's layout .*", id="neither"),
        pytest.param(["--corpus", "{own}", "--detector", "nope"],
                     r"--detector is 'nope'; write one of default, .*, or all", id="unknown-detector"),
        pytest.param(["--corpus", "{tmp}/broken"], r"\S+/broken/x\.csv, line 4: cannot read value 'oops' as a number",
                     id="broken-row"),
        pytest.param(["--corpus", "{own}", "--results-dir", "{own}/a.csv/out"],
                     r"--results-dir \S+/out: cannot write there \(Not a directory\)", id="unwritable-results"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(own: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.csv").write_text(HEADER + f"{stamp(0)},1,0\n{stamp(1)},2,0\n{stamp(2)},oops,1\n")
    code, stdout, stderr = bench(*(a.format(tmp=tmp_path, own=own) for a in args))
    assert code == 2
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert re.fullmatch("error: " + message + r"[^\n]*\n", stderr), stderr
