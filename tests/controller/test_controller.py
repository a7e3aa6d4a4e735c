"""The controller's cycle with a fake cluster: when it may act, and what it fences."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from havm.clock import ManualClock
from havm.config.load import parse_config_text
from havm.controller.controller import ClusterIO, Controller, FenceResult
from havm.errors import Conflict, NoQuorum
from havm.executor.records import ActionRecord, ActionRequest
from havm.membership.view import MembershipView
from tests.controller.test_snapshot import CONFIG

DEADTIME = 3.0  # the config's default
_CONFIG = parse_config_text(CONFIG, "t.yaml").config


@dataclass
class Peer:
    name: str
    member: bool
    state: str
    left: bool = False
    members: tuple[str, ...] = ()  # its membership, from its latest heartbeat


@dataclass
class FakeView:
    members: tuple[str, ...]
    peers: tuple[Peer, ...]
    quorate: bool = True
    controller: str | None = "n2"
    settled: bool = True
    stale: str = ""
    node: str = "n2"

    not_current = MembershipView.not_current  # the real sentence, from node and stale

    def peer(self, name: str) -> Peer:
        for p in self.peers:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass
class FakeCluster(ClusterIO):
    v: FakeView
    fenced: list[str] = field(default_factory=list)
    actions: list[tuple[str, str, str]] = field(default_factory=list)

    def view(self) -> Any:
        return self.v

    def cluster_config(self) -> Any:
        return _CONFIG  # one object, as a daemon's: a new one means the configuration changed

    async def report(self, node: str) -> dict[str, Any]:
        return {"probed": True, "states": {}}

    term: int = 1  # what office() grants; 0: it cannot be claimed
    terms: list[int] = field(default_factory=list)  # the term each action was sent in

    async def office(self) -> int:
        if not self.term:
            raise NoQuorum("n2 could not claim a controller term from a majority (n3: no answer): "
                           "no action is taken")
        return self.term

    async def execute_on(self, node: str, req: ActionRequest, term: int) -> ActionRecord:
        self.actions.append((node, req.rsc, req.action))
        self.terms.append(term)
        return ActionRecord(node, req.rsc, req.action, 0, 0.0, 0.0, "")

    async def fence(self, node: str, still_due: Callable[[], str | None]) -> FenceResult:
        self.fenced.append(node)
        return FenceResult.OFF


def test_a_peer_that_is_heard_but_not_yet_a_member_is_not_fenced_within_deadtime():
    # n1 is heard (alive) but does not list n2 yet: it is joining, not unclean
    view = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "alive"), Peer("n3", True, "alive")))
    io = FakeCluster(view)
    clock = ManualClock()
    ctl = Controller("n2", io, clock)

    async def go() -> None:
        assert await ctl.cycle() is False
        clock.advance(DEADTIME / 2)
        assert await ctl.cycle() is False
        assert io.fenced == [] and io.actions == []
        clock.advance(DEADTIME)  # still not a member after deadtime: a one-way link; now it is unclean
        await ctl.cycle()
        assert io.fenced == ["n1"]

    asyncio.run(go())


def test_a_dead_peer_is_fenced_before_its_resources_start_elsewhere():
    view = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")))
    io = FakeCluster(view)
    ctl = Controller("n2", io, ManualClock())

    async def go() -> None:
        await ctl.cycle()
        # n1 never reported to this controller: it may run a and b, so fence first
        assert io.fenced == ["n1"]
        assert sorted(r for _, r, a in io.actions if a == "start") == ["a", "b"]

    asyncio.run(go())


def test_actions_carry_the_term_claimed_before_the_first_one_and_none_run_without_it():
    view = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")))
    io = FakeCluster(view, term=0)
    ctl = Controller("n2", io, ManualClock())

    async def go() -> None:
        assert await ctl.cycle() is False  # no term: nothing is fenced, nothing started
        assert io.fenced == [] and io.actions == []
        io.term = 7
        await ctl.cycle()
        assert io.fenced == ["n1"] and len(io.actions) >= 2 and set(io.terms) == {7}

    asyncio.run(go())


def test_a_new_term_is_claimed_once_nothing_is_under_way_and_the_reports_are_read_again_after_it():
    # a start asked by the previous controller may reach n3 until the claim (it is refused
    # after it): the plan must rest on reports read after the claim
    calls: list[str] = []
    under_way = {"n3": {"changing": {"a": ["start"]}}}

    class Ordered(FakeCluster):
        async def office(self) -> int:
            calls.append("office")
            return await super().office()

        async def report(self, node: str) -> dict[str, Any]:
            calls.append(f"report {node}")
            return {"probed": True, "states": {}, **under_way.get(node, {})}

    view = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")))
    io = Ordered(view)
    ctl = Controller("n2", io, ManualClock())

    async def go() -> None:
        assert await ctl.cycle() is False  # n3 still runs a start: wait, and claim nothing yet
        assert "office" not in calls and io.actions == []
        under_way.clear()
        calls.clear()
        await ctl.cycle()
        assert calls == ["report n2", "report n3", "office", "report n2", "report n3"], calls
        assert io.fenced == ["n1"]
        calls.clear()
        await ctl.cycle()  # the term is held: one read per cycle again
        assert calls == ["report n2", "report n3", "office"], calls

    asyncio.run(go())


def test_a_controller_whose_own_view_is_stale_plans_nothing():
    # resumed from a freeze long enough to have been declared dead: it listens first
    view = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")),
                    stale="resumed 0.05s ago from a 4.00s stall: listening to peers again")
    io = FakeCluster(view)
    ctl = Controller("n2", io, ManualClock())

    async def go() -> None:
        assert await ctl.cycle() is False
        assert io.fenced == [] and io.actions == [] and not ctl.active
        io.v = replace(view, stale="")
        await ctl.cycle()
        assert io.fenced == ["n1"]

    asyncio.run(go())


def test_no_action_without_quorum_or_before_settling():
    for view in (FakeView(("n2",), (Peer("n1", False, "dead"), Peer("n3", False, "dead")), quorate=False,
                          controller=None),
                 FakeView(("n2", "n3"), (Peer("n1", False, "unknown"), Peer("n3", True, "alive")), settled=False)):
        io = FakeCluster(view)
        asyncio.run(Controller("n2", io, ManualClock()).cycle())
        assert io.fenced == [] and io.actions == []


def test_a_failing_fence_is_retried_with_backoff_never_skipped():
    view = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")))
    attempts: list[float] = []
    clock = ManualClock()

    config = parse_config_text(CONFIG, "t.yaml").config

    class Refusing(FakeCluster):
        def cluster_config(self) -> Any:
            return config  # one configuration: a new one would reset the backoff

        async def fence(self, node: str, still_due: Callable[[], str | None]) -> FenceResult:
            attempts.append(clock.monotonic())
            return FenceResult.FAILED

    io = Refusing(view)
    ctl = Controller("n2", io, clock)

    async def go() -> None:
        start = clock.monotonic()
        assert await ctl.cycle() is True  # a real failure: re-plan
        assert await ctl.cycle() is False  # at once: backing off, not another attempt
        clock.advance(1.0)
        await ctl.cycle()  # 1 s later: the second attempt
        clock.advance(1.0)
        assert await ctl.cycle() is False  # now 2 s between attempts
        clock.advance(1.0)
        await ctl.cycle()
        assert [round(t - start, 3) for t in attempts] == [0.0, 1.0, 3.0]
        # never recovered meanwhile: n1's resources were not started anywhere
        assert not [a for a in io.actions if a[2] == "start"]
        ctl.node_seen("n1")  # the node came back: the next loss starts over at once
        assert ctl._fence_retry == {}

    asyncio.run(go())


def test_a_membership_change_abandons_the_report_fetch_of_a_lost_node():
    # Chaos finding 2: the controller waited up to REPORT_TIMEOUT for the report of a
    # node cut off by a partition, while the other side took office and shot it. The
    # view change must end the wait at once, and the next cycle fence the lost node.
    view = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")))
    cancelled: list[str] = []

    class Partitioned(FakeCluster):
        async def report(self, node: str) -> dict[str, Any]:
            if node == "n1":  # behind the partition: the request hangs
                try:
                    await asyncio.Future()
                except asyncio.CancelledError:
                    cancelled.append(node)
                    raise
            return {"probed": True, "states": {}}

    io = Partitioned(view)
    ctl = Controller("n2", io, ManualClock())

    async def go() -> None:
        task = asyncio.get_running_loop().create_task(ctl.cycle())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not task.done()  # waiting for n1's report
        io.v = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")))
        ctl.poke("membership", abort=True)  # what the daemon's _on_view does on a view change
        for _ in range(10):
            await asyncio.sleep(0)
        assert task.done() and task.result() is False  # gave up on n1's report, no timeout waited
        assert cancelled == ["n1"] and io.fenced == []
        ctl._abort.clear()  # as the run loop does before the next cycle
        await ctl.cycle()
        assert io.fenced == ["n1"]

    asyncio.run(go())


def test_a_fence_is_abandoned_when_its_target_rejoins_and_nothing_of_it_is_recovered():
    # Chaos finding 3: a node resuming from a freeze decided to fence its healthy peer; the
    # peer was a member again 35 ms later, while the fence sat in its delay. The fence must
    # be given up (not taken as off, not retried as a failure) and n1's resources stay put.
    lost = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")))
    back = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")))
    reasons: list[str | None] = []

    class Rejoining(FakeCluster):
        async def fence(self, node: str, still_due: Callable[[], str | None]) -> FenceResult:
            self.fenced.append(node)
            reasons.append(still_due())  # the delay starts: n1 is still lost
            self.v = back  # ...and is a member again before it ends
            why = still_due()
            reasons.append(why)
            return FenceResult.ABANDONED if why else FenceResult.OFF

    io = Rejoining(lost)
    ctl = Controller("n2", io, ManualClock())

    async def go() -> None:
        assert await ctl.cycle() is False  # nothing to re-plan at once: the rejoin pokes
        assert reasons == [None, "n1 is a member again"]
        assert ctl.verdicts[-1].failed == ["fence_n1"] and ctl._abandoned == {"fence_n1"}
        assert "n1" not in ctl.fenced and ctl._fence_retry == {}
        assert not [a for a in io.actions if a[2] == "start"]  # n1's a and b not started elsewhere
        ctl.node_seen("n1")
        await ctl.cycle()  # on the new view n1 is a member that reported: no second fence
        assert io.fenced == ["n1"] and "n1" not in ctl.fenced

    asyncio.run(go())


def test_a_fence_is_abandoned_out_of_office_but_a_members_fence_is_kept():
    view = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")))
    io = FakeCluster(view)
    ctl = Controller("n2", io, ManualClock())
    lost = ctl._still_due("n1", view)
    escalated = ctl._still_due("n3", view)  # a member fenced (its stop failed): stays due while a member
    assert lost() is None and escalated() is None
    io.v = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")))
    assert lost() == "n1 is a member again" and escalated() is None
    io.v = FakeView(members=("n2", "n3"), peers=(Peer("n1", False, "dead"), Peer("n3", True, "alive")),
                    controller="n3")
    assert lost() == escalated() == "n2 is no longer the controller (controller: n3)"
    io.v = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")),
                    controller="n1")
    assert lost() == "n1 is a member again"  # both hold: the target's return is the news
    io.v = replace(view, stale="resumed 0.05s ago from a 4.00s stall: listening to peers again")
    assert lost() == escalated() == ("n2's membership view is not current (resumed 0.05s ago from a 4.00s "
                                     "stall: listening to peers again)")  # frozen in the delay: decide anew


def test_the_configured_action_limits_reach_the_transition():
    # six resources to start on three healthy nodes: two per node at once unless limited
    many = CONFIG.replace("  - {id: b, type: dummy}\n",
                          "".join(f"  - {{id: {r}, type: dummy}}\n" for r in "bcdef"))
    view = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")))

    def peaks(properties: str) -> tuple[Counter[str], int]:
        config = parse_config_text(many + properties, "t.yaml").config
        running: Counter[str] = Counter()
        peak: Counter[str] = Counter()
        total = [0, 0]  # now, peak

        class Counting(FakeCluster):
            def cluster_config(self) -> Any:
                return config

            async def execute_on(self, node: str, req: ActionRequest, term: int) -> ActionRecord:
                running[node] += 1
                total[0] += 1
                peak[node] = max(peak[node], running[node])
                total[1] = max(total[1], total[0])
                for _ in range(3):
                    await asyncio.sleep(0)
                running[node] -= 1
                total[0] -= 1
                return await super().execute_on(node, req, term)

        io = Counting(view)
        asyncio.run(Controller("n2", io, ManualClock()).cycle())
        assert sorted(r for _, r, a in io.actions if a == "start") == list("abcdef")
        return peak, total[1]

    assert peaks("") == (Counter({"n1": 2, "n2": 2, "n3": 2}), 6)  # defaults: 16 at once, none per node
    assert peaks("properties: {node_action_limit: 1}\n") == (Counter({"n1": 1, "n2": 1, "n3": 1}), 3)
    assert peaks("properties: {batch_limit: 2}\n")[1] == 2


def test_a_new_controller_plans_only_once_nothing_is_under_way():
    # Chaos finding 4: n1 rejoined and took office while a start of vm1 on n3, launched by
    # the previous controller, was under way. n3's report read "stopped" until it ended,
    # so n1 started vm1 on n1 too: one VM running on two nodes. The reports of members
    # with actions under way (or of an old controller still driving its transition) are
    # not planned from: the controller waits, then plans from what the actions did.
    view = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")),
                    controller="n2")
    reports: dict[str, dict[str, Any]] = {
        "n1": {"controlling": ["start a on n3"]},  # lost office, finishing what it started
        "n3": {"changing": {"a": ["start"]}},
    }

    class Busy(FakeCluster):
        async def report(self, node: str) -> dict[str, Any]:
            return {"probed": True, "states": {}, **reports.get(node, {})}

    io = Busy(view)
    ctl = Controller("n2", io, ManualClock())

    async def go() -> None:
        assert ctl.under_way({n: {"probed": True, **r} for n, r in reports.items()}) == [
            "n1 still driving start a on n3", "start a on n3"]
        assert await ctl.cycle() is False
        reports["n1"] = {}
        assert await ctl.cycle() is False  # n3's start still under way
        assert io.actions == [] and io.fenced == []
        reports["n3"] = {"states": {"a": {"role": "started"}}}  # the start ended: a runs on n3
        await ctl.cycle()
        assert [x for x in io.actions if x[2] == "start"] == [(io.actions[0][0], "b", "start")]
        # the controller's own report of its own transition is not a reason to wait
        assert ctl.under_way({"n2": {"controlling": ["start b on n1"]}}) == []

    asyncio.run(go())


def test_an_action_on_a_node_that_leaves_is_given_up_and_the_node_fenced_at_once():
    # A start (or a VM's stop) under way on a node that dies would hold the transition, and so
    # the dead node's fence and the recovery of everything, until the request's timeout. Once the
    # node is no longer a member the action is given up (outcome unknown: the node is unclean)
    # and the next cycle fences it before recovering anything.
    members = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")))
    cancelled: list[tuple[str, str]] = []
    hang: set[str] = set()

    class Hanging(FakeCluster):
        async def execute_on(self, node: str, req: ActionRequest, term: int) -> ActionRecord:
            self.actions.append((node, req.rsc, req.action))
            if not hang and node != "n2":
                hang.add(node)  # the first remote action never answers: its node is dying
            if node in hang:
                try:
                    await asyncio.Future()
                except asyncio.CancelledError:
                    cancelled.append((node, req.rsc))
                    raise
            return ActionRecord(node, req.rsc, req.action, 0, 0.0, 0.0, "")

    io = Hanging(members)
    events: list[str] = []
    ctl = Controller("n2", io, ManualClock(), emit=lambda kind, text, **f: events.append(text))
    ctl.observe(members)

    async def go() -> None:
        task = asyncio.get_running_loop().create_task(ctl.cycle())
        for _ in range(20):
            await asyncio.sleep(0)
        assert hang and not task.done(), io.actions  # waiting for the start on the dying node
        lost = next(iter(hang))
        rsc = next(r for n, r, a in io.actions if n == lost)
        kept = tuple(n for n in ("n1", "n2", "n3") if n != lost)
        io.v = FakeView(members=kept, peers=tuple(Peer(n, n in kept, "alive" if n in kept else "dead")
                                                  for n in ("n1", "n3")))
        ctl.observe(io.v)
        ctl.poke("membership", abort=True)
        for _ in range(20):
            await asyncio.sleep(0)
        assert cancelled == [(lost, rsc)]
        assert any(f"{lost} left the membership while start {rsc} ran there" in e for e in events), events
        assert task.done() and task.result() is True  # a failed action: re-plan at once
        ctl._abort.clear()
        await asyncio.wait_for(ctl.cycle(), 1)
        assert io.fenced == [lost]
        restarted = [n for n, r, a in io.actions if r == rsc and a == "start"]
        assert restarted[0] == lost and lost not in restarted[1:] and len(restarted) == 2, io.actions

    asyncio.run(go())


def test_a_refused_action_is_planned_again_shortly_not_in_a_hot_loop():
    # A member whose own view is not quorate yet (it just joined) refuses starts; the
    # controller must neither log it as a crash nor re-plan at once, again and again.
    view = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")))
    refusals: list[str] = []

    class Refusing(FakeCluster):
        async def execute_on(self, node: str, req: ActionRequest, term: int) -> ActionRecord:
            if node != "n2" and not refusals:
                refusals.append(node)
                raise Conflict(f"{node} has no quorum (minority): {req.action} {req.rsc} refused")
            return await super().execute_on(node, req, term)

    io = Refusing(view)
    ctl = Controller("n2", io, ManualClock())

    async def go() -> None:
        assert await ctl.cycle() is False  # a and b spread over the three nodes: one start refused
        assert len(refusals) == 1 and ctl._refused and not ctl._poke.is_set()  # no re-plan at once
        await asyncio.sleep(0.6)
        assert ctl._poke.is_set()  # ...but after REFUSED_RETRY
        await ctl.cycle()  # (the fake reports nothing running: b is started again too)
        assert [(n, r) for n, r, a in io.actions if a == "start" and r == "a"] == [(refusals[0], "a")]

    asyncio.run(go())


MIGRATING = CONFIG.replace("  - {id: a, type: dummy}\n  - {id: b, type: dummy}\n",
                           "  - {id: m, type: dummy, meta: {allow_migrate: true}}\n"
                           "constraints:\n  - {location: m, node: n3, score: 100}\n")


def test_a_failed_migration_resumes_the_source_only_once_the_targets_copy_is_gone():
    # migrate_from failed on n3: the target may have resumed the guest before failing (or
    # stopped answering). Resuming the source copy is safe only once the target's copy is
    # known to be gone (migrate_abort succeeded); otherwise the source is left as it is.
    config = parse_config_text(MIGRATING, "t.yaml").config
    view = FakeView(members=("n1", "n2", "n3"), peers=(Peer("n1", True, "alive"), Peer("n3", True, "alive")))

    for abort_rc, recovered in ((0, True), (1, False)):
        class Migrating(FakeCluster):
            abort = abort_rc

            def cluster_config(self) -> Any:
                return config

            async def report(self, node: str) -> dict[str, Any]:
                return {"probed": True, "states": {"m": {"role": "started"}} if node == "n1" else {}}

            async def execute_on(self, node: str, req: ActionRequest, term: int) -> ActionRecord:
                self.actions.append((node, req.rsc, req.action))
                rc = {"migrate_from": 1, "migrate_abort": self.abort}.get(req.action, 0)
                return ActionRecord(node, req.rsc, req.action, rc, 0.0, 0.0, "")

        io = Migrating(view)
        asyncio.run(Controller("n2", io, ManualClock()).cycle())
        steps = [(n, a) for n, _, a in io.actions]
        assert steps[:4] == [("n3", "migrate_prepare"), ("n1", "migrate_to"), ("n3", "migrate_from"),
                             ("n3", "migrate_abort")], steps
        assert (("n1", "migrate_recover") in steps) is recovered, (abort_rc, steps)
