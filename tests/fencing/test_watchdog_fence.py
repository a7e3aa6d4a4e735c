"""Fencing by the target's own watchdog (no device can fence it): the fencer asks it
to stop feeding, then counts it fenced only fencing_watchdog_timeout after its
acknowledgement; a member that does not acknowledge is never taken as fenced; a
lost node follows the survivors' rule (the loss clock). ManualClock, no waiting."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from havm.clock import ManualClock
from havm.config.fencing import Fencing
from havm.config.watchdog import Watchdog
from havm.daemon.fencing import fence_budget, watchdog_fence_config
from havm.errors import NotReachable
from havm.fencing.history import FenceHistory, summarize
from havm.fencing.policy import Fencer
from havm.fencing.watchdog import (
    ASK_TIMEOUT,
    Ack,
    WatchdogFence,
    WatchdogFenceConfig,
    WatchdogFenceState,
    next_step,
)
from tests.fencing.fakes import Sleeps

FWT = 5.5
GRACE = 1.0


def state(**kw) -> WatchdogFenceState:
    base = {"node": "n3", "timeout": FWT, "grace": GRACE, "member": True}
    base.update(kw)
    return WatchdogFenceState(**base)


@pytest.mark.parametrize(("kw", "action", "wait"), [
    ({}, "ask", 0.0),  # a member: ask it
    ({"ask_error": "refused"}, "failed", 0.0),  # a member that does not acknowledge: never assumed
    ({"member": False, "ask_error": "no answer"}, "failed", 0.0),
    ({"acked_for": 0.0, "reset_in": 3.0}, "wait", FWT),  # acknowledged: the whole timeout from then
    ({"acked_for": 4.0, "reset_in": 3.0, "member": False}, "wait", FWT - 4.0),  # gone early: still waits
    ({"acked_for": FWT, "reset_in": 3.0, "member": False}, "fenced", 0.0),
    ({"acked_for": FWT, "reset_in": 3.0}, "wait", 0.2),  # still a member at the end: a grace to go
    ({"acked_for": FWT + GRACE, "reset_in": 3.0}, "failed", 0.0),  # ... then it was not reset
    ({"acked_for": 0.0, "reset_in": FWT}, "failed", 0.0),  # its watchdog resets it too late
    # not a member: the survivors' rule, from the loss clock
    ({"member": False, "lost_for": FWT}, "fenced", 0.0),
    ({"member": False, "lost_for": 2.0}, "wait", FWT - 2.0),
    ({"member": False, "lost_for": None}, "failed", 0.0),  # a member still hears it / no quorum
])
def test_next_step(kw, action, wait):
    step = next_step(state(**kw))
    assert (step.action, round(step.wait, 6)) == (action, wait), step
    assert step.reason


class Target:
    """The cluster as the fencer sees it: n3 a member until its watchdog resets it
    ``reset_after`` seconds after it acknowledged (None: never reset)."""

    def __init__(self, clock: ManualClock, answer: Ack | Exception | None = None, member: bool = True,
                 reset_after: float | None = 3.0, lost_since: float | None = None) -> None:
        self.clock = clock
        self.answer = answer if answer is not None else Ack("n3", 3.0)
        self.is_member = member
        self.reset_after = reset_after
        self.lost_since = lost_since
        self.acked_at: float | None = None
        self.asked: list[tuple[str, str]] = []

    def member(self, node: str) -> bool:
        if self.acked_at is not None and self.reset_after is not None:
            return self.clock.monotonic() < self.acked_at + self.reset_after
        return self.is_member

    def lost_for(self, node: str) -> float | None:
        return None if self.lost_since is None else self.clock.monotonic() - self.lost_since

    async def ask(self, node: str, requested_by: str) -> Ack:
        self.asked.append((node, requested_by))
        if isinstance(self.answer, Exception):
            raise self.answer
        self.acked_at = self.clock.monotonic()
        return self.answer


def fence(target: Target, watchdog: bool = True, node: str = "n3"):
    clock = target.clock
    sleeps = Sleeps(clock)
    cfg = WatchdogFenceConfig(FWT, GRACE) if watchdog else None
    wd = WatchdogFence(lambda n: cfg, target.member, target.lost_for, target.ask, clock, sleep=sleeps)
    history = FenceHistory(None)
    fencer = Fencer("n1", lambda: Fencing(), history, clock, sleep=sleeps, watchdog=wd)
    t0 = clock.monotonic()
    out = asyncio.run(fencer.fence(node, "operator (havm node fence)"))
    return out, clock.monotonic() - t0, history, sleeps


def test_a_member_is_fenced_fencing_watchdog_timeout_after_it_acknowledged():
    target = Target(ManualClock())
    out, took, history, _ = fence(target)
    assert target.asked == [("n3", "operator (havm node fence)")]
    assert out.ok and out.level == 1 and not out.already_off
    assert took >= FWT  # never before the timeout since the acknowledgement
    [a] = out.attempts
    assert (a.device, a.agent, a.ok, a.executor) == ("watchdog", "watchdog", True, "n1")
    assert history.attempts() == [a]  # in the history, as every attempt
    assert summarize(history.attempts())["failing"] == []


def test_a_member_that_does_not_acknowledge_is_not_fenced():
    target = Target(ManualClock(), answer=NotReachable("n3 did not answer on any link"))
    out, took, history, sleeps = fence(target)
    assert not out.ok and "did not acknowledge" in out.error and "did not answer" in out.error
    assert sleeps.slept == []  # failed at once: no wait can make it safe
    [a] = history.attempts()
    assert (a.device, a.ok) == ("watchdog", False)
    assert summarize(history.attempts())["failing"][0]["node"] == "n3"


def test_a_member_not_reset_by_its_watchdog_is_not_fenced():
    target = Target(ManualClock(), reset_after=None)  # acknowledged, yet still a member
    out, took, _, _ = fence(target)
    assert not out.ok and "did not reset it" in out.error
    assert took >= FWT + GRACE


def test_a_watchdog_slower_than_fencing_watchdog_timeout_is_refused():
    target = Target(ManualClock(), answer=Ack("n3", FWT + 1))
    out, _, _, sleeps = fence(target)
    assert not out.ok and "resets it only" in out.error and sleeps.slept == []


def test_a_lost_node_is_fenced_once_lost_for_fencing_watchdog_timeout():
    clock = ManualClock()
    target = Target(clock, member=False, lost_since=clock.monotonic() - 2.0)
    out, took, _, sleeps = fence(target)
    assert out.ok and target.asked == []  # not asked: it is gone
    assert took == pytest.approx(FWT - 2.0) and sleeps.slept == [pytest.approx(FWT - 2.0)]
    target = Target(clock, member=False, lost_since=clock.monotonic() - FWT)
    out, took, _, _ = fence(target)
    assert out.ok and out.already_off and took == 0.0


def test_a_node_not_lost_to_the_whole_partition_is_not_fenced():
    target = Target(ManualClock(), member=False, lost_since=None)
    out, _, _, sleeps = fence(target)
    assert not out.ok and "not lost to this whole partition" in out.error and target.asked == []


def test_without_a_watchdog_the_fence_still_fails():
    out, _, _, _ = fence(Target(ManualClock()), watchdog=False)
    assert not out.ok and out.error == "no fence device can fence n3"


def test_the_forwarding_budget_covers_the_watchdog_wait():
    config = SimpleNamespace(fencing=Fencing(), node_names=["n1", "n2", "n3"], timing=SimpleNamespace(deadtime=1.0),
                             watchdog=Watchdog(backend="lab", timeout=3, interval=0.5),
                             properties=SimpleNamespace(fencing_watchdog_timeout=FWT))
    assert watchdog_fence_config(config, "n3") == WatchdogFenceConfig(FWT, 1.0)  # type: ignore[arg-type]
    assert fence_budget(config, "n3") == ASK_TIMEOUT + FWT + 1.0  # type: ignore[arg-type]
    config.watchdog = Watchdog()
    assert watchdog_fence_config(config, "n3") is None  # type: ignore[arg-type]
