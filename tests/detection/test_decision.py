from __future__ import annotations

import numpy as np
import pytest

from vigil.detection.decision import Decision, DecisionConfig, Event
from vigil.errors import ConfigError


def run(config: DecisionConfig, score: list[float], x: list[float] | None = None, expected: float = 0.0,
        holding: list[bool] | None = None, escalated: list[bool] | None = None,
        ) -> tuple[np.ndarray, np.ndarray, list[Event]]:
    d = Decision(config, ["m"])
    st = d.new_state(1)
    sc = np.array([score], dtype=float)
    xs = np.array([x if x is not None else [1.0] * len(score)], dtype=float)
    t = np.arange(sc.shape[1], dtype=float)[None]
    exp = np.full(sc.shape, expected)
    flags = [None if f is None else np.array([f]) for f in (holding, escalated)]
    hot, is_open, opened, events = d.update(st, np.array([0]), t, xs, sc, exp, exp - 1, exp + 1, sc[None], *flags)
    assert opened.sum() == sum(e.state == "firing" for e in events)  # where events opened (k of n confirmed)
    return hot, is_open, events


H, L = 1.0, 0.0  # hot and calm scores for threshold 0.5


def test_one_event_per_incident_with_start_end_and_peak() -> None:
    c = DecisionConfig(threshold=0.5, resolve_after=2)
    hot, is_open, events = run(c, [L, H, 0.9, L, H, L, L, L])
    assert [e.state for e in events] == ["firing", "resolved"]
    assert events[0].started_at == 1 and events[1].ended_at == 4
    assert events[1].peak_score == 1.0 and events[1].peak_at == 1
    assert is_open[0].tolist() == [False, True, True, True, True, True, False, False]


def test_k_of_n_persistence_ignores_lone_spikes() -> None:
    c = DecisionConfig(threshold=0.5, k=3, n=5)
    _, _, events = run(c, [H, L, L, L, L, H, L, L, L, L])
    assert events == []
    _, is_open, events = run(c, [L, H, L, H, L, H, L, L])
    assert [e.state for e in events] == ["firing"]
    assert events[0].started_at == 1  # the first hot sample of the run, not the confirming one
    assert is_open[0].tolist() == [False, False, False, False, False, True, True, True]


def test_cooldown_holds_off_a_second_event() -> None:
    c = DecisionConfig(threshold=0.5, resolve_after=1, cooldown=3)
    _, _, events = run(c, [H, L, H, H, L, H, L])
    assert [(e.state, e.started_at) for e in events] == [
        ("firing", 0), ("resolved", 0), ("firing", 5), ("resolved", 5)
    ]


def test_missing_scores_change_nothing() -> None:
    c = DecisionConfig(threshold=0.5, resolve_after=2)
    nan = float("nan")
    _, is_open, events = run(c, [H, nan, nan, nan, L, L])
    assert [e.state for e in events] == ["firing", "resolved"]
    assert is_open[0].tolist() == [True, True, True, True, True, False]


@pytest.mark.parametrize(
    ("config", "x", "fires"),
    [
        pytest.param(DecisionConfig(threshold=0.5, direction="above"), 5.0, True, id="above-up"),
        pytest.param(DecisionConfig(threshold=0.5, direction="above"), -5.0, False, id="above-down"),
        pytest.param(DecisionConfig(threshold=0.5, direction="below"), -5.0, True, id="below-down"),
        pytest.param(DecisionConfig(threshold=0.5, min_abs_deviation=6), 5.0, False, id="abs-too-small"),
        pytest.param(DecisionConfig(threshold=0.5, min_abs_deviation=4), 5.0, True, id="abs-enough"),
        pytest.param(DecisionConfig(threshold=0.5, min_rel_deviation=0.5), 12.0, False, id="rel-too-small"),
        pytest.param(DecisionConfig(threshold=0.5, min_rel_deviation=0.5), 16.0, True, id="rel-enough"),
    ],
)
def test_gates(config: DecisionConfig, x: float, fires: bool) -> None:
    expected = 10.0 if config.min_rel_deviation else 0.0
    _, _, events = run(config, [H], [x], expected=expected)
    assert bool(events) == fires


def test_member_scores_at_peak_are_reported() -> None:
    d = Decision(DecisionConfig(threshold=0.5), ["ewma", "zscore"])
    st = d.new_state(1)
    one = np.ones((1, 1))
    members = np.array([[[0.9]], [[0.2]]])
    _, _, _, events = d.update(st, np.array([0]), 0 * one, one, 0.9 * one, 0 * one, -one, one, members)
    assert events[0].detectors == {"ewma": 0.9, "zscore": 0.2}


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        pytest.param({"k": 4, "n": 3}, "k", id="k-over-n"),
        pytest.param({"n": 0}, "n", id="n-zero"),
        pytest.param({"direction": "up"}, "direction", id="direction"),
        pytest.param({"resolve_after": 0}, "resolve_after", id="resolve-after-zero"),
        pytest.param({"min_abs_deviation": -1.0}, "min_abs_deviation", id="negative-deviation"),
    ],
)
def test_bad_config_names_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key} is"):
        DecisionConfig(**kwargs)  # type: ignore[arg-type]


def test_an_event_does_not_resolve_while_its_incident_is_held() -> None:
    c = DecisionConfig(threshold=0.5, resolve_after=2)
    held = [False, True, True, True, True, False, False, False]
    _, is_open, events = run(c, [L, H, L, L, L, L, L, L], holding=held)
    assert is_open[0].tolist() == [False, True, True, True, True, True, False, False]
    assert [e.state for e in events] == ["firing", "resolved"] and events[1].ended_at == 1
    _, is_open, _ = run(c, [L, H, L, L, L, L, L, L])  # without the hold: two quiet samples end it
    assert is_open[0].tolist() == [False, True, True, False, False, False, False, False]


def test_an_escalation_ends_the_open_event_and_opens_a_new_one() -> None:
    c = DecisionConfig(threshold=0.5, resolve_after=3)
    worse = [False, False, False, True, False, False, False, False]
    _, is_open, events = run(c, [L, H, 0.9, H, L, L, L, L], x=[0, 5, 5, 50, 0, 0, 0, 0], escalated=worse)
    assert [(e.state, e.number, e.started_at) for e in events] == [
        ("firing", 1, 1), ("resolved", 1, 1), ("firing", 2, 3), ("resolved", 2, 3)]
    assert events[1].observed == 5 and events[3].observed == 50
    assert is_open[0, 3] and not is_open[0, -1]
    _, _, events = run(c, [L, H, 0.9, H, L, L, L, L], x=[0, 5, 5, 50, 0, 0, 0, 0])  # no escalation: one event
    assert [e.state for e in events] == ["firing", "resolved"]
