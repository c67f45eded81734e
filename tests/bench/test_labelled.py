"""Labelled corpora for the event rules: NAB's layout with or without index.json, CSV files with a label column."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from vigil.bench.labelled import half, load_labelled, read_labelled_csv
from vigil.bench.nab_corpus import FileIndex
from vigil.errors import DataError


def stamp(i: int, step: int = 300) -> str:
    return str(np.datetime64("2020-02-01T00:00:00") + np.timedelta64(step * i, "s")).replace("T", " ")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def nab_like(root: Path, index: bool) -> Path:
    """Two files, 5-minute steps; b.csv skips a step, so its windows need the timestamps."""
    times = {"cat/a.csv": [stamp(i) for i in range(40)], "cat/b.csv": [stamp(i) for i in range(30) if i != 12]}
    for name, ts in times.items():
        write(root / "data" / name, "timestamp,value\n" + "".join(f"{t},{i % 5}\n" for i, t in enumerate(ts)))
    windows = {"cat/b.csv": [[stamp(10) + ".000000", stamp(14) + ".000000"]], "cat/a.csv": []}
    write(root / "labels" / "combined_windows.json", json.dumps(windows))
    if index:
        entries = {"cat/a.csv": {"n": 40, "scored_from": 3, "interval_s": 300, "windows": [[30, 31]]},
                   "cat/b.csv": {"n": 29, "scored_from": 2, "interval_s": 300, "windows": [[10, 13]]}}
        write(root / "labels" / "index.json", json.dumps(entries))
    return root


def test_nab_layout_uses_index_json_when_there_is_one(tmp_path: Path) -> None:
    c = load_labelled(nab_like(tmp_path, index=True))
    assert [f.name for f in c.files] == ["cat/a.csv", "cat/b.csv"]  # sorted by name, not the label file's order
    assert c.index == [FileIndex(40, 3, 300.0, [(30, 31)]), FileIndex(29, 2, 300.0, [(10, 13)])]
    assert [f.windows for f in c.files] == [[(30, 31)], [(10, 13)]]
    assert c.layout == "NAB's layout with labels/index.json"


def test_nab_layout_without_index_json_derives_it(tmp_path: Path) -> None:
    c = load_labelled(nab_like(tmp_path, index=False))
    assert c.index == [FileIndex(40, 6, 300.0, []), FileIndex(29, 4, 300.0, [(10, 13)])]  # 15 % of 40 and of 29
    assert "derived" in c.layout


def test_index_derived_from_nab_equals_the_shipped_index(nab_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "nab"
    (root / "labels").mkdir(parents=True)
    (root / "data").symlink_to(nab_dir.resolve() / "data")
    shutil.copy(nab_dir / "labels" / "combined_windows.json", root / "labels")
    derived = load_labelled(root)
    shipped = json.loads((nab_dir / "labels" / "index.json").read_text())
    assert len(derived.files) == 58
    for f, ix in zip(derived.files, derived.index, strict=True):
        want = shipped[f.name]
        assert ix == FileIndex(want["n"], want["scored_from"], float(want["interval_s"]),
                               [tuple(w) for w in want["windows"]]), f.name


def test_label_files_made_from_cmd_give_its_index(cmd_dir: Path, tmp_path: Path) -> None:
    """cmd's windows are runs of labelled rows and its warm-up is 15 % or up to the first event: the same rules."""
    index = json.loads((cmd_dir / "labels" / "index.json").read_text())
    for name, entry in index.items():
        lines = (cmd_dir / "data" / name).read_text().splitlines()
        label = np.zeros(entry["n"], dtype=int)
        for a, b in entry["windows"]:
            label[a : b + 1] = 1
        body = "".join(f"{line},{flag}\n" for line, flag in zip(lines[1:], label.tolist(), strict=True))
        write(tmp_path / "own" / name, "timestamp,value,label\n" + body)
    c = load_labelled(tmp_path / "own")
    assert c.layout == "CSV files with a label column"
    assert [f.name for f in c.files] == sorted(index)
    for f, ix in zip(c.files, c.index, strict=True):
        want = index[f.name]
        assert ix == FileIndex(want["n"], want["scored_from"], float(want["interval_s"]),
                               [tuple(w) for w in want["windows"]]), f.name
    assert c.events == 299


def test_label_file_true_false_unsorted_and_repeated_rows(tmp_path: Path) -> None:
    rows = [(i, float(i), i in (5, 6, 7, 15)) for i in range(20)]
    text = [f"{stamp(i, 60)},{v},{str(flag).lower()}" for i, v, flag in rows]
    text[3], text[4] = text[4], text[3]  # out of order
    text.insert(9, f"{stamp(9, 60)},99,true")  # minute 9 twice: read_csv keeps the last row, labelled false
    path = write(tmp_path / "x.csv", "timestamp,value,label\n" + "\n".join(text) + "\n\n")
    f, ix = read_labelled_csv(path, "x.csv")
    assert f.values.tolist() == [float(i) for i in range(20)]
    assert ix == FileIndex(20, 3, 60.0, [(5, 7), (15, 15)])


