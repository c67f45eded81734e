from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import DataError
from vigil.sources.csv import CsvSeries, read_csv

T0 = datetime(2024, 3, 1, tzinfo=UTC).timestamp()  # 1709251200


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read(tmp_path: Path, text: str, **kwargs: object) -> CsvSeries:
    return read_csv(write(tmp_path, text), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        pytest.param(
            "Date,Timestamp,CPU_Utilization\n2024-03-01,00:00:00,10\n2024-03-01,00:01:00,11\n",
            "Date + Timestamp (time of day)",
            id="seed-time-of-day",
        ),
        pytest.param(
            "Date,Timestamp,CPU_Utilization\n2024-03-01,00:00,10\n2024-03-01,0:01,11\n",
            "Date + Timestamp (time of day)",
            id="seed-time-of-day-short",
        ),
        pytest.param(
            "Date,Timestamp,CPU_Utilization\n2024-03-01,1709251200,10\n2024-03-01,1709251260,11\n",
            "Timestamp as epoch seconds",
            id="seed-epoch-seconds",
        ),
        pytest.param(
            "Date,Timestamp,CPU_Utilization\n2024-03-01,1709251200000,10\n2024-03-01,1709251260000,11\n",
            "Timestamp as epoch milliseconds",
            id="seed-epoch-milliseconds",
        ),
        pytest.param(
            "Date,Timestamp,CPU_Utilization\n2024-03-01 00:00:00,x,10\n2024-03-01 00:01:00,x,11\n",
            "Date as ISO-8601 datetimes",
            id="seed-full-datetime-in-date",
        ),
        pytest.param(
            "Date,Timestamp,CPU_Utilization\n2024-03-01,2024-03-01T00:00:00Z,10\n2024-03-01,2024-03-01T00:01:00Z,11\n",
            "Timestamp as ISO-8601 datetimes",
            id="seed-full-datetime-in-timestamp",
        ),
        pytest.param(
            "timestamp,value\n2024-03-01 00:00:00,10\n2024-03-01 00:01:00,11\n",
            "timestamp as ISO-8601 datetimes",
            id="plain-iso-space",
        ),
        pytest.param(
            "timestamp,value\n2024-03-01T01:00:00+01:00,10\n2024-03-01T00:01:00Z,11\n",
            "timestamp as ISO-8601 datetimes",
            id="plain-iso-offsets",
        ),
        pytest.param(
            "timestamp,value\n2024/03/01 00:00,10\n2024/03/01 00:01,11\n",
            "timestamp as ISO-8601 datetimes",
            id="plain-slashed-date",
        ),
        pytest.param(
            "timestamp,value\n1709251200,10\n1709251260,11\n",
            "timestamp as epoch seconds",
            id="plain-epoch",
        ),
        pytest.param(
            "timestamp,value\n1709251200.0,10\n1709251260.0,11\n",
            "timestamp as epoch seconds",
            id="plain-epoch-float",
        ),
        pytest.param(
            "\ufefftimestamp,value\r\n1709251200,10\r\n1709251260,11\r\n",
            "timestamp as epoch seconds",
            id="bom-and-crlf",
        ),
        pytest.param(
            'timestamp,value\n"1709251200","10"\n"1709251260","11"\n',
            "timestamp as epoch seconds",
            id="quoted",
        ),
    ],
)
def test_both_formats_and_seed_variants_give_the_same_series(
    tmp_path: Path, text: str, fmt: str
) -> None:
    s = read(tmp_path, text)
    assert s.t.tolist() == [T0, T0 + 60]
    assert s.values.tolist() == [10.0, 11.0]
    assert s.time_format == fmt
    assert s.t.dtype == np.float64 and s.values.dtype == np.float64


def test_seed_format_names_its_value_column(tmp_path: Path) -> None:
    s = read(tmp_path, "Date,Timestamp,CPU_Utilization\n2024-03-01,00:00:00,10\n")
    assert s.columns == ("CPU_Utilization",)
    assert s.values.shape == (1,)


