"""The pipeline's defaults live in `DEFAULTS`: every place that has a default reads it."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from vigil.detection.calibration import BandCalibration, RecordCalibration
from vigil.detection.decision import DecisionConfig
from vigil.detection.detectors import DEFAULT_MEMBERS
from vigil.detection.pipeline import HOLD_LEVEL, build_pipeline, pipeline_from
from vigil.detection.settings import DEFAULT_THRESHOLD, DEFAULTS, Settings
from vigil.detection.tail import TailCalibration
from vigil.errors import ConfigError


def defaults_of(function: Any) -> dict[str, Any]:
    return {k: p.default for k, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_build_pipeline_defaults_are_the_settings_defaults() -> None:
    given = defaults_of(build_pipeline)
    assert given.pop("params") is None  # no parameters: each detector's own defaults
    assert DEFAULTS.params == {}
    assert given == {f.name: getattr(DEFAULTS, f.name) for f in dataclasses.fields(Settings) if f.name != "params"}


def test_the_calibration_defaults_are_the_pipelines() -> None:
    given = defaults_of(RecordCalibration)
    assert (given["threshold"], given["memory"], given["min_samples"], given["hold"]) == (
        DEFAULTS.decision.threshold, DEFAULTS.calibration_window, DEFAULTS.calibration_min_samples, DEFAULTS.hold,
    )
    assert given["level"] == HOLD_LEVEL == DEFAULT_THRESHOLD
    assert defaults_of(BandCalibration)["threshold"] == DEFAULTS.decision.threshold
    tail = defaults_of(TailCalibration)
    assert (tail["threshold"], tail["level"]) == (DEFAULTS.decision.threshold, HOLD_LEVEL)


def test_the_default_pipeline_is_built_as_the_settings_say() -> None:
    for p in (build_pipeline(), pipeline_from()):
        assert p.settings == DEFAULTS
        assert [name for name, _ in p.members] == list(DEFAULT_MEMBERS)
        assert p.decision.config == DecisionConfig() == DEFAULTS.decision
        assert p.hold == DEFAULTS.hold and p.valid_range is None
        for cal in p.calibrations:
            assert isinstance(cal, TailCalibration)
            assert (cal.threshold, cal.memory, cal.min_samples, cal.level) == (
                DEFAULTS.decision.threshold, DEFAULTS.calibration_window, DEFAULTS.calibration_min_samples, HOLD_LEVEL,
            )
    for cal in pipeline_from(dataclasses.replace(DEFAULTS, calibration="record")).calibrations:
        assert isinstance(cal, RecordCalibration)
        assert (cal.threshold, cal.memory, cal.min_samples) == (
            DEFAULTS.decision.threshold, DEFAULTS.calibration_window, DEFAULTS.calibration_min_samples,
        )


def test_build_pipeline_is_pipeline_from_the_settings_its_arguments_make() -> None:
    decision = DecisionConfig(threshold=0.99, k=2, n=3)
    p = build_pipeline("ewma", {"ewma": {"span": 5}}, decision, calibrate=False, valid_range=(0.0, 100.0), hold=3)
    assert p.settings == dataclasses.replace(
        DEFAULTS, detector="ewma", params={"ewma": {"span": 5}}, decision=decision, calibrate=False,
        valid_range=(0.0, 100.0), hold=3,
    )
    assert isinstance(p.calibrations[0], BandCalibration) and p.hold == 0
    assert p.members[0][1].params()["span"] == 5


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        pytest.param({"hold": -1}, "hold is -1", id="hold"),
        pytest.param({"valid_range": (5.0, 1.0)}, "valid_range is [5.0, 1.0]", id="valid_range"),
        pytest.param({"calibration_window": 1}, "memory is 1", id="calibration_window"),
        pytest.param({"detector": "nope"}, "detector is 'nope'", id="detector"),
        pytest.param({"params": {"zscore": {}}}, "parameters given for zscore", id="params"),
    ],
)
def test_a_wrong_setting_is_refused_by_name(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        pipeline_from(dataclasses.replace(DEFAULTS, **change))


def test_settings_and_decision_config_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.hold = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.decision.threshold = 0.5  # type: ignore[misc]
