"""run_graph: dependencies, failure and abort, and the action limits (batch_limit,
node_action_limit, migration_limit) with fences never throttled.

A fake ``do`` counts, by its own reading of each action (not throttle.py's), what
runs on every node at each moment; each action takes a few event-loop turns, of
varying length, so actions overlap and finish out of order."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from havm.controller.graph import GraphResult, run_graph
from havm.controller.throttle import Limits
from havm.scheduler.transition import Action, Transition


def act(id: str, op: str = "start", node: str | None = "n1", target: str | None = None,
        pseudo: bool = False) -> Action:
    return Action(id, op, node, resource=None if op == "fence" else id.split("_")[0], target=target,
                  pseudo=pseudo)


def transition(actions: list[Action], after: dict[str, tuple[str, ...]] | None = None) -> Transition:
    return Transition(tuple(actions), after or {}, {})


class Recorder:
    """The fake executor: records the launch order and the peak concurrency."""

    def __init__(self, fail: frozenset[str] = frozenset(), turns: dict[str, int] | None = None) -> None:
        self.fail = fail
        self.turns = turns or {}
        self.started: list[str] = []
        self.finished: list[str] = []
        self.jobs: Counter[str] = Counter()  # node -> resource actions running there now
        self.migrating: Counter[str] = Counter()
        self.running = 0  # resource actions (not fences) running in the cluster
        self.peak_jobs: Counter[str] = Counter()
        self.peak_migrating: Counter[str] = Counter()
        self.peak_running = 0
        self.fences_beside: list[int] = []  # resource actions running when each fence started

    async def do(self, a: Action) -> bool:
        self.started.append(a.id)
        if a.op == "fence":
            self.fences_beside.append(self.running)
            await self._turns(a)
            self.finished.append(a.id)
            return a.id not in self.fail
        migration = a.op in ("migrate_to", "migrate_from")
        nodes = {a.node, a.target} if migration else {a.node}
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        for n in nodes:
            assert n is not None
            self.jobs[n] += 1
            self.peak_jobs[n] = max(self.peak_jobs[n], self.jobs[n])
            if migration:
                self.migrating[n] += 1
                self.peak_migrating[n] = max(self.peak_migrating[n], self.migrating[n])
        await self._turns(a)
        self.running -= 1
        for n in nodes:
            assert n is not None
            self.jobs[n] -= 1
            if migration:
                self.migrating[n] -= 1
        self.finished.append(a.id)
        return a.id not in self.fail

    async def _turns(self, a: Action) -> None:
        for _ in range(self.turns.get(a.id, 1 + len(self.started) % 3)):
            await asyncio.sleep(0)


def run(tr: Transition, rec: Recorder, limits: Limits | None = None,
        abort: asyncio.Event | None = None) -> GraphResult:
    return asyncio.run(run_graph(tr, rec.do, abort, limits))


def starts(per_node: dict[str, int]) -> list[Action]:
    return [act(f"r{n}{k}_start_{n}", node=n) for n, count in per_node.items() for k in range(count)]


def test_batch_limit_bounds_the_whole_cluster() -> None:
    tr = transition(starts({"n1": 6, "n2": 6, "n3": 6}))
    rec = Recorder()
    result = run(tr, rec, Limits(batch=4))
    assert result.complete and sorted(result.done) == sorted(a.id for a in tr.actions)
    assert rec.peak_running == 4
    assert len(result.throttled) == 18 - 4  # all but the first wave waited
    unlimited = Recorder()
    run(tr, unlimited, Limits(batch=None))
    assert unlimited.peak_running == 18  # the fake does see every action at once without a limit


def test_default_limits_are_the_old_cluster_wide_16_and_nothing_per_node() -> None:
    tr = transition(starts({"n1": 20, "n2": 20}))
    rec = Recorder()
    assert run(tr, rec).complete
    assert rec.peak_running == 16 and max(rec.peak_jobs.values()) > 8


def test_node_action_limit_bounds_each_node_and_an_idle_node_is_not_held_back() -> None:
    # transition order puts all of n1's starts first: n2's must not wait behind them
    tr = transition(starts({"n1": 8, "n2": 3}))
    rec = Recorder(turns={a.id: 5 for a in tr.actions})
    result = run(tr, rec, Limits(batch=None, per_node=2))
    assert result.complete
    assert rec.peak_jobs == Counter({"n1": 2, "n2": 2})
    assert rec.started[:4] == ["rn10_start_n1", "rn11_start_n1", "rn20_start_n2", "rn21_start_n2"]


def test_waiting_actions_start_in_transition_order() -> None:
    tr = transition(starts({"n1": 6}) + starts({"n2": 2}))
    rec = Recorder()
    run(tr, rec, Limits(batch=1))
    assert rec.started == [a.id for a in tr.actions]  # one at a time, in order
    again = Recorder()
    run(tr, again, Limits(batch=1))
    assert again.started == rec.started


def test_a_migration_takes_a_slot_on_its_source_and_its_target() -> None:
    tr = transition([act("vm1_migrate_to_n1", "migrate_to", "n1", target="n2"),
                     act("vm2_start_n2", node="n2"),
                     act("vm3_start_n1", node="n1"),
                     act("vm4_start_n3", node="n3")])
    rec = Recorder(turns={"vm1_migrate_to_n1": 6})
    result = run(tr, rec, Limits(batch=None, per_node=1))
    assert result.complete
    assert rec.peak_jobs == Counter({"n1": 1, "n2": 1, "n3": 1})
    # n3 is free: its start runs beside the migration; n1's and n2's wait for it
    assert rec.started[:2] == ["vm1_migrate_to_n1", "vm4_start_n3"]
    assert sorted(result.throttled) == ["vm2_start_n2", "vm3_start_n1"]


def test_migration_limit_bounds_migrations_per_node_but_not_other_actions() -> None:
    out = [act(f"vm{k}_migrate_to_n1", "migrate_to", "n1", target=f"n{k}") for k in (2, 3, 4)]
    back = [act(f"vm{k}_migrate_from_n1", "migrate_from", f"n{k}", target="n1") for k in (2, 3, 4)]
    tr = transition(out + starts({"n1": 3}) + back,
                    {b.id: (o.id,) for o, b in zip(out, back, strict=True)})
    rec = Recorder(turns={a.id: 4 for a in out})
    result = run(tr, rec, Limits(batch=None, migrations=1))
    assert result.complete
    assert rec.peak_migrating["n1"] == 1
    assert rec.peak_jobs["n1"] >= 2  # starts on n1 ran beside a migration: only migrations are limited
    unlimited = Recorder(turns={a.id: 4 for a in out})
    run(tr, unlimited, Limits(batch=None))
    assert unlimited.peak_migrating["n1"] == 3


def test_fences_are_never_throttled_and_take_no_slot() -> None:
    # the fences come last in transition order and the only slot is taken: they run at once,
    # fence_n2 with the first start, fence_n3 (after fence_n2) while that start still runs
    tr = transition(starts({"n1": 3}) + [act("fence_n2", "fence", "n2"), act("fence_n3", "fence", "n3")],
                    {"fence_n3": ("fence_n2",)})
    rec = Recorder(turns={"rn10_start_n1": 8, "fence_n2": 1, "fence_n3": 1})
    result = run(tr, rec, Limits(batch=1, per_node=1, migrations=1))
    assert result.complete
    assert rec.started[:4] == ["fence_n2", "rn10_start_n1", "fence_n3", "rn11_start_n1"]
    assert rec.fences_beside == [0, 1]  # fence_n3 began while the start held the only slot
    assert rec.peak_running == 1  # and the fences took none: the starts still ran one at a time
    assert result.throttled == ["rn11_start_n1", "rn12_start_n1"]


def test_dependencies_hold_under_limits_and_pseudo_actions_take_no_slot() -> None:
    tr = transition([act("fence_n3", "fence", "n3"),
                     act("a_start_n1"), act("b_start_n2", node="n2"),
                     act("clone_running", "running", None, pseudo=True),
                     act("c_start_n1"), act("d_start_n2", node="n2")],
                    {"a_start_n1": ("fence_n3",), "b_start_n2": ("fence_n3",),
                     "clone_running": ("a_start_n1", "b_start_n2"),
                     "c_start_n1": ("clone_running",), "d_start_n2": ("clone_running", "missing_action")})
    rec = Recorder()
    result = run(tr, rec, Limits(batch=1))
    assert result.complete
    pos = {aid: k for k, aid in enumerate(rec.finished)}
    assert pos["fence_n3"] < pos["a_start_n1"] and pos["fence_n3"] < pos["b_start_n2"]
    assert rec.started.index("c_start_n1") > max(pos["a_start_n1"], pos["b_start_n2"])
    assert "clone_running" in result.done and "clone_running" not in rec.started


def test_a_failure_stops_launching_and_the_waiting_actions_are_skipped() -> None:
    tr = transition([act("a_start_n1"), act("b_start_n1"), act("c_start_n2", node="n2"),
                     act("d_start_n1")], {"d_start_n1": ("c_start_n2",)})
    rec = Recorder(fail=frozenset({"a_start_n1"}), turns={"a_start_n1": 1, "c_start_n2": 4})
    result = run(tr, rec, Limits(batch=None, per_node=1))
    assert result.failed == ["a_start_n1"]
    assert result.done == ["c_start_n2"]  # already running: it finishes
    assert result.skipped == ["b_start_n1", "d_start_n1"]  # waited for n1's slot; waited for c
    assert not result.complete and not result.aborted
    assert "b_start_n1" not in rec.started


def test_abort_launches_nothing_more_even_what_waited_for_a_slot() -> None:
    tr = transition(starts({"n1": 4}))
    abort = asyncio.Event()

    class Aborting(Recorder):
        async def do(self, a: Action) -> bool:
            abort.set()  # the membership changed while the first action ran
            return await super().do(a)

    rec = Aborting()
    result = run(tr, rec, Limits(batch=None, per_node=1), abort)
    assert result.aborted and result.done == ["rn10_start_n1"]
    assert result.skipped == ["rn11_start_n1", "rn12_start_n1", "rn13_start_n1"]
    assert rec.started == ["rn10_start_n1"]


def test_a_crashing_action_is_a_failure() -> None:
    async def crash(a: Action) -> bool:
        raise RuntimeError("agent exploded")

    result = asyncio.run(run_graph(transition([act("a_start_n1")]), crash))
    assert result.failed == ["a_start_n1"] and result.done == []


@pytest.mark.parametrize("field", ["batch", "per_node", "migrations"])
def test_a_limit_of_zero_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} limit must be at least 1"):
        Limits(**{field: 0})  # type: ignore[arg-type]
