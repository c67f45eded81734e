"""The pipeline's settings: every knob of detection, with the default Vigil ships, in one place.

`DEFAULTS` is what `vigil run` does when nothing is configured, and every other place
takes its defaults from it: the ``detection:`` keys of the config file
(`vigil.config.Detection`), `vigil.detection.pipeline.Pipeline` and `build_pipeline`,
`RecordCalibration`, and the options of `vigil backtest`. Changing a default here changes
it everywhere (``tests/test_docs.py`` then asks for the tables of docs/detectors.md too).

>>> DEFAULTS.detector, DEFAULTS.hold, DEFAULTS.decision.threshold, DEFAULTS.decision.persistence
('default', 20, 0.99996, '1/1')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from vigil.errors import ConfigError

__all__ = ["DEFAULTS", "DEFAULT_THRESHOLD", "CalibrationKind", "DecisionConfig", "Direction", "Settings", "check_threshold"]

# The anomaly threshold Vigil ships: about 10 % past a series' record (see RecordCalibration).
DEFAULT_THRESHOLD = 0.99996

Direction = Literal["above", "below", "both"]
CalibrationKind = Literal["tail", "record"]


# The most samples a count of the decision's state holds (int32)
_MOST_SAMPLES = 2**31 - 1


def check_threshold(threshold: float) -> float:
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold is {threshold!r}; write a probability between 0 and 1, such as 0.99996")
    return float(threshold)


@dataclass(frozen=True)
class DecisionConfig:
    """When a score becomes an event (`vigil.detection.decision.Decision`).

    Parameters
    ----------
    threshold
        Anomaly score at or above which a sample is hot.
    direction
        ``above``: only values above the expected value count; ``below``: only below;
        ``both``: either.
    min_abs_deviation, min_rel_deviation
        A hot sample must also differ from the expected value by at least this much, in
        the series' units and as a fraction of ``|expected|``.
    k, n
        Persistence: open an event when `k` of the last `n` scored samples are hot.
    resolve_after
        Scored samples in a row that are not hot before an open event resolves.
    cooldown
        Scored samples after a resolution during which no new event opens on that series.
    """

    threshold: float = DEFAULT_THRESHOLD
    direction: Direction = "both"
    min_abs_deviation: float = 0.0
    min_rel_deviation: float = 0.0
    k: int = 1
    n: int = 1
    resolve_after: int = 5
    cooldown: int = 0

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        if self.direction not in ("above", "below", "both"):
            raise ConfigError(f"direction is {self.direction!r}; write one of above, below, both")
        for key, value in (("min_abs_deviation", self.min_abs_deviation), ("min_rel_deviation", self.min_rel_deviation)):
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"{key} is {value!r}; write a number >= 0")
        if not (isinstance(self.n, int) and 1 <= self.n <= 62):
            raise ConfigError(f"n is {self.n!r}; write a whole number from 1 to 62")
        if not (isinstance(self.k, int) and 1 <= self.k <= self.n):
            raise ConfigError(f"k is {self.k!r}; write a whole number from 1 to n ({self.n})")
        for key, value, lowest in (("resolve_after", self.resolve_after, 1), ("cooldown", self.cooldown, 0)):
            if not (isinstance(value, int) and lowest <= value <= _MOST_SAMPLES):
                raise ConfigError(f"{key} is {value!r}; write a whole number from {lowest} to {_MOST_SAMPLES}")

    @property
    def persistence(self) -> str:
        """`k` and `n` as the config file writes them, ``"K/N"``."""
        return f"{self.k}/{self.n}"


@dataclass(frozen=True)
class Settings:
    """How a pipeline turns samples into events.

    Parameters
    ----------
    detector
        ``default`` (or ``ensemble``): the detectors of
        `vigil.detection.detectors.DEFAULT_MEMBERS` together; any other registered name
        runs that detector alone.
    params
        Detector name -> its parameters.
    calibrate
        True: each member's raw scores are calibrated (`calibration`). False: each
        detector's own band decides.
    calibration
        ``tail``: a raw score's rarity on the series' own history against the budget of
        `false_alarms` (`vigil.detection.tail`); ``record``: how far it goes past the
        series' largest recent raw score (`vigil.detection.calibration`).
    false_alarms
        Seconds between false alarms of one series on normal behaviour, the budget of the
        tail calibration at every sample interval (one a month).
    calibration_window, calibration_min_samples
        Memory of the calibration in samples, and raw scores it learns before its first
        score.
    hold
        Samples after a detection during which the series' score is capped at the hold
        level (0: never).
    decision
        When scores become events.
    valid_range
        ``(low, high)``: samples outside are impossible readings, neither learned nor
        scored (None: every finite value is valid).

    The values are checked where they are used (`Pipeline`, `RecordCalibration`,
    `DecisionConfig`), each naming its key.
    """

    detector: str = "default"
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    calibrate: bool = True
    calibration: CalibrationKind = "tail"
    false_alarms: float = 30 * 86400.0
    calibration_window: int = 65536
    calibration_min_samples: int = 30
    hold: int = 20
    decision: DecisionConfig = DecisionConfig()
    valid_range: tuple[float, float] | None = None


DEFAULTS = Settings()
