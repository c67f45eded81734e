"""The series table's history: what the page draws, kept in 18 bytes a point."""

from __future__ import annotations

import numpy as np

from vigil.engine.series import SeriesTable

T0 = 1_700_000_000.0


def table_with(points: list[tuple[float, float, float, float, float, float]], history: int = 120) -> SeriesTable:
    table = SeriesTable("q", history)
    rows, _ = table.rows_for([{"__name__": "cpu"}], 10)
    for t, value, expected, lower, upper, score in points:
        values = {k: np.array([[x]]) for k, x in
                  zip(("value", "expected", "lower", "upper", "score"), (value, expected, lower, upper, score), strict=True)}
        table.record(rows, np.array([[t]]), values, np.array([[True]]))
    return table


def test_history_gives_back_times_to_the_millisecond_values_exactly_and_bands_to_their_width() -> None:
    rng = np.random.default_rng(0)
    points = []
    for i in range(200):
        expected = 1e6 * rng.uniform(0.5, 2)
        width = expected * rng.uniform(0.001, 0.5)
        points.append((T0 + 15.25 * i + 0.001, expected + rng.normal(0, width), expected,
                       expected - width, expected + 0.5 * width, 1 - 10 ** -rng.uniform(0, 8)))
    got = table_with(points).history(0)
    kept = points[-120:]  # the last history_points
    assert got["t"] == [round(p[0], 3) for p in kept]
    assert got["value"] == [float(np.float32(p[1])) for p in kept]
    for name, i in (("lower", 3), ("upper", 4)):
        err = np.abs(np.array(got[name]) - [p[i] for p in kept])
        assert np.all(err <= 0.004 * np.abs([p[i] - p[2] for p in kept]) + 1e-6 * np.abs([p[2] for p in kept]))
    rest, true = 1 - np.array(got["score"]), 1 - np.array([p[5] for p in kept])
    assert np.all(np.abs(rest - true) <= 0.004 * true + 1e-9)  # 0.99996 stays 0.99996; JSON keeps 9 decimals


def test_a_band_without_an_expected_value_is_kept_about_the_value_and_nan_stays_none() -> None:
    got = table_with([(T0, 50.0, np.nan, 40.0, 70.0, np.nan), (T0 + 1, 5.0, np.nan, np.nan, np.nan, 0.5)]).history(0)
    assert got["lower"] == [40.0, None] and got["upper"] == [70.0, None]
    assert got["expected"] == [None, None] and got["score"] == [None, 0.5]


def test_a_gap_longer_than_the_anchor_reaches_keeps_the_newest_points_at_their_times() -> None:
    day = 86400.0
    times = [T0, T0 + day, T0 + 30 * day, T0 + 60 * day, T0 + 60 * day + 0.5]
    got = table_with([(t, float(i), float(i), i - 1.0, i + 1.0, 0.1) for i, t in enumerate(times)]).history(0)
    assert got["t"] == times[2:]  # 49.7 days back from the newest at most
    assert got["value"] == [2.0, 3.0, 4.0]
    assert table_with([(t, 1.0, 1.0, 0.0, 2.0, 0.1) for t in times[:3]]).history(0)["t"] == times[:3]


def test_a_series_is_found_by_its_api_id_until_it_is_removed_and_its_row_reused() -> None:
    from vigil.labels import series_id, series_key

    table = SeriesTable("q", 10)
    labels = [{"__name__": "cpu", "instance": f"web-{i}"} for i in range(3)]
    rows, _ = table.rows_for(labels, 10)
    ids = [series_id("q", series_key(lab)) for lab in labels]
    assert [table.id_of(r) for r in rows.tolist()] == ids
    assert [table.row_of_id(i) for i in ids] == rows.tolist()
    assert table.labels[int(rows[1])] == labels[1]
    table.remove(rows[1:2])
    (again,), _ = table.rows_for([{"__name__": "cpu", "instance": "web-9"}], 10)
    assert again == rows[1] and table.row_of_id(ids[1]) is None  # the row is reused, the old id is gone
    assert table.labels[int(again)] == {"__name__": "cpu", "instance": "web-9"}
    assert table.row_of_id("not-an-id") is None and table.row_of_id("0" * 16) is None
