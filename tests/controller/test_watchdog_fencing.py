"""Watchdog fencing on the controller: recovery waits fencing_watchdog_timeout from
when *this* node saw the loss (while quorate), never less; failed stops escalate;
a fence that cannot happen blocks recovery for good. Time is a ManualClock."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any

from havm.clock import ManualClock
from havm.config.load import parse_config_text
from havm.controller.controller import Controller
from havm.controller.selffence import LossClock, fence_verdict
from tests.controller.test_controller import FakeCluster, Peer
from tests.controller.test_controller import FakeView as View
from tests.controller.test_snapshot import CONFIG

NODES = CONFIG.split("fencing:")[0]  # three nodes, resources a and b, no fence device
WATCHDOG = NODES + """\
watchdog: {backend: lab, device: "/lab/{node}.sock", timeout: 5, interval: 1}
properties: {fencing_watchdog_timeout: 20}
"""
FWT = 20.0


def lost(name: str) -> Peer:
    return Peer(name, False, "dead")


@functools.cache
def _parsed(text: str) -> Any:
    return parse_config_text(text, "t.yaml").config


def member(name: str, *members: str) -> Peer:
    return Peer(name, True, "alive", members=members)


@dataclass
class Cluster(FakeCluster):
    text: str = WATCHDOG
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    def cluster_config(self) -> Any:
        # one object per text, as a daemon's: a new object means the configuration changed
        return _parsed(self.text)

    async def report(self, node: str) -> dict[str, Any]:
        return {"probed": True, "states": self.states.get(node, {})}


def starts(io: Cluster) -> list[str]:
    return sorted(r for _, r, a in io.actions if a == "start")


def n1_lost() -> View:
    return View(("n2", "n3"), (lost("n1"), member("n3", "n2", "n3")))


def test_a_lost_self_fencing_node_counts_as_fenced_only_after_fencing_watchdog_timeout():
    io = Cluster(n1_lost())
    clock = ManualClock()
    events: list[tuple[str, str]] = []
    ctl = Controller("n2", io, clock, emit=lambda kind, text, **f: events.append((kind, text)))

    async def go() -> None:
        assert await ctl.cycle() is False  # only a watchdog wait failed: no immediate re-plan
        assert starts(io) == [] and io.fenced == []  # no device is called
        assert ctl.fence_waits()["n1"]["state"] == "wait"
        clock.advance(FWT - 0.5)
        await ctl.cycle()
        assert starts(io) == []
        clock.advance(0.5)
        await ctl.cycle()
        assert starts(io) == ["a", "b"] and io.fenced == []
        assert "n1" in ctl.fenced and ctl.fence_waits() == {}

    asyncio.run(go())
    kinds = [k for k, _ in events]
    assert "fence.watchdog-wait" in kinds and kinds.count("fence") == 1  # taken as fenced, once


def test_a_new_controller_starts_its_own_clock_when_it_sees_the_loss():
    io = Cluster(View(("n1", "n2", "n3"), (member("n1", "n1", "n2", "n3"), member("n3", "n1", "n2", "n3")),
                      controller="n1"))
    clock = ManualClock()
    ctl = Controller("n2", io, clock)

    async def go() -> None:
        await ctl.cycle()  # not the controller: observes only
        clock.advance(100.0)  # long after anything: the old controller's memory is not ours
        io.v = n1_lost()  # n1 (the controller) dies; n2 takes office now
        await ctl.cycle()
        clock.advance(FWT - 1)
        await ctl.cycle()
        assert starts(io) == []
        clock.advance(1)
        await ctl.cycle()
        assert starts(io) == ["a", "b"]

    asyncio.run(go())


def test_a_loss_seen_without_quorum_does_not_count():
    # n2 was alone in a minority (sees n1 and n3 lost); long after, n3 comes back and
    # n2 is quorate again: n1's wait starts now, not when n2 first lost it
    io = Cluster(View(("n2",), (lost("n1"), lost("n3")), quorate=False, controller=None))
    clock = ManualClock()
    ctl = Controller("n2", io, clock)

    async def go() -> None:
        await ctl.cycle()
        clock.advance(500.0)
        io.v = n1_lost()
        await ctl.cycle()
        assert starts(io) == []
        clock.advance(FWT)
        await ctl.cycle()
        assert starts(io) == ["a", "b"]

    asyncio.run(go())


def test_a_node_a_member_still_hears_is_not_lost_whatever_the_time():
    # non-transitive split: n2 lost n1, but n3 (n2's member) still lists n1 as its member:
    # n1 may be quorate with n3 and feeding its watchdog
    io = Cluster(View(("n2", "n3"), (lost("n1"), member("n3", "n1", "n2", "n3"))))
    clock = ManualClock()
    ctl = Controller("n2", io, clock)

    async def go() -> None:
        for _ in range(3):
            await ctl.cycle()
            clock.advance(FWT)
        assert starts(io) == [] and "n1" not in ctl.fenced

    asyncio.run(go())


def test_without_device_and_without_watchdog_recovery_never_proceeds():
    io = Cluster(n1_lost(), text=NODES)
    clock = ManualClock()
    events: list[str] = []
    ctl = Controller("n2", io, clock, emit=lambda kind, text, **f: events.append(text))

    async def go() -> None:
        for _ in range(3):
            assert await ctl.cycle() is False  # no hot loop on a fence that cannot happen
            clock.advance(1000.0)
        assert starts(io) == [] and io.fenced == []
        assert ctl.fence_waits()["n1"]["state"] == "impossible"

    asyncio.run(go())
    assert sum("cannot fence n1" in t for t in events) == 1  # said once as an event, logged every cycle


def test_a_failed_stop_escalates_to_fencing_by_a_device():
    text = NODES + "fencing:\n  devices: [{id: power, agent: lab, params: {lab_dir: /x}}]\n"
    io = Cluster(View(("n1", "n2", "n3"), (member("n1", "n1", "n2", "n3"), member("n3", "n1", "n2", "n3"))),
                 text=text, states={"n1": {"a": {"role": "stop-failed"}}})
    ctl = Controller("n2", io, ManualClock())
    asyncio.run(ctl.cycle())
    assert io.fenced == ["n1"]
    assert "a" in starts(io)  # restarted elsewhere only after the fence
    assert not any(node == "n1" and action == "start" for node, _, action in io.actions)


def test_a_failed_stop_on_a_self_fencing_node_waits_for_its_watchdog():
    io = Cluster(View(("n1", "n2", "n3"), (member("n1", "n1", "n2", "n3"), member("n3", "n1", "n2", "n3"))),
                 states={"n1": {"a": {"role": "stop-failed"}}})
    clock = ManualClock()
    ctl = Controller("n2", io, clock)

    async def go() -> None:
        await ctl.cycle()
        clock.advance(1000.0)  # n1 still a member: its policy holds its watchdog, it will be reset
        await ctl.cycle()
        assert "a" not in starts(io) and io.fenced == []
        io.v = n1_lost()  # the watchdog reset it
        await ctl.cycle()
        clock.advance(FWT)
        await ctl.cycle()
        assert "a" in starts(io)

    asyncio.run(go())


def test_ignore_policy_acts_without_quorum_and_freeze_does_not():
    for policy, acts in (("ignore", True), ("freeze", False), ("stop", False)):
        text = NODES + f"properties: {{no_quorum_policy: {policy}, fencing_enabled: false}}\n"
        io = Cluster(View(("n2",), (lost("n1"), lost("n3")), quorate=False, controller=None), text=text)
        asyncio.run(Controller("n2", io, ManualClock()).cycle())
        assert (starts(io) == ["a", "b"]) is acts, policy


def test_loss_clock_and_verdicts_are_pure():
    c = LossClock()
    c.observe(n1_lost(), "n2", ["n1", "n2", "n3"], 10.0)
    c.observe(n1_lost(), "n2", ["n1", "n2", "n3"], 15.0)
    assert c.waited("n1", 16.0) == 6.0 and c.waited("n3", 16.0) is None
    c.observe(View(("n1", "n2", "n3"), ()), "n2", ["n1", "n2", "n3"], 17.0)  # n1 is back
    assert c.waited("n1", 18.0) is None
    assert fence_verdict("n1", True, False, 19.9, 20.0).state == "wait"
    assert fence_verdict("n1", True, False, 20.0, 20.0).state == "fenced"
    assert fence_verdict("n1", False, True, None, 20.0).state == "device"
    assert fence_verdict("n1", False, False, 99.0, 20.0).state == "impossible"
