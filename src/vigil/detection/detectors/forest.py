"""A fitted Isolation Forest as flat arrays: scikit-learn's scores, and a snapshot without pickle.

`Packed` lays all trees of a forest out in flat arrays and walks them together in NumPy,
in the arithmetic of `IsolationForest.score_samples`, so that it gives the same scores bit
for bit (`vigil.detection.detectors.iforest` checks this once per process). `Fitted` is
one series' forest and its cut-off; `ForestCodec` saves it as the packed arrays and
rebuilds it, refusing arrays that do not make trees. A rebuilt forest has no scikit-learn
object: it always scores with the walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.snapshot import entry, refuse
from vigil.state import FloatArray, IntArray

if TYPE_CHECKING:  # scikit-learn takes a second to import: only when a forest is fitted
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

__all__ = ["Fitted", "ForestCodec", "Packed"]

# Below this many samples, walk all trees at once in NumPy; above, one Cython
# `Tree.apply` per tree is faster (it costs a few microseconds per call).
_FEW_SAMPLES = 32
_INTS = ("sizes", "left", "right", "feature")
_FLOATS = ("threshold", "value")


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """Average path length of an unsuccessful search in a binary tree of `n` samples.

    The same expression as scikit-learn's private ``_average_path_length``, so that the
    scores below are bit-identical to ``IsolationForest.score_samples``.
    """
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros(n.shape)
    mask_1 = n <= 1
    mask_2 = n == 2
    rest = ~np.logical_or(mask_1, mask_2)
    out[mask_2] = 1.0
    out[rest] = 2.0 * (np.log(n[rest] - 1.0) + np.euler_gamma) - 2.0 * (n[rest] - 1.0) / n[rest]
    return out


class Packed:
    """All trees of a forest in flat arrays, for walking them together in NumPy.

    Trees follow each other, `sizes` nodes each, root first. Node ``i`` is a leaf when
    ``left[i] == right[i] == i``; otherwise a sample goes on to ``left[i]`` when its
    ``feature[i]`` is at most ``threshold[i]``, else to ``right[i]``. ``value[i]`` is the
    node's depth + the average path length of its samples - 1 (what sklearn adds up), and
    `denominator` the average path length of the whole forest.
    """

    def __init__(
        self, sizes: IntArray, left: IntArray, right: IntArray, feature: IntArray, threshold: FloatArray,
        value: FloatArray, denominator: float,
    ) -> None:
        self.sizes, self.left, self.right, self.feature = sizes, left, right, feature
        self.threshold, self.value, self.denominator = threshold, value, denominator
        self.roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        self.leaf = left == np.arange(left.size)
        self.per_tree: list[FloatArray] = np.split(value, self.roots[1:])  # for `Tree.apply`

    @classmethod
    def of(cls, forest: IsolationForest) -> Packed:
        trees = [est.tree_ for est in forest.estimators_]
        sizes = np.array([t.node_count for t in trees], dtype=np.intp)
        shift = np.repeat(np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
        left = np.concatenate([t.children_left for t in trees])
        right = np.concatenate([t.children_right for t in trees])
        leaf, node = left < 0, np.arange(left.size)
        value = np.concatenate(
            [t.compute_node_depths() + _average_path_length(t.n_node_samples) - 1.0 for t in trees]
        )
        return cls(
            sizes, np.where(leaf, node, left + shift), np.where(leaf, node, right + shift),
            np.where(leaf, 0, np.concatenate([t.feature for t in trees])),
            np.concatenate([t.threshold for t in trees]), value,
            float(len(trees) * _average_path_length(np.array([forest.max_samples_]))[0]),
        )

    def leaf_values(self, X32: np.ndarray) -> FloatArray:
        """(trees, samples): the value of the leaf each sample reaches in each tree."""
        node = np.repeat(self.roots[:, None], X32.shape[0], axis=1)
        col = np.arange(X32.shape[0])[None, :]
        while not self.leaf[node].all():
            go_left = X32[col, self.feature[node]] <= self.threshold[node]  # as Tree.apply
            node = np.where(go_left, self.left[node], self.right[node])  # a leaf stays put
        out: FloatArray = self.value[node]
        return out


@dataclass
class Fitted:
    """One series' forest and its cut-off (`forest.offset_` is set to `offset`).

    `forest` is the scikit-learn forest, None once rebuilt from a snapshot; `packed` is
    made from it on first use.
    """

    forest: IsolationForest | None
    offset: float
    packed: Packed | None = None

    def trees(self) -> Packed:
        if self.packed is None:
            if self.forest is None:
                raise ValueError("a fitted forest needs its scikit-learn forest or its packed trees")
            self.packed = Packed.of(self.forest)
        return self.packed

    def score_fast(self, X: FloatArray, walk: bool | None = None) -> FloatArray:
        """`forest.score_samples(X)` without its per-call overhead, in the same arithmetic.

        `walk`: walk the trees in NumPy (True) or call `Tree.apply` per tree (False);
        by default, whichever is faster for this many samples. Without a scikit-learn
        forest, always the walk.
        """
        p = self.trees()
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        if self.forest is None or (walk if walk is not None else X32.shape[0] <= _FEW_SAMPLES):
            # cumsum adds the trees one by one in order, exactly like sklearn's loop
            depths = np.cumsum(p.leaf_values(X32), axis=0)[-1]
        else:
            depths = np.zeros(X32.shape[0])
            for est, values in zip(self.forest.estimators_, p.per_tree, strict=True):
                depths += values[est.tree_.apply(X32)]
        scores: FloatArray = -(2 ** (-(depths / p.denominator)))
        return scores

    def matches_sklearn(self, X: FloatArray) -> bool:
        """Whether `score_fast` gives exactly `forest.score_samples(X)`, both ways."""
        if self.forest is None:
            return False
        expected = self.forest.score_samples(X)
        return all(np.array_equal(self.score_fast(X, walk), expected) for walk in (False, True))

    def score(self, X: FloatArray, fast: bool | None) -> FloatArray:
        """`score_fast` when `fast` (it equals sklearn here) or when there is no sklearn forest; else sklearn."""
        if fast or self.forest is None:
            return self.score_fast(X)
        out: FloatArray = self.forest.score_samples(X)
        return out


class ForestCodec:
    """Saves a `Fitted` of samples of `n_features` values as its packed arrays, and rebuilds it."""

    def __init__(self, n_features: int) -> None:
        self.n_features = n_features

    def encode(self, fitted: Fitted) -> dict[str, Any]:
        p = fitted.trees()
        arrays = {name: getattr(p, name) for name in (*_INTS, *_FLOATS)}
        return {**arrays, "denominator": p.denominator, "offset": fitted.offset}

    def decode(self, payload: Any) -> Fitted:
        """The forest saved as `payload`; StateError unless its arrays make trees the walk can only go down."""
        what = "forest"
        a = {name: entry(payload, name, np.ndarray, what) for name in (*_INTS, *_FLOATS)}
        denominator, offset = entry(payload, "denominator", float, what), entry(payload, "offset", float, what)
        if any(a[k].dtype.kind not in "iu" for k in _INTS) or any(a[k].dtype != np.float64 for k in _FLOATS):
            raise refuse(what, "its arrays have the wrong dtypes")
        sizes, left, right, feature = (a[k].astype(np.intp) for k in _INTS)
        n = left.size
        if any(arr.shape != (n,) for arr in (left, right, feature, a["threshold"], a["value"])) or sizes.ndim != 1:
            raise refuse(what, "its arrays do not have one value per node")
        if not (0 < sizes.size <= n and sizes.min() >= 1 and sizes.max() <= n and sizes.sum() == n):
            raise refuse(what, f"its tree sizes do not add up to its {n} nodes")
        node, end = np.arange(n), np.repeat(np.cumsum(sizes), sizes)
        leaf = left == node
        down = (left > node) & (left < end) & (right > node) & (right < end)  # children follow within the tree
        if not ((leaf & (right == node)) | (~leaf & down)).all():
            raise refuse(what, "its nodes do not make trees")
        if not ((feature >= 0) & (feature < self.n_features)).all():
            raise refuse(what, f"it splits on features beyond its {self.n_features}")
        if not (np.isfinite(denominator) and denominator > 0 and np.isfinite(offset)):
            raise refuse(what, f"its denominator {denominator!r} or cut-off {offset!r} is not usable")
        return Fitted(None, offset, Packed(sizes, left, right, feature, a["threshold"], a["value"], denominator))
