"""`vigil bench nab` on a tiny corpus made in tmp_path: layout, printed scores, BENCHMARKS.md, bad input."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vigil.bench.nab_corpus import load_corpus, read_scores
from vigil.bench.nab_run import bench_names
from vigil.bench.nab_scorer import prepare, score_corpus
from vigil.cli import app

runner = CliRunner()

# category/file -> (points, spike at, window first and last index)
FILES = {"catA/up.csv": (700, 500, (490, 520)), "catB/down.csv": (600, 400, (390, 420))}


def stamp(i: int) -> str:
    return str(np.datetime64("2015-03-01T00:00:00") + np.timedelta64(300 * i, "s")).replace("T", " ")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "nab"
    windows = {}
    rng = np.random.default_rng(3)
    for name, (n, spike, (a, b)) in FILES.items():
        x = np.round(20 + rng.normal(0, 1, n), 3)
        x[spike] += 30 if "up" in name else -30
        path = root / "data" / name
        path.parent.mkdir(parents=True)
        path.write_text("timestamp,value\n" + "".join(f"{stamp(i)},{v!r}\n" for i, v in enumerate(x.tolist())))
        windows[name] = [[stamp(a) + ".000000", stamp(b) + ".000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return root


def bench(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["bench", "nab", *args])
    return r.exit_code, r.stdout, r.stderr


def table_row(stdout: str, name: str) -> list[str]:
    """A row of the printed table, split on runs of spaces ("never / never / never" is one cell)."""
    [line] = [line for line in stdout.splitlines() if line.split()[:1] == [name]]
    return re.split(r"\s{2,}", line.strip())


def test_writes_nab_layout_and_prints_the_scores_of_those_files(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    code, stdout, _ = bench("--corpus", str(corpus), "--results-dir", str(out), "--detector", "seed-zscore",
                            "--detector", "default")
    assert code == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv")) == [
        "default/catA/default_up.csv", "default/catB/default_down.csv",
        "seed-zscore/catA/seed-zscore_up.csv", "seed-zscore/catB/seed-zscore_down.csv",
    ]
    written = out / "default" / "catA" / "default_up.csv"
    with written.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    data = (corpus / "data" / "catA" / "up.csv").read_text().splitlines()[1:]
    assert [f"{r['timestamp']},{r['value']}" for r in rows] == data  # the data file's own text
    assert [r["label"] for r in rows].count("1") == 31  # window 490..520

    files = load_corpus(corpus)
    prepared = [prepare(len(f), f.windows) for f in files]
    for name in ("default", "seed-zscore"):
        scores = [read_scores(out / name / f.category / f"{name}_{f.stem}", len(f)) for f in files]
        alerts = [read_scores_column(out / name / f.category / f"{name}_{f.stem}", "alert") for f in files]
        row = table_row(stdout, name)
        swept = [score_corpus(prepared, scores, p).normalised for p in ("standard", "reward_low_FP_rate",
                                                                         "reward_low_FN_rate")]
        shipped = [score_corpus(prepared, alerts, p, threshold=1.0).normalised
                   for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")]
        assert row[1:4] == [f"{v:.1f}" for v in swept]
        assert row[5:8] == [f"{v:.1f}" for v in shipped]


def read_scores_column(path: Path, column: str) -> np.ndarray:
    with path.open(newline="") as fh:
        return np.array([float(r[column]) for r in csv.DictReader(fh)])


def test_corpus_from_the_environment(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_NAB", str(corpus))
    code, stdout, _ = bench("--results-dir", str(tmp_path / "r"), "--detector", "ewma")
    assert code == 0
    assert table_row(stdout, "ewma")


def test_all_writes_a_benchmarks_section(corpus: Path, tmp_path: Path) -> None:
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    code, stdout, _ = bench("--corpus", str(corpus), "--results-dir", str(tmp_path / "r"), "--detector", "all",
                            "--benchmarks-md", str(md))
    assert code == 0
    text = md.read_text()
    assert "<!-- other:start -->\nkept\n<!-- other:end -->" in text
    section = text.split("<!-- nab:start -->", 1)[1].split("<!-- nab:end -->", 1)[0]
    assert "- machine: " in section and re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", section)
    assert f"- command: `vigil bench nab --corpus {corpus} --detector all --results-dir {tmp_path / 'r'}" in section
    for name in bench_names():
        assert f"\n| {name} | " in section
        assert table_row(stdout, name)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(bench_names())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--corpus", "{tmp}/nowhere"], r"--corpus \S+/nowhere: no such folder", id="missing-folder"),
        pytest.param(["--corpus", "{tmp}"], r"--corpus \S+ is not a NAB corpus: it needs data/ and labels/",
                     id="not-a-corpus"),
        pytest.param([], r"no NAB corpus given: pass --corpus DIR or set VIGIL_NAB", id="no-corpus"),
        pytest.param(["--corpus", "{corpus}", "--detector", "ewmaa"],
                     r"--detector is 'ewmaa'; write one of default, record, ewma, .*seed-iforest, or all", id="unknown-detector"),
        pytest.param(["--corpus", "{corpus}", "--results-dir", "{corpus}/labels/combined_windows.json/out"],
                     r"--results-dir \S+/out: cannot write there \(Not a directory\)", id="unwritable-results"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(corpus: Path, tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.format(tmp=tmp_path, corpus=corpus) for a in args]
    code, stdout, stderr = bench(*args, "--results-dir", str(tmp_path / "r")) if "--results-dir" not in args \
        else bench(*args)
    assert code == 2
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert re.fullmatch("error: " + message + r"[^\n]*\n", stderr), stderr
