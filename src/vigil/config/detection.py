"""The ``detection`` keys: how samples become anomaly events (top level, or per query)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, model_validator

from vigil.config.values import Model, Rate
from vigil.detection.detectors import DETECTORS
from vigil.detection.settings import DEFAULTS, CalibrationKind, DecisionConfig, Direction, Settings

__all__ = ["Detection", "merge"]


_DECISION = DEFAULTS.decision


class Detection(Model):
    """How samples become anomaly events. Set once at the top level; a query may override keys.

    The keys are those of `vigil.detection.settings.Settings` (the decision's at the top,
    `k` and `n` as ``persistence: K/N``), with its defaults; `settings` gives them as one.
    """

    detector: str = DEFAULTS.detector
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    calibrate: bool = DEFAULTS.calibrate
    calibration: CalibrationKind = DEFAULTS.calibration
    false_alarms: Rate = Field(DEFAULTS.false_alarms, description="one false alarm per series per this many seconds")
    calibration_window: int = Field(DEFAULTS.calibration_window, ge=2)
    calibration_min_samples: int = Field(DEFAULTS.calibration_min_samples, ge=1)
    hold: int = Field(DEFAULTS.hold, ge=0)
    threshold: float = Field(_DECISION.threshold, gt=0, lt=1)
    direction: Direction = _DECISION.direction
    min_abs_deviation: float = Field(_DECISION.min_abs_deviation, ge=0)
    min_rel_deviation: float = Field(_DECISION.min_rel_deviation, ge=0)
    persistence: str = _DECISION.persistence
    resolve_after: int = Field(_DECISION.resolve_after, ge=1)
    cooldown: int = Field(_DECISION.cooldown, ge=0)
    valid_range: tuple[float, float] | None = DEFAULTS.valid_range

    @model_validator(mode="after")
    def _check(self) -> Detection:
        problems = []
        names = {"default", "ensemble", *DETECTORS}
        if self.detector not in names:
            problems.append(f"detector is {self.detector!r}; write one of {', '.join(sorted(names))}")
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", self.persistence)
        if not match or not 1 <= int(match.group(1)) <= int(match.group(2)) <= 62:
            problems.append(f"persistence is {self.persistence!r}; write K/N with 1 <= K <= N <= 62, such as '3/5'")
        if self.valid_range is not None and not self.valid_range[0] < self.valid_range[1]:
            problems.append(f"valid_range is {list(self.valid_range)}; write [low, high] with low < high")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def decision(self) -> DecisionConfig:
        k, n = (int(p) for p in self.persistence.split("/"))
        return DecisionConfig(
            threshold=self.threshold, direction=self.direction, min_abs_deviation=self.min_abs_deviation,
            min_rel_deviation=self.min_rel_deviation, k=k, n=n, resolve_after=self.resolve_after,
            cooldown=self.cooldown,
        )

    def settings(self) -> Settings:
        """These keys as the pipeline's settings."""
        return Settings(
            detector=self.detector, params=self.params, calibrate=self.calibrate, calibration=self.calibration,
            false_alarms=self.false_alarms, calibration_window=self.calibration_window, calibration_min_samples=self.calibration_min_samples,
            hold=self.hold, decision=self.decision(), valid_range=self.valid_range,
        )


def merge(base: Detection, override: dict[str, Any] | None) -> Detection:
    if not override:
        return base
    return Detection.model_validate({**base.model_dump(exclude_unset=False), **override})
