"""A fitted forest saved as arrays: restored, it scores as scikit-learn does, without scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vigil.detection.detectors import iforest
from vigil.detection.detectors.forest import Fitted, ForestCodec
from vigil.detection.detectors.iforest import IForest
from vigil.detection.pipeline import build_pipeline
from vigil.errors import StateError
from vigil.snapshot import from_blob, to_blob

SMALL: dict[str, Any] = {"window": 50, "refit_every": 100, "n_estimators": 25}


def fitted_forest(dims: int = 2, seed: int = 1) -> tuple[Fitted, np.ndarray]:
    """A forest fitted on 100 vectors of `dims` values, and 500 more vectors to score."""
    x = np.random.default_rng(seed).normal(0.0, 1.0, (1, 600, dims))
    d = IForest(features="raw", dims=dims, window=100, refit_every=1000, n_estimators=30)
    st = d.new_state(1)
    d.update(st, np.array([0]), x[:, :100])
    fitted = st.objects[0]
    assert isinstance(fitted, Fitted) and fitted.forest is not None
    return fitted, x[0, 100:]


def test_a_restored_forest_scores_bit_for_bit_as_sklearn_with_no_sklearn_object() -> None:
    fitted, X = fitted_forest()
    codec = ForestCodec(2)
    restored = codec.decode(from_blob(to_blob(codec.encode(fitted))))
    assert restored.forest is None and restored.offset == fitted.offset
    for n in (1, 32, 33, 500):  # below and above the size from which a live forest calls Tree.apply
        for walk in (None, False, True):
            np.testing.assert_array_equal(restored.score_fast(X[:n], walk), fitted.forest.score_samples(X[:n]))
        np.testing.assert_array_equal(restored.score(X[:n], fast=None), fitted.forest.score_samples(X[:n]))


@pytest.mark.parametrize("checked", [None, False, True])
def test_a_restored_state_continues_as_never_stopping_whatever_the_process_knows_of_fast_scoring(
    monkeypatch: pytest.MonkeyPatch, checked: bool | None
) -> None:
    x = 50.0 + np.random.default_rng(2).normal(0.0, 1.0, (2, 400))
    x[1, 300] = 70.0
    d = IForest(**SMALL)
    whole = d.update(d.new_state(2), np.arange(2), x).raw
    st = d.new_state(2)
    first = d.update(st, np.arange(2), x[:, :180]).raw
    monkeypatch.setattr(iforest, "_fast_scoring_ok", checked)  # None: a fresh process, nothing fitted yet
    restored = d.load_state(from_blob(st.to_bytes()))
    assert all(f.forest is None for f in restored.objects)
    second = d.update(restored, np.arange(2), x[:, 180:]).raw
    np.testing.assert_array_equal(np.concatenate([first, second], axis=1), whole)


def test_a_pipeline_with_iforest_restores_and_continues_exactly() -> None:
    x = 50.0 + np.random.default_rng(3).normal(0.0, 1.0, (2, 300))
    x[0, 250] = 65.0
    t = np.broadcast_to(np.arange(300.0), x.shape)
    whole = build_pipeline("iforest", {"iforest": SMALL})
    whole.resize(2)
    a = whole.update(np.arange(2), t, x)
    first = build_pipeline("iforest", {"iforest": SMALL})
    first.resize(2)
    first.update(np.arange(2), t[:, :170], x[:, :170])
    second = build_pipeline("iforest", {"iforest": SMALL})
    second.restore(first.snapshot())
    b = second.update(np.arange(2), t[:, 170:], x[:, 170:])
    np.testing.assert_array_equal(b.score, a.score[:, 170:])
    assert np.isfinite(b.score).any()


def saved(fitted: Fitted) -> dict[str, Any]:
    payload = ForestCodec(2).encode(fitted)
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in payload.items()}


def inner(p: dict[str, Any]) -> np.ndarray:
    """The nodes that are not leaves, in order (the first ones are in the first tree)."""
    return np.flatnonzero(p["left"] != np.arange(p["left"].size))


def loop_back(p: dict[str, Any]) -> None:
    p["left"][inner(p)[1]] = inner(p)[0]  # back up the tree: a walk could go round for ever


def into_next_tree(p: dict[str, Any]) -> None:
    p["left"][inner(p)[0]] = int(p["sizes"][0])


def self_loop(p: dict[str, Any]) -> None:
    p["right"][inner(p)[0]] = inner(p)[0]


def beyond_features(p: dict[str, Any]) -> None:
    p["feature"][0] = 2


def sizes_off(p: dict[str, Any]) -> None:
    p["sizes"][0] += 1


def float_children(p: dict[str, Any]) -> None:
    p["left"] = p["left"].astype(np.float64)


def float32_thresholds(p: dict[str, Any]) -> None:
    p["threshold"] = p["threshold"].astype(np.float32)


def no_denominator(p: dict[str, Any]) -> None:
    p["denominator"] = 0.0


def nan_offset(p: dict[str, Any]) -> None:
    p["offset"] = float("nan")


def missing_value(p: dict[str, Any]) -> None:
    del p["value"]


def short_value(p: dict[str, Any]) -> None:
    p["value"] = p["value"][:-1]


@pytest.mark.parametrize(
    "tamper",
    [loop_back, into_next_tree, self_loop, beyond_features, sizes_off, float_children, float32_thresholds,
     no_denominator, nan_offset, missing_value, short_value],
)
def test_arrays_that_do_not_make_trees_are_refused(tamper: Any) -> None:
    fitted, _ = fitted_forest()
    p = saved(fitted)
    ForestCodec(2).decode(from_blob(to_blob(p)))  # untouched, it is fine
    tamper(p)
    with pytest.raises(StateError, match="forest is an old or unreadable snapshot .*; delete it to start fresh"):
        ForestCodec(2).decode(from_blob(to_blob(p)))


def test_a_state_with_a_tampered_forest_is_refused_through_its_detector() -> None:
    d = IForest(features="raw", dims=2, window=100, refit_every=1000, n_estimators=30)
    st = d.new_state(1)
    d.update(st, np.array([0]), np.random.default_rng(4).normal(0.0, 1.0, (1, 100, 2)))
    payload = from_blob(st.to_bytes())
    payload["objects"][0][1]["feature"][:] = 5
    with pytest.raises(StateError, match="features beyond its 2"):
        d.load_state(payload)