def test_wrong_field_count_error_names_file_line_row_and_fix(tmp_path: Path) -> None:
    path = write(
        tmp_path, "timestamp,value\n1709251200,1\n1709251260,2\n1709251320,3,extra\n1709251380,4\n"
    )
    with pytest.raises(DataError) as info:
        read_csv(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 4" in message
    assert "3 fields, expected 2" in message
    assert "'1709251320,3,extra'" in message
    assert "--skip-bad-rows" in message


@pytest.mark.parametrize(
    ("row", "why"),
    [
        pytest.param("yesterday,3", "cannot read the time 'yesterday'", id="bad-time"),
        pytest.param(",3", "cannot read the time ''", id="empty-time"),
        pytest.param("1709251320,high", "cannot read value 'high' as a number", id="bad-value"),
    ],
)
def test_unreadable_row_error_names_its_line(tmp_path: Path, row: str, why: str) -> None:
    path = write(tmp_path, f"timestamp,value\n1709251200,1\n1709251260,2\n{row}\n")
    with pytest.raises(DataError, match=f"line 4: {why}"):
        read_csv(path)


def test_long_broken_row_is_shortened_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,value\n1709251200,1\n" + "x" * 500 + ",2,3\n")
    with pytest.raises(DataError) as info:
        read_csv(path)
    assert "x" * 70 + "..." in str(info.value)
    assert "x" * 100 not in str(info.value)


def test_skip_bad_rows_skips_and_counts_them_with_their_lines(tmp_path: Path) -> None:
    s = read(
        tmp_path,
        "timestamp,value\n1709251200,1\nbad,2\n1709251320,3,4\n\n1709251380,x\n1709251440,5\n",
        skip_bad_rows=True,
    )
    assert s.values.tolist() == [1.0, 5.0]
    assert [line for line, _ in s.skipped] == [3, 4, 6]
    assert "fields" in s.skipped[1][1]


def test_line_numbers_stay_right_after_a_quoted_line_break(tmp_path: Path) -> None:
    s = read(
        tmp_path,
        'timestamp,value,note\n1709251200,1,"two\nlines"\n1709251260,oops,a\n',
        value_columns=["value"],
        skip_bad_rows=True,
    )
    assert s.skipped == [(4, "cannot read value 'oops' as a number")]


@pytest.mark.parametrize("missing", ["", "NaN", "nan", "NA", "null"])
def test_empty_and_nan_values_are_kept_as_missing(tmp_path: Path, missing: str) -> None:
    s = read(tmp_path, f"timestamp,value\n1709251200,1\n1709251260,{missing}\n1709251320,3\n")
    assert len(s) == 3
    assert np.isnan(s.values[1])
    assert s.skipped == []


def test_rows_out_of_order_are_sorted_stably_and_counted(tmp_path: Path) -> None:
    s = read(tmp_path, "timestamp,value\n1709251320,3\n1709251200,1\n1709251260,2\n1709251380,4\n")
    assert s.t.tolist() == [T0, T0 + 60, T0 + 120, T0 + 180]
    assert s.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert s.out_of_order == 1


def test_duplicate_timestamps_keep_the_last_row(tmp_path: Path) -> None:
    s = read(
        tmp_path, "timestamp,value\n1709251200,1\n1709251260,2\n1709251260,20\n1709251200,10\n"
    )
    assert s.t.tolist() == [T0, T0 + 60]
    assert s.values.tolist() == [10.0, 20.0]
    assert s.duplicates == 2


def test_several_numeric_columns_is_an_error_listing_them(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,cpu,mem,host\n1709251200,1,2,web-1\n")
    with pytest.raises(DataError, match=r"several numeric columns \(cpu, mem\).*--value-column"):
        read_csv(path)


def test_non_numeric_columns_are_not_value_candidates(tmp_path: Path) -> None:
    s = read(tmp_path, "host,timestamp,value\nweb-1,1709251200,1\nweb-1,1709251260,\n")
    assert s.columns == ("value",)


def test_named_value_columns_make_a_multivariate_series(tmp_path: Path) -> None:
    s = read(
        tmp_path, "timestamp,cpu,mem\n1709251200,1,2\n1709251260,3,\n", value_columns=["mem", "cpu"]
    )
    assert s.columns == ("mem", "cpu")
    assert s.values.shape == (2, 2)
    assert s.values[0].tolist() == [2.0, 1.0]
    assert np.isnan(s.values[1, 0])


def test_unknown_value_column_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,cpu\n1709251200,1\n")
    with pytest.raises(DataError, match="no column 'disk'; its columns are timestamp, cpu"):
        read_csv(path, value_columns=["disk"])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param("\n\n", "is empty", id="blank-lines"),
        pytest.param("timestamp,value\n", "no data rows", id="header-only"),
        pytest.param("1709251200,1\n1709251260,2\n", "no header line", id="no-header"),
        pytest.param("when,value\n1709251200,1\n", "no time column", id="no-time-column"),
        pytest.param(
            "timestamp,host\n1709251200,web-1\n", "no numeric value column", id="no-value-column"
        ),
        pytest.param(
            "timestamp,value\nsoon,1\nlater,2\n",
            "cannot read the time of the first rows",
            id="no-time",
        ),
        pytest.param(
            "timestamp,value,value\n1709251200,1,2\n", "more than once", id="duplicate-header"
        ),
    ],
)
def test_unusable_files_raise_a_clear_error(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        read_csv(write(tmp_path, text))


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_csv(tmp_path / "nope.csv")


def test_non_utf8_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("timestamp,välue\n1709251200,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_csv(path)
