"""The ``detection`` keys: how samples become anomaly events (top level, or per query)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from vigil.config.values import Model
from vigil.detection.calibration import DEFAULT_THRESHOLD
from vigil.detection.decision import DecisionConfig
from vigil.detection.detectors import DETECTORS

__all__ = ["Detection", "merge"]


class Detection(Model):
    """How samples become anomaly events. Set once at the top level; a query may override keys."""

    detector: str = "default"
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    calibrate: bool = True
    calibration_window: int = Field(10000, ge=2)
    calibration_min_samples: int = Field(30, ge=1)
    hold: int = Field(20, ge=0)
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0, lt=1)
    direction: Literal["above", "below", "both"] = "both"
    min_abs_deviation: float = Field(0.0, ge=0)
    min_rel_deviation: float = Field(0.0, ge=0)
    persistence: str = "1/1"
    resolve_after: int = Field(5, ge=1)
    cooldown: int = Field(0, ge=0)
    valid_range: tuple[float, float] | None = None

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


def merge(base: Detection, override: dict[str, Any] | None) -> Detection:
    if not override:
        return base
    return Detection.model_validate({**base.model_dump(exclude_unset=False), **override})
