"""The streaming Isolation Forest detector: scoring, state, determinism and bad input."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from vigil.detection.detectors import DETECTORS, build_detector, iforest
from vigil.detection.detectors.iforest import IForest
from vigil.errors import ConfigError
from vigil.snapshot import from_blob
from vigil.state import RowState

# Small windows and frequent refits keep each test to a few dozen fits (~60 ms each).
SMALL: dict[str, Any] = {"window": 50, "refit_every": 100, "n_estimators": 25}


def calm(n: int, seed: int = 0, rows: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50.0 + rng.normal(0.0, 1.0, (rows, n))


def run(d: IForest, x: np.ndarray, st: RowState | None = None) -> np.ndarray:
    st = d.new_state(x.shape[0]) if st is None else st
    return d.update(st, np.arange(x.shape[0]), x).raw


def run_in_pieces(d: IForest, x: np.ndarray, cuts: list[int]) -> np.ndarray:
    st = d.new_state(x.shape[0])
    bounds = [0, *cuts, x.shape[1]]
    return np.concatenate([run(d, x[:, a:b], st) for a, b in pairwise(bounds)], axis=1)


def test_obvious_outlier_after_calm_stretch_is_flagged_and_calm_points_mostly_not() -> None:
    x = calm(600)
    x[0, 500] = 58.0
    raw = run(IForest(**SMALL), x)[0]
    assert raw[500] >= 1
    scored = raw[~np.isnan(raw)]
    assert (scored >= 0).all()
    assert np.mean(raw[100:500] < 1) > 0.8


def test_flagged_share_of_calm_data_stays_near_contamination_across_refits() -> None:
    # The cut-off is a quantile over all recent vectors, not only the accepted ones, so
    # the forest does not tighten at each refit.
    d = IForest(window=50, refit_every=100, n_estimators=25, contamination=0.1)
    raw = run(d, calm(3000))[0]
    late = raw[1500:]
    assert 0.03 < np.mean(late >= 1) < 0.2


def test_no_opinion_before_min_samples_feature_vectors() -> None:
    d = IForest(window=50, min_samples=30, lags=4, refit_every=1000, n_estimators=10)
    raw = run(d, calm(200))[0]
    first = 4 + 30  # max(lags, 2) values fill history, then 30 feature vectors
    assert np.isnan(raw[:first]).all()
    assert not np.isnan(raw[first:]).any()


def test_expected_and_bounds_are_nan_because_iforest_has_no_band() -> None:
    d = IForest(**SMALL)
    s = d.update(d.new_state(1), np.array([0]), calm(200))
    assert np.isnan(s.expected).all() and np.isnan(s.lower).all() and np.isnan(s.upper).all()
    assert s.raw.shape == (1, 200)


def test_changing_values_after_a_sample_never_changes_its_score() -> None:
    x = calm(400)
    base = run(IForest(**SMALL), x)[0]
    for i in (120, 255, 330):
        y = x.copy()
        y[0, i + 1 :] = np.random.default_rng(i).normal(80.0, 9.0, 400 - i - 1)
        changed = run(IForest(**SMALL), y)[0]
        np.testing.assert_array_equal(changed[: i + 1], base[: i + 1])


def test_same_seed_gives_identical_scores_and_another_seed_differs() -> None:
    x = calm(300)
    a = run(IForest(seed=7, **SMALL), x)
    b = run(IForest(seed=7, **SMALL), x)
    c = run(IForest(seed=8, **SMALL), x)
    np.testing.assert_array_equal(a, b)
    ok = ~np.isnan(a)
    assert not np.array_equal(a[ok], c[ok])


def test_updating_ten_rows_together_equals_updating_each_alone() -> None:
    x = calm(260, seed=3, rows=10) * np.linspace(0.5, 5.0, 10)[:, None]
    d = IForest(**SMALL)
    together = run(d, x)
    for i in range(10):
        alone = run(d, x[i : i + 1])
        np.testing.assert_array_equal(together[i], alone[0])


def test_rows_can_be_updated_in_any_order_and_subset_of_a_larger_state() -> None:
    x = calm(160, seed=4, rows=3)
    d = IForest(**SMALL)
    st = d.new_state(5)
    out = d.update(st, np.array([4, 0, 2]), x).raw
    for i in range(3):
        np.testing.assert_array_equal(out[i], run(d, x[i : i + 1])[0])
    assert st.objects[1] is None and st.objects[3] is None


def test_cutting_the_stream_into_blocks_gives_the_same_scores_as_one_block() -> None:
    x = calm(330, seed=5, rows=2)
    d = IForest(**SMALL)
    whole = run(d, x)
    np.testing.assert_array_equal(run_in_pieces(d, x, [1, 2, 3, 57, 99, 100, 101, 250]), whole)
    one_at_a_time = run_in_pieces(d, x[:, :160], list(range(1, 160)))
    np.testing.assert_array_equal(one_at_a_time, whole[:, :160])


@pytest.mark.parametrize("cut", [30, 104, 151, 200])
def test_snapshot_round_trip_continues_exactly_as_never_stopping(cut: int) -> None:
    x = calm(320, seed=6, rows=2)
    x[1, 250] = 70.0
    d = IForest(**SMALL)
    whole = run(d, x)
    st = d.new_state(2)
    first = run(d, x[:, :cut], st)
    restored = d.load_state(from_blob(st.to_bytes()))
    restored.check_fields(d.fields(), "iforest")
    second = run(d, x[:, cut:], restored)
    np.testing.assert_array_equal(np.concatenate([first, second], axis=1), whole)


def test_nan_and_inf_get_no_opinion_and_leave_the_state_as_if_they_were_absent() -> None:
    x = calm(300)
    holes = np.array([3, 40, 41, 42, 150, 151, 230])
    y = x.copy()
    y[0, holes] = [np.nan, np.inf, -np.inf, np.nan, np.nan, np.inf, np.nan]
    d = IForest(**SMALL)
    with_holes = run(d, y)[0]
    assert np.isnan(with_holes[holes]).all()
    keep = np.setdiff1d(np.arange(300), holes)
    np.testing.assert_array_equal(with_holes[keep], run(d, x[:, keep])[0])


def test_multivariate_nan_in_one_dimension_skips_the_whole_sample() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(0.0, 1.0, (1, 200, 3))
    y = x.copy()
    y[0, [60, 130], [1, 2]] = [np.nan, np.inf]
    d = IForest(features="raw", dims=3, **SMALL)
    with_holes = run(d, y)[0]
    assert np.isnan(with_holes[[60, 130]]).all()
    keep = np.setdiff1d(np.arange(200), [60, 130])
    np.testing.assert_array_equal(with_holes[keep], run(d, x[:, keep])[0])


def test_multivariate_flags_a_point_normal_in_each_dimension_but_not_jointly() -> None:
    rng = np.random.default_rng(11)
    n = 400
    cpu = rng.normal(0.0, 1.0, n)
    mem = cpu + rng.normal(0.0, 0.05, n)  # memory follows CPU closely
    x = np.stack([cpu, mem], axis=-1)[None]
    x[0, 350] = [1.5, -1.5]  # each value is ordinary on its own; together they are not
    d = IForest(features="raw", dims=2, window=200, refit_every=1000, n_estimators=100)
    raw = run(d, x)[0]
    assert raw[350] >= 1
    assert abs(x[0, 350, 0]) < 2 and abs(x[0, 350, 1]) < 2
    calm_share = np.mean(np.delete(raw[200:], 150) < 1)
    assert calm_share > 0.8


def test_raw_is_at_least_one_exactly_when_sklearn_predicts_an_outlier() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(0.0, 1.0, (1, 1300, 2))
    d = IForest(features="raw", dims=2, window=100, refit_every=1000, n_estimators=30)
    st = d.new_state(1)
    run(d, x[:, :100], st)  # first fit after 100 vectors
    fitted = st.objects[0]
    forest = fitted.forest
    block = x[:, 100:1100]
    raw = run(d, block, st)[0]
    X = block[0]
    for walk in (False, True):  # Tree.apply per tree, or all trees at once in NumPy
        np.testing.assert_array_equal(fitted.score_fast(X, walk), forest.score_samples(X))
    np.testing.assert_array_equal(raw >= 1, forest.predict(X) == -1)
    np.testing.assert_allclose(raw, forest.score_samples(X) / forest.offset_)
    assert 0.05 < np.mean(raw >= 1) < 0.2
    assert st.objects[0] is not fitted  # refitted after 1000 more vectors


def test_fast_scoring_gives_the_same_raw_as_sklearn_score_samples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = calm(260, seed=16)
    x[0, 200] = 62.0
    monkeypatch.setattr(iforest, "_fast_scoring_ok", True)
    fast = run(IForest(**SMALL), x)
    monkeypatch.setattr(iforest, "_fast_scoring_ok", False)
    np.testing.assert_array_equal(run(IForest(**SMALL), x), fast)
    assert fast[0, 200] >= 1


def test_flagged_points_stay_out_of_training_until_they_are_over_half_the_window() -> None:
    rng = np.random.default_rng(13)
    base = rng.normal(0.0, 1.0, 500)
    d = IForest(features="raw", dims=1, window=100, refit_every=100, n_estimators=25)
    # a single spike is kept out of the training window
    x = base.copy()
    x[250] = 12.0
    st = d.new_state(1)
    raw = run(d, x[None], st)[0]
    assert raw[250] >= 1
    assert 12.0 not in st["train"][0]
    assert st["n_train"][0] < st["n_feats"][0]
    # a level shift is flagged at first, then learned once it fills half the window
    y = np.concatenate([base, rng.normal(10.0, 1.0, 400)])
    st = d.new_state(1)
    raw = run(d, y[None], st)[0]
    assert np.mean(raw[500:540] >= 1) > 0.9
    assert (st["train"][0, -50:] > 5).all()
    assert np.mean(raw[800:] >= 1) < 0.3


def test_univariate_features_do_not_care_about_level_or_scale() -> None:
    x = calm(300, seed=14)
    a = run(IForest(**SMALL), x)
    b = run(IForest(**SMALL), 1000.0 + 4.0 * (x - 50.0))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_many_rows_with_one_step_per_update_match_one_block_per_row() -> None:
    x = calm(120, seed=15, rows=20)
    d = IForest(window=20, refit_every=50, n_estimators=10)
    whole = run(d, x)
    st = d.new_state(20)
    steps = np.concatenate([run(d, x[:, j : j + 1], st) for j in range(120)], axis=1)
    np.testing.assert_array_equal(steps, whole)


def test_wrong_input_shape_raises_value_error() -> None:
    d = IForest(features="raw", dims=3)
    with pytest.raises(ValueError, match="steps, 3"):
        d.update(d.new_state(1), np.array([0]), np.zeros((1, 5, 2)))
    with pytest.raises(ValueError, match=r"\(len\(rows\), steps\)"):
        IForest().update(IForest().new_state(1), np.array([0]), np.zeros((1, 5, 3)))


def test_registry_builds_iforest_and_params_rebuild_an_equal_detector() -> None:
    assert DETECTORS["iforest"] is IForest
    d = build_detector("iforest", {"window": 60, "contamination": 0.05, "seed": 3})
    assert isinstance(d, IForest)
    assert d.params()["min_samples"] == 60
    assert IForest(**d.params()).params() == d.params()
    assert d.fields() == IForest(**d.params()).fields()


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"window": 1}, "window"),
        ({"window": 10.5}, "window"),
        ({"window": "big"}, "window"),
        ({"contamination": 0.0}, "contamination"),
        ({"contamination": 0.7}, "contamination"),
        ({"contamination": "auto"}, "contamination"),
        ({"n_estimators": 0}, "n_estimators"),
        ({"refit_every": 0}, "refit_every"),
        ({"min_samples": 1}, "min_samples"),
        ({"window": 50, "min_samples": 51}, "min_samples"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"features": "lagged"}, "features"),
        ({"lags": 0}, "lags"),
        ({"window": 10, "lags": 11}, "lags"),
        ({"features": "raw"}, "dims"),
        ({"features": "raw", "dims": 0}, "dims"),
        ({"features": "window", "dims": 3}, "dims"),
        ({"n_estimators": True}, "n_estimators"),
    ],
)
def test_bad_parameters_raise_config_error_naming_the_key(params: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"iforest: {key} is "):
        IForest(**params)
