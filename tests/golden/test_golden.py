"""Run every golden scenario; also check each one is stable once its transition is applied."""

from __future__ import annotations

import pytest

from havm.scheduler import apply, plan
from tests.golden.runner import expected, load, run, scenarios

NAMES = scenarios()


def test_there_are_enough_scenarios() -> None:
    assert len(NAMES) >= 60


@pytest.mark.parametrize("name", NAMES)
def test_scenario(name: str) -> None:
    assert run(name) == expected(name)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_is_stable_after_applying(name: str) -> None:
    spec, state = load(name)
    t = plan(spec, state)
    again = plan(spec, apply(state, t))
    assert [a.id for a in again.real_actions] == []
    assert again.placement == t.placement
