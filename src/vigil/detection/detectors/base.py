"""The streaming detector interface.

A detector keeps no per-series state of its own: the caller owns a `RowState` (one row per
series) and passes it to `update` with the rows to touch and a block of new samples,
`x[i, j]` being the j-th new value of series `rows[i]`. For every sample, `update` first
scores it against what was learned before it, then learns it. So the score of a sample
never depends on the sample itself or on anything after it.

Scores have the block's shape. `raw` is >= 0, high means anomalous, and `raw >= 1` means
"outside the detector's own band" (`lower`..`upper`). NaN means "no opinion": warming up
or a missing value, never "normal".

A detector also says how the pipeline's calibration should treat its raw scores
(`Detector.sided`, `per_sample`, `null_raw_cdf`); `StepDetector` gives the cautious
defaults and each detector states its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from numba import njit

from vigil.state import Field, FloatArray, IntArray, ObjectCodec, RowState

__all__ = ["ABS_FLOOR", "REL_FLOOR", "SCALE_SAMPLES", "Detector", "NullCdf", "Scores", "StepDetector",
           "add_step", "band_raw", "erf", "gaussian_raw_cdf", "step_scale"]

NullCdf = Callable[[FloatArray], FloatArray]
"""P(raw <= x), elementwise, for a detector's raw scores on Gaussian noise."""


# A band detector's sigma never drops below this fraction of |level| plus a tiny absolute
# floor, so a constant series gets a narrow band instead of a zero-width one.
REL_FLOOR = 1e-9
ABS_FLOOR = 1e-9


# the error function elementwise (only the priors use it, on a few values: scipy's would cost
# its 28 MiB import in every process)
erf: Callable[[Any], FloatArray] = np.vectorize(math.erf, otypes=[np.float64])


def gaussian_raw_cdf(x: FloatArray, k: float) -> FloatArray:
    """P(raw <= x) for a band detector of half-width k sigma on Gaussian noise (raw = |z| / k)."""
    return erf(np.asarray(x) * k / math.sqrt(2.0))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Scores:
    """Per-sample results of one `update`, each shaped like the block of samples."""

    raw: FloatArray
    expected: FloatArray
    lower: FloatArray
    upper: FloatArray


class Detector(Protocol):
    """What the pipeline needs of a detector: its state, `update`, and three declarations.

    `sided`: the raw score of a sample has a side, above or below the detector's expected
    value, and the calibration keeps a record for each (a series that often spikes up still
    alerts on its first dip); such a detector gives an expected value with every raw score.
    `per_sample`: the raw score is of one sample, not of a window, so after a detection the
    calibration holds (the rest of the incident is not measured against the incident itself).
    `null_raw_cdf`: P(raw <= x) on Gaussian noise, from which the calibration takes a new
    series' first record; None when the detector cannot say.
    """

    name: ClassVar[str]

    @property
    def sided(self) -> bool: ...

    @property
    def per_sample(self) -> bool: ...

    @property
    def null_raw_cdf(self) -> NullCdf | None: ...

    def fields(self) -> dict[str, Field]: ...

    def new_state(self, n_rows: int = 0) -> RowState: ...

    def load_state(self, payload: Any) -> RowState: ...

    def update(self, state: RowState, rows: IntArray, x: FloatArray, t: FloatArray | None = None) -> Scores: ...

    def params(self) -> dict[str, Any]: ...


# A deviation detector's scale is the mean absolute step of a series' first samples (each
# step clipped, see `add_step`): running until this many are in, then frozen, so later
# changes of spread are not normalised away.
SCALE_SAMPLES = 100


# Once this many steps are in, a step counts at most `STEP_CLIP` times the mean so far, so a
# spike among the first samples does not set the scale of the series for good.
STEP_CLIP_AFTER = 10
STEP_CLIP = 5.0


@njit(cache=True, nogil=True)
def add_step(total, count, v, prev):  # type: ignore[no-untyped-def]
    """`total` (the sum of |step| so far) after sample `v`, `count` samples having come before it."""
    if not 0 < count < SCALE_SAMPLES:
        return total
    step = abs(v - prev)
    if count > STEP_CLIP_AFTER:
        step = min(step, STEP_CLIP * total / (count - 1))
    return total + step


@njit(cache=True, nogil=True)
def step_scale(total, count):  # type: ignore[no-untyped-def]
    """The mean |step| of the first samples, from `total` after `count` samples."""
    steps = min(count, SCALE_SAMPLES) - 1
    return total / steps if steps > 0 else 0.0


def band_raw(x: FloatArray, expected: FloatArray, lower: FloatArray, upper: FloatArray) -> FloatArray:
    """Deviation from `expected` in units of the band's half-width on that side (1 = on the edge)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        above = (x - expected) / (upper - expected)
        below = (expected - x) / (expected - lower)
    return np.where(x >= expected, above, below)


class StepDetector:
    """Base for detectors whose state is all arrays: builds the state, checks the input.

    Subclasses define `fields()` and `_update(state, rows, x, t, out)`, which scores and
    learns the block in place; `out` is a (4, rows, steps) array for raw, expected,
    lower and upper, filled with NaN beforehand. `t` holds the samples' times in
    seconds, shaped like `x`, or is None when the caller has none; most detectors ignore it.
    Subclasses also state `sided`, `per_sample` and `null_raw_cdf` (`Detector`); the
    defaults here are the cautious ones: no side, not of one sample, no null distribution.
    """

    name: ClassVar[str] = ""
    null_raw_cdf: NullCdf | None = None

    @property
    def sided(self) -> bool:
        return False

    @property
    def per_sample(self) -> bool:
        return False

    def fields(self) -> dict[str, Field]:
        raise NotImplementedError

    def object_codec(self) -> ObjectCodec | None:
        """How the objects of this detector's states are saved (None: it keeps none)."""
        return None

    def new_state(self, n_rows: int = 0) -> RowState:
        return RowState(self.fields(), n_rows, self.object_codec())

    def load_state(self, payload: Any) -> RowState:
        """The state saved as `payload` (`RowState.payload`, decoded); StateError if it does not fit."""
        state = RowState.from_payload(payload, self.object_codec())
        state.check_fields(self.fields(), f"detector {self.name}")
        return state

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def _update(
        self, state: RowState, rows: IntArray, x: FloatArray, t: FloatArray | None, out: FloatArray
    ) -> None:
        raise NotImplementedError

    def update(self, state: RowState, rows: IntArray, x: FloatArray, t: FloatArray | None = None) -> Scores:
        rows = np.ascontiguousarray(rows, dtype=np.intp)
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(rows):
            raise ValueError(f"x must have shape (len(rows), steps) = ({len(rows)}, n), got {x.shape}")
        if t is not None:
            t = np.ascontiguousarray(np.broadcast_to(t, x.shape), dtype=np.float64)
        out = np.full((4, *x.shape), np.nan)
        self._update(state, rows, x, t, out)
        return Scores(raw=out[0], expected=out[1], lower=out[2], upper=out[3])
