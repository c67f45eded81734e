"""What the demo app can inject: the kinds of anomaly, their magnitudes, and an injection in force."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["DEFAULT_DURATION", "MAX_INJECTIONS", "Injection", "InjectionRequest", "Kind"]

Kind = Literal["spike", "shift", "latency", "errors"]

# kind -> (default magnitude, what the magnitude means and its range)
_MAGNITUDE: dict[str, tuple[float, str]] = {
    "spike": (50.0, "percentage points added to the CPU, 0 < magnitude <= 100"),
    "shift": (20.0, "percentage points the CPU baseline moves, -100 <= magnitude <= 100, not 0"),
    "latency": (5.0, "factor on request durations, 0 < magnitude <= 100"),
    "errors": (0.5, "share of 5xx answers, 0 < magnitude <= 1"),
}
DEFAULT_DURATION = 60.0
MAX_INJECTIONS = 64


class InjectionRequest(BaseModel):
    """Body of ``POST /inject``: which anomaly, how strong, for how long.

    ``magnitude`` defaults per kind (spike 50, shift 20, latency 5, errors 0.5); ``duration``
    defaults to 60 seconds, and ``null`` (permanent) is allowed for ``shift`` only.

    >>> InjectionRequest(kind="errors").value
    0.5
    >>> InjectionRequest(kind="errors", magnitude=2.0)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for InjectionRequest
      Value error, magnitude 2.0 is out of range for errors: give the share of 5xx answers, ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    magnitude: float | None = None
    duration: float | None = DEFAULT_DURATION

    @property
    def value(self) -> float:
        """The magnitude, or the kind's default when none was given."""
        return _MAGNITUDE[self.kind][0] if self.magnitude is None else self.magnitude

    @model_validator(mode="after")
    def _check(self) -> InjectionRequest:
        m = self.value
        if self.kind == "shift":
            ok = -100.0 <= m <= 100.0 and m != 0.0
        else:
            ok = 0.0 < m <= (1.0 if self.kind == "errors" else 100.0)
        if not ok:  # NaN fails every comparison, so it lands here too
            raise ValueError(
                f"magnitude {m!r} is out of range for {self.kind}: give the {_MAGNITUDE[self.kind][1]}"
            )
        if self.duration is None:
            if self.kind != "shift":
                raise ValueError(
                    f"duration null (permanent) is allowed for shift only; give {self.kind} "
                    "a duration in seconds"
                )
        elif not (math.isfinite(self.duration) and self.duration > 0.0):
            raise ValueError(
                f"duration {self.duration!r} is not a positive number of seconds"
                + ("; use null for a permanent shift" if self.kind == "shift" else "")
            )
        return self


@dataclass(frozen=True)
class Injection:
    """An injection in force from ``started_at`` until ``ends_at`` (None: for ever)."""

    id: int
    kind: Kind
    magnitude: float
    started_at: float
    ends_at: float | None

    def active(self, t: float) -> bool:
        return self.started_at <= t and (self.ends_at is None or t < self.ends_at)

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "magnitude": self.magnitude,
            "started_at": self.started_at,
            "ends_at": self.ends_at,
            "duration": None if self.ends_at is None else self.ends_at - self.started_at,
            "remaining": None if self.ends_at is None else max(0.0, self.ends_at - now),
        }