def test_the_value_column_may_have_its_own_name(tmp_path: Path) -> None:
    body = "".join(f"2024-01-01,00:{i:02d}:00,{i},{int(i == 7)}\n" for i in range(10))
    f, ix = read_labelled_csv(write(tmp_path / "s.csv", "Date,Timestamp,CPU_Utilization,label\n" + body), "s.csv")
    assert f.values.tolist() == list(range(10)) and ix.windows == [(7, 7)] and ix.interval_s == 60.0
    with pytest.raises(DataError, match=r"no column named value among cpu, mem; name the value column 'value'"):
        read_labelled_csv(write(tmp_path / "t.csv", "timestamp,cpu,mem,label\n2024-01-01 00:00:00,1,2,0\n"), "t.csv")


def test_first_event_before_15_percent_moves_the_scored_start(tmp_path: Path) -> None:
    body = "".join(f"{stamp(i)},{i},{int(i in (2, 3))}\n" for i in range(100))
    _, ix = read_labelled_csv(write(tmp_path / "y.csv", "timestamp,value,label\n" + body), "y.csv")
    assert (ix.scored_from, ix.windows) == (2, [(2, 3)])


def test_epoch_times_and_gaps_in_values(tmp_path: Path) -> None:
    body = "".join(f"{1700000000 + 60 * i},{'' if i == 4 else i},0\n" for i in range(10))
    f, ix = read_labelled_csv(write(tmp_path / "z.csv", "timestamp,value,label\n" + body), "z.csv")
    assert np.isnan(f.values[4]) and ix.interval_s == 60.0 and ix.windows == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("timestamp,value,label\n2020-01-01 00:00:00,1,0\n2020-01-01 00:05:00,x,0\n",
                     r"\S+/bad\.csv, line 3: cannot read value 'x' as a number", id="bad-value"),
        pytest.param("timestamp,value,label\n2020-01-01 00:00:00,1,0\n2020-01-01 00:05:00,1\n",
                     r"\S+/bad\.csv, line 3: 2 fields, expected 3", id="short-row"),
        pytest.param("timestamp,value,label\n2020-01-01 00:00:00,1,0\nnot a time,1,0\n",
                     r"\S+/bad\.csv, line 3: cannot read the time 'not a time'.*", id="bad-time"),
        pytest.param("timestamp,value,label\n2020-01-01 00:00:00,1,0\n2020-01-01 00:05:00,1,yes\n",
                     r"\S+/bad\.csv, line 3: label 'yes' is not 1, 0, true or false", id="bad-label"),
        pytest.param("timestamp,value\n2020-01-01 00:00:00,1\n",
                     r"\S+/bad\.csv has no label column \(its columns: timestamp, value\); .*", id="no-label"),
        pytest.param("timestamp,value,label\n2020-01-01 00:00:00,1,0\n",
                     r"\S+/bad\.csv: 1 row; a labelled file needs at least two", id="one-row"),
    ],
)
def test_a_broken_file_is_one_line_naming_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "c" / "good.csv", "timestamp,value,label\n2020-01-01 00:00:00,1,0\n2020-01-01 00:05:00,2,1\n")
    write(tmp_path / "c" / "bad.csv", text)
    with pytest.raises(DataError) as err:
        load_labelled(tmp_path / "c")
    assert "\n" not in str(err.value)
    assert re.fullmatch(message, str(err.value)), str(err.value)


def test_a_folder_that_is_neither_layout(tmp_path: Path) -> None:
    write(tmp_path / "notes.txt", "nothing here")
    with pytest.raises(DataError, match=r"is neither a corpus in NAB's layout \(data/ and labels/combined_windows"):
        load_labelled(tmp_path)
    with pytest.raises(DataError, match="nowhere: no such folder"):
        load_labelled(tmp_path / "nowhere")


def test_an_index_that_does_not_fit_the_files(tmp_path: Path) -> None:
    root = nab_like(tmp_path, index=True)
    entries = json.loads((root / "labels" / "index.json").read_text())
    entries["cat/b.csv"]["n"] = 30
    (root / "labels" / "index.json").write_text(json.dumps(entries))
    with pytest.raises(DataError, match=r"index\.json: cat/b\.csv has n 30, but its data file has 29 rows"):
        load_labelled(root)
    del entries["cat/b.csv"]
    (root / "labels" / "index.json").write_text(json.dumps(entries))
    with pytest.raises(DataError, match=r"index\.json has no entry for cat/b\.csv"):
        load_labelled(root)


def test_halves_alternate_by_name_whatever_the_order_given() -> None:
    names = [f"d/f{i:02d}.csv" for i in range(7)]
    shuffled = [names[i] for i in (3, 0, 6, 1, 5, 2, 4)]
    assert sorted(shuffled[i] for i in half(shuffled, "odd")) == names[0::2]
    assert sorted(shuffled[i] for i in half(shuffled, "even")) == names[1::2]
    assert sorted(half(shuffled, "odd") + half(shuffled, "even")) == list(range(7))
