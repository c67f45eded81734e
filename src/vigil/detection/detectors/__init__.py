"""Streaming detectors and the registry that builds them by name.

Every detector follows `vigil.detection.detectors.base.Detector`: per-series state in a `RowState`,
one `update` call for many series and many samples. `build_detector` makes one by
name; `vigil.detection.pipeline.build_pipeline` combines them.
"""

from __future__ import annotations

import inspect
from typing import Any

from vigil.detection.detectors.base import Detector, Scores
from vigil.detection.detectors.deviation import Level, Shift, Spike, Volatility
from vigil.detection.detectors.ewma import Ewma
from vigil.detection.detectors.iforest import IForest
from vigil.detection.detectors.seasonal import Seasonal
from vigil.detection.detectors.zscore import ZScore
from vigil.errors import ConfigError

__all__ = [
    "DEFAULT_MEMBERS",
    "DETECTORS",
    "Detector",
    "Ewma",
    "IForest",
    "Level",
    "Scores",
    "Seasonal",
    "Shift",
    "Spike",
    "Volatility",
    "ZScore",
    "build_detector",
]

DETECTORS: dict[str, type[Any]] = {
    "ewma": Ewma, "iforest": IForest, "level": Level, "shift": Shift, "seasonal": Seasonal, "spike": Spike,
    "volatility": Volatility,
    "zscore": ZScore,
}

# What `vigil run` uses when nothing is configured: `default` and `ensemble` both mean this.
DEFAULT_MEMBERS: tuple[str, ...] = ("level", "shift", "volatility")


def build_detector(name: str, params: dict[str, Any] | None = None) -> Detector:
    """Build one detector by name; a wrong name or parameter raises ConfigError."""
    if name not in DETECTORS:
        raise ConfigError(f"detector is {name!r}; write one of {', '.join(sorted(DETECTORS))}, ensemble, default")
    cls = DETECTORS[name]
    params = dict(params or {})
    known = list(inspect.signature(cls).parameters)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"{name}: unknown parameter(s) {', '.join(unknown)}; {name} takes {', '.join(known)}")
    try:
        return cls(**params)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:  # a value of the wrong type, such as span='ten'
        given = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise ConfigError(f"{name}: cannot use {given} ({exc}); write numbers where numbers are expected") from exc
