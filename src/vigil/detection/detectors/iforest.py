"""Streaming Isolation Forest: one scikit-learn forest per series, refitted on a schedule."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vigil.detection.detectors.base import Scores, StepDetector
from vigil.detection.detectors.forest import Fitted, ForestCodec
from vigil.errors import ConfigError
from vigil.state import Field, FloatArray, IntArray, RowState

__all__ = ["IForest"]

# The window's standard deviation never drops below this fraction of |mean| (plus a tiny
# absolute floor), so a constant series gives finite features.
_REL_FLOOR = 1e-3
_ABS_FLOOR = 1e-9
_FEATURES = ("window", "raw")
_WINDOW_FEATURES = 3  # first difference, deviation from the lag mean, window z-score

# Whether the NumPy scorer (`forest.Fitted.score_fast`) gives exactly `IsolationForest.score_samples`
# with this scikit-learn. Checked once per process on the first fit; if not, sklearn scores
# (except forests restored from a snapshot, which have no sklearn object).
_fast_scoring_ok: bool | None = None


def _whole(value: Any, low: int, high: int | None = None) -> bool:
    """True if `value` is a whole number (not a bool) in [low, high]."""
    if isinstance(value, bool):
        return False
    try:
        if int(value) != value:
            return False
    except (TypeError, ValueError, OverflowError):
        return False
    return bool(low <= value and (high is None or value <= high))


class IForest(StepDetector):
    """Isolation Forest per series over a sliding training window, refitted on a schedule.

    Parameters
    ----------
    window
        Training window: the forest of a series is fitted on its last `window` accepted
        feature vectors. In ``features="window"`` mode it is also the history (in finite
        values) that standardises each sample.
    contamination
        Share of recent samples that the forest calls outliers, in (0, 0.5]: the cut-off
        of a fit is this quantile of its scores over the last `window` feature vectors
        (all of them, including the ones kept out of training), and a score equal to it
        counts as an outlier: a point beyond the training data gets the score of the
        data's edge, and the quantile often falls on exactly that score.
    n_estimators
        Trees per forest.
    refit_every
        A series' forest is refitted every `refit_every` feature vectors it receives,
        never per sample. A fit costs tens of milliseconds, so keep this large.
    min_samples
        Feature vectors before the first fit (default: `window`); NaN until then.
    seed
        The only source of randomness. Fit number ``k`` of a series uses a random state
        drawn from ``(seed, k)``, never from the row index, so a series scores the same
        whichever rows it is updated with.
    features
        ``"window"``: univariate input ``x`` of shape (rows, steps); each finite sample
        ``v`` gives, with ``s`` the standard deviation of the `window` finite values
        before it (or as many as there are; floored at ``1e-3·|mean| + 1e-9``), the vector
        ``((v - previous) / s, (v - mean of the last lags values) / s,
        (v - mean of the window) / s)``: a jump, a departure from the local level, and a
        departure from the recent range. All three are measured from the values before
        the sample (no look-ahead), in units of the recent spread, so they do not change
        when the level or the scale of the series drifts, and an old forest stays
        meaningful until its refit. The first ``max(lags, 2)`` values only fill history.
        The history keeps every finite value, spikes included, so a spike widens ``s``
        (and dulls the features) for the next `window` samples.
        ``"raw"``: multivariate input ``x`` of shape (rows, steps, dims), each row being
        a group of series (one host's CPU, memory, disk) and the feature vector the
        `dims` values as they are; a point that breaks the usual joint pattern is
        isolated even when each value alone is ordinary. Levels are not normalised: a
        drift is flagged, then learned through the half-window rule below and the next
        refit. A forest cannot score a point beyond its training data higher than the
        data's edge, so a spike in one dimension only is not always caught here; the
        univariate detectors are better at those.
    lags
        ``"window"`` mode: how many previous values make the local level.
    dims
        ``"raw"`` mode: values per sample (required). ``"window"`` mode: 1 or None.

    Each sample is scored with the forest fitted before it, then learned:
    ``raw = score / cut-off`` with sklearn's ``score_samples`` convention turned round
    (the anomaly score of the paper, in (0, 1], over the same score at the cut-off), so
    ``raw >= 0``, high is anomalous and ``raw >= 1`` exactly when the forest's ``predict``
    says -1. Iforest has no band: expected, lower and upper are NaN. A sample with NaN or
    inf in any dimension gets NaN and is not learned.

    A sample with ``raw >= 1`` does not enter the training window (one incident does not
    teach the forest that it is normal), unless more than half of the last `window`
    feature vectors were over the cut-off: then the series has changed, and the new
    behaviour is learned for the next refit. The cut-off is taken over all recent
    vectors rather than only the accepted ones (as sklearn's own ``offset_`` would be),
    or the forest would tighten at each refit (training on the inner 90 % and flagging
    10 % of that) until a third or more of calm data is flagged.

    Cost: scoring is one pass of the trees over all the samples of a block between two
    refits; a fit (about 60 ms for 50 trees) every `refit_every` samples dominates. The
    forest of each series is kept in ``state.objects`` (about 160 kB per series in a
    snapshot with 50 trees), so this detector is meant for hundreds of series, not
    100,000.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(50.0, 1.0, (1, 400)); x[0, 300] = 60.0
    >>> d = IForest(window=100, refit_every=100); st = d.new_state(1)
    >>> s = d.update(st, np.array([0]), x)
    >>> bool(np.isnan(s.raw[0, :105]).all()), bool(s.raw[0, 300] >= 1)
    (True, True)
    >>> bool(np.nanmean(s.raw[0, 105:] < 1) > 0.8), bool(np.isnan(s.expected).all())
    (True, True)
    """

    name: ClassVar[str] = "iforest"
    sided: ClassVar[bool] = False  # no expected value, so no side
    per_sample: ClassVar[bool] = False
    null_raw_cdf = None  # a forest's score has no known law on Gaussian noise

    def __init__(
        self,
        window: int = 100,
        contamination: float = 0.1,
        n_estimators: int = 50,
        refit_every: int = 2500,
        min_samples: int | None = None,
        seed: int = 0,
        features: str = "window",
        lags: int = 5,
        dims: int | None = None,
    ) -> None:
        if not _whole(window, 2):
            raise ConfigError(f"iforest: window is {window!r}; write a whole number >= 2")
        try:
            bad = not 0.0 < float(contamination) <= 0.5
        except (TypeError, ValueError):
            bad = True
        if bad:
            raise ConfigError(
                f"iforest: contamination is {contamination!r}; "
                "write a share in (0, 0.5], such as 0.1"
            )
        if not _whole(n_estimators, 1):
            raise ConfigError(f"iforest: n_estimators is {n_estimators!r}; write a whole number >= 1")
        if not _whole(refit_every, 1):
            raise ConfigError(f"iforest: refit_every is {refit_every!r}; write a whole number >= 1")
        if min_samples is None:
            min_samples = window
        if not _whole(min_samples, 2, int(window)):
            raise ConfigError(
                f"iforest: min_samples is {min_samples!r}; "
                f"write a whole number from 2 to window ({window})"
            )
        if not _whole(seed, 0):
            raise ConfigError(f"iforest: seed is {seed!r}; write a whole number >= 0")
        if features not in _FEATURES:
            raise ConfigError(
                f"iforest: features is {features!r}; "
                "write 'window' (univariate) or 'raw' (multivariate)"
            )
        if not _whole(lags, 1, int(window)):
            raise ConfigError(f"iforest: lags is {lags!r}; write a whole number from 1 to window ({window})")
        if features == "window":
            if dims is not None and dims != 1:
                raise ConfigError(
                    f"iforest: dims is {dims!r}; with features 'window' the input is one value per "
                    "sample: leave dims out, or use features 'raw' for several"
                )
        elif not _whole(dims, 1):
            raise ConfigError(
                f"iforest: dims is {dims!r}; with features 'raw' write the number of values per "
                "sample as a whole number >= 1 (3 for CPU, memory and disk)"
            )
        self.window = int(window)
        self.contamination = float(contamination)
        self.n_estimators = int(n_estimators)
        self.refit_every = int(refit_every)
        self.min_samples = int(min_samples)
        self.seed = int(seed)
        self.features = features
        self.lags = int(lags)
        self.dims = None if dims is None else int(dims)
        self._k = _WINDOW_FEATURES if features == "window" else int(dims or 1)
        self._need = max(self.lags, 2)  # finite values before a sample has a feature vector

    def object_codec(self) -> ForestCodec:
        return ForestCodec(self._k)

    def fields(self) -> dict[str, Field]:
        w, k = self.window, self._k
        f: dict[str, Field] = {}
        if self.features == "window":
            f["vals"] = Field((w,), np.float64, 0.0)  # last w finite values, oldest first
            f["n_vals"] = Field((), np.int64, 0)
        f.update(
            {
                "feats": Field((w, k), np.float64, 0.0),  # last w feature vectors, oldest first
                "flags": Field((w,), np.bool_, False),  # raw >= 1 for each of them
                "n_feats": Field((), np.int64, 0),
                "train": Field((w, k), np.float64, 0.0),  # last w accepted feature vectors
                "n_train": Field((), np.int64, 0),
                "next_fit": Field((), np.int64, self.min_samples),  # n_feats at the next fit
                "n_fits": Field((), np.int64, 0),
            }
        )
        return f

    # -- features --------------------------------------------------------------------

    def _window_features(
        self, state: RowState, rows: IntArray, x: FloatArray
    ) -> tuple[FloatArray, np.ndarray]:
        """Feature vectors of a univariate block, shape (rows, steps, 3), and where they exist.

        Each sum runs over the same values in the same order whatever the block
        boundaries, so features (and scores) do not depend on how the stream is cut.
        """
        w, T = self.window, x.shape[1]
        valid = ~np.isnan(x)
        order = np.argsort(~valid, axis=1, kind="stable")  # finite values first, in order
        compact = np.take_along_axis(x, order, axis=1)
        n_valid = valid.sum(axis=1)
        hist = state["vals"][rows]
        n_hist = state["n_vals"][rows]
        P = np.concatenate([hist, compact], axis=1)  # (R, w + T)

        def lagged(k: int) -> FloatArray:
            return P[:, w - k : w - k + T]

        prev_count = n_hist[:, None] + np.arange(T)  # finite values before compact[:, j]
        m = np.minimum(prev_count, w).astype(np.float64)
        has = (np.arange(T) < n_valid[:, None]) & (prev_count >= self._need)
        with np.errstate(invalid="ignore", divide="ignore"):
            total = np.zeros(compact.shape)
            for k in range(w, 0, -1):  # oldest first; missing history is 0 and adds nothing
                total += lagged(k)
            mean = total / m
            sq = np.zeros(compact.shape)
            partial = bool((m[has] < w).any())
            for k in range(w, 0, -1):
                dev = lagged(k) - mean
                sq += np.where(m >= k, dev * dev, 0.0) if partial else dev * dev
            std = np.sqrt(sq / (m - 1.0))
            lag_total = np.zeros(compact.shape)
            for k in range(self.lags, 0, -1):
                lag_total += lagged(k)
            scale = np.maximum(std, _REL_FLOOR * np.abs(mean) + _ABS_FLOOR)
            feats = np.stack(
                [
                    (compact - lagged(1)) / scale,
                    (compact - lag_total / self.lags) / scale,
                    (compact - mean) / scale,
                ],
                axis=-1,
            )
        has &= np.isfinite(feats).all(axis=-1)  # values so large that the sums overflow
        # new history: the w values ending at the last finite one
        idx = n_valid[:, None] + np.arange(w)
        state["vals"][rows] = np.take_along_axis(P, idx, axis=1)
        state["n_vals"][rows] = n_hist + n_valid
        # back to the samples' own positions
        out = np.full(feats.shape, np.nan)
        out_has = np.zeros(has.shape, dtype=bool)
        np.put_along_axis(out, order[:, :, None], feats, axis=1)
        np.put_along_axis(out_has, order, has, axis=1)
        return out, out_has

    # -- learning --------------------------------------------------------------------

    def _fit(self, state: RowState, r: int) -> None:
        global _fast_scoring_ok
        w = self.window
        n_train = min(int(state["n_train"][r]), w)
        n_recent = min(int(state["n_feats"][r]), w)
        X_train = state["train"][r, w - n_train :]
        X_recent = state["feats"][r, w - n_recent :]
        n_fits = int(state["n_fits"][r])
        random_state = int(np.random.SeedSequence([self.seed, n_fits]).generate_state(1)[0])
        from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

        forest = IsolationForest(
            n_estimators=self.n_estimators, contamination="auto", random_state=random_state
        ).fit(X_train)
        fitted = Fitted(forest, 0.0)
        if _fast_scoring_ok is None:
            _fast_scoring_ok = fitted.matches_sklearn(X_recent)
        # Points beyond the training data all get the score of its edge, and the quantile
        # often lands on such a tie: nudge the cut-off so that ties count as outliers
        # (sklearn's test is a strict score < offset_).
        cut = np.percentile(fitted.score(X_recent, _fast_scoring_ok), 100.0 * self.contamination)
        offset = float(np.nextafter(cut, 0.0))
        fitted.offset = offset
        forest.offset_ = offset  # so that forest.predict agrees with raw >= 1
        state.objects[r] = fitted
        state["n_fits"][r] = n_fits + 1
        state["next_fit"][r] += self.refit_every

    def _learn_row(self, state: RowState, r: int, F: FloatArray) -> FloatArray:
        """Score then learn the feature vectors `F` (in order) of row `r`; returns raw."""
        w = self.window
        n = F.shape[0]
        raw = np.full(n, np.nan)
        a = 0
        while a < n:
            b = min(n, a + int(state["next_fit"][r] - state["n_feats"][r]))
            seg = F[a:b]
            fitted: Fitted | None = state.objects[r]
            if fitted is not None:
                s = fitted.score(seg, _fast_scoring_ok)
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = s / fitted.offset
                flag = s < fitted.offset  # sklearn: outlier iff score_samples < offset_
                # keep raw >= 1 exactly on sklearn's outliers, whatever the rounding
                below_one = np.nextafter(1.0, 0.0)
                ratio = np.where(flag, np.maximum(ratio, 1.0), np.minimum(ratio, below_one))
                raw[a:b] = ratio
            else:
                flag = np.zeros(b - a, dtype=bool)
            all_flags = np.concatenate([state["flags"][r], flag])
            c = np.concatenate([[0], np.cumsum(all_flags)])
            over = c[w + 1 + np.arange(b - a)] - c[1 + np.arange(b - a)]  # flags in last w
            accept = ~flag | (2 * over > w)
            state["flags"][r] = all_flags[-w:]
            state["feats"][r] = np.concatenate([state["feats"][r], seg])[-w:]
            state["n_feats"][r] += b - a
            kept = seg[accept]
            if kept.shape[0]:
                state["train"][r] = np.concatenate([state["train"][r], kept])[-w:]
                state["n_train"][r] += kept.shape[0]
            if state["n_feats"][r] == state["next_fit"][r]:
                self._fit(state, r)
            a = b
        return raw

    def _append_warming(
        self, state: RowState, rows: IntArray, feats: FloatArray, has: np.ndarray
    ) -> None:
        """`_learn_row` for rows that have no forest and reach no fit in this block, at once.

        They score nothing and learn everything: their feature vectors are appended to
        both windows, with no flags.
        """
        w = self.window
        order = np.argsort(~has, axis=1, kind="stable")  # this row's vectors first, in order
        new = np.take_along_axis(feats, order[:, :, None], axis=1)
        counts = has.sum(axis=1)
        last = (counts[:, None] + np.arange(w))[:, :, None]  # the w ending at the newest
        for name in ("feats", "train"):
            both = np.concatenate([state[name][rows], new], axis=1)
            state[name][rows] = np.take_along_axis(both, last, axis=1)
        flags = np.concatenate([state["flags"][rows], np.zeros(has.shape, dtype=bool)], axis=1)
        state["flags"][rows] = np.take_along_axis(flags, last[:, :, 0], axis=1)
        state["n_feats"][rows] += counts
        state["n_train"][rows] += counts

    def update(self, state: RowState, rows: IntArray, x: FloatArray, t: FloatArray | None = None) -> Scores:
        """Score each sample with the forest fitted before it, then learn it (`t` is not used).

        `x` is (len(rows), steps) with ``features="window"``, (len(rows), steps, dims)
        with ``features="raw"`` (or (len(rows), steps) when dims is 1).
        """
        rows = np.asarray(rows, dtype=np.intp)
        x = np.asarray(x, dtype=np.float64)
        if self.features == "raw" and x.ndim == 2 and self.dims == 1:
            x = x[:, :, None]
        want = 2 if self.features == "window" else 3
        if x.ndim != want or x.shape[0] != len(rows) or (want == 3 and x.shape[2] != self.dims):
            shape = "(len(rows), steps)" if want == 2 else f"(len(rows), steps, {self.dims})"
            raise ValueError(f"iforest ({self.features}): x must have shape {shape}, got {x.shape}")
        n_rows, T = x.shape[0], x.shape[1]
        raw = np.full((n_rows, T), np.nan)
        if n_rows and T:
            if self.features == "window":
                x = np.where(np.isfinite(x), x, np.nan)
                feats, has = self._window_features(state, rows, x)
            else:
                feats, has = x, np.asarray(np.isfinite(x).all(axis=2))
            counts = has.sum(axis=1)
            warming = (
                (counts > 0)
                & np.array([state.objects[r] is None for r in rows.tolist()], dtype=bool)
                & (state["n_feats"][rows] + counts < state["next_fit"][rows])
            )
            if warming.any():  # the live case: many rows, no forest yet, nothing to score
                self._append_warming(state, rows[warming], feats[warming], has[warming])
            for i in np.flatnonzero((counts > 0) & ~warming).tolist():
                pos = np.flatnonzero(has[i])
                raw[i, pos] = self._learn_row(state, int(rows[i]), feats[i, pos])
        nan = np.full((n_rows, T), np.nan)
        return Scores(raw=raw, expected=nan, lower=nan.copy(), upper=nan.copy())
