"""Planner regressions found by running Pacemaker's own scheduler inputs (bench/conformance.py)."""

from __future__ import annotations

from pathlib import Path

from havm.importers.cib import load_cib_simulation
from havm.scheduler import plan
from havm.scheduler.model import INFINITY

CTS = Path(__file__).resolve().parent.parent / "importers" / "data" / "pacemaker-cts"


def test_promotable_globally_unique_clone_is_planned_like_pacemaker():
    # crashed with KeyError: targets of unique clones are kept per instance (child_rsc1:0, :1)
    spec, state = load_cib_simulation(str(CTS / "inc11.xml"))
    tr = plan(spec, state)
    assert tr.placement["child_rsc1"] == ("node1", "node2")
    assert tr.promoted["rsc1"] == ("node2",)  # crm_simulate 2.1.5: child_rsc1:1 Promoted node2
    promotes = [a for a in tr.real_actions if a.op == "promote"]
    assert len(promotes) == 1 and promotes[0].node == "node2"


STABILITY_1 = """
cluster: t
links: [{name: ring0}]
nodes:
  - {name: n1, addresses: {ring0: 10.0.0.1}, utilization: {memory: 4096}}
  - {name: n2, addresses: {ring0: 10.0.0.2}, utilization: {memory: 1024}}
properties: {placement_strategy: utilization, fencing_enabled: false}
resources:
  - {clone: c0, clone_max: 2, resource: {id: c0x, type: dummy, utilization: {memory: 512}, meta: {priority: 5}}}
  - group: g1
    resources:
      - {id: g1m0, type: dummy}
      - {id: g1m1, type: dummy, utilization: {memory: 1024}, meta: {migration_threshold: 2}}
  - {clone: c5, resource: {id: c5x, type: dummy, utilization: {memory: 1024}, meta: {priority: 4}}}
  - group: g6
    resources:
      - {id: g6m0, type: dummy}
      - {id: g6m1, type: dummy, utilization: {memory: 1024}}
      - {id: g6m2, type: dummy, utilization: {memory: 1024}}
constraints:
  - {colocation: c5, with: g1, score: -30}
  - {order: g1, then: g6, symmetrical: false}
"""


def test_a_then_that_holds_room_lends_it_to_its_first_and_the_plan_is_stable() -> None:
    # Found by the randomized stability property: g6 (running, holding room on n1) waits
    # for g1 by a mandatory order, g1 needed that very room, so neither ran; with neither
    # running the next plan placed both: not stable. The 'then' now lends its room.
    from havm.config.load import parse_config_text
    from havm.scheduler import ClusterSpec, ResourceState, State, apply

    spec = ClusterSpec.from_config(parse_config_text(STABILITY_1, "t.yaml").config)
    run = ResourceState()
    state = State(now=100.0, resources={
        "c0x": {"n1": run, "n2": run}, "c5x": {"n1": run, "n2": run}, "g1m0": {"n2": run},
        "g1m1": {"n1": ResourceState(failcount=1, last_failure=90.0, failed=True)},
        "g6m1": {"n1": run, "n2": run}, "g6m2": {"n1": run, "n2": run}})
    t = plan(spec, state)
    assert t.placement["g1"] == "n1" and t.placement["g6"] == "n1"
    again = plan(spec, apply(state, t))
    assert [a.id for a in again.real_actions] == [] and again.placement == t.placement


def test_a_usable_node_on_the_base_score_counts_as_allowed() -> None:
    # Found by the randomized stability property: n2 (standby, not usable) had an override
    # and was subtracted from the usable nodes as if banned, so a table whose only allowed
    # node took the base score (n1 here) looked all-banned: p2 then ignored its
    # anti-colocated dependent's preferences in one plan and moved for them in the next.
    from havm.scheduler.scores import ScoreTable

    usable = [True, False, True, True, True]
    assert ScoreTable(0, {1: 0, 2: -20, 3: -20, 4: -20}).any_allowed(usable)
    assert not ScoreTable(0, {0: -1, 1: 0, 2: -20, 3: -20, 4: -20}).any_allowed(usable)
    assert ScoreTable(-INFINITY, {1: 5, 3: 0}).any_allowed(usable)
    assert not ScoreTable(-INFINITY, {1: 5}).any_allowed(usable)


def test_the_primary_of_an_anti_colocation_avoids_its_dependents_wishes_in_the_first_plan() -> None:
    from havm.scheduler import ClusterSpec, ResourceState, State, apply
    from havm.scheduler.model import (
        ColocationSpec,
        LocationSpec,
        NodeSpec,
        NodeState,
        PrimitiveSpec,
        PropertiesSpec,
        RuleSpec,
        frozen_map,
    )

    nodes = tuple(NodeSpec(f"n{k}", attributes=frozen_map({"rack": "r1" if k <= 2 else "r2"}),
                           capacity=frozen_map({"memory": 1024})) for k in range(1, 6))
    prims = {p: PrimitiveSpec(p, "havm:dummy") for p in ("p2", "p4")}
    spec = ClusterSpec(nodes=nodes, primitives=frozen_map(prims), top=("p2", "p4"),
                       locations=(LocationSpec("p4", 20, rule=RuleSpec(20, "and", (("eq", "rack", "r2"),))),),
                       colocations=(ColocationSpec("p4", "p2", -INFINITY),), orders=(),
                       properties=PropertiesSpec(fencing_enabled=False, placement_strategy="utilization"))
    state = State(now=100.0, nodes={"n2": NodeState(standby=True)}, resources={"p2": {
        "n2": ResourceState(last_failure=90.0, failed=True), "n3": ResourceState()}})
    t = plan(spec, state)
    assert t.placement["p2"] == "n1"  # r1: where p4 (anti-colocated, prefers r2) does not want to be
    again = plan(spec, apply(state, t))
    assert [a.id for a in again.real_actions] == []


def _stable(spec, state):  # type: ignore[no-untyped-def]
    from havm.scheduler import apply

    t = plan(spec, state)
    again = plan(spec, apply(state, t))
    assert [a.id for a in again.real_actions] == [], again.format_text(spec.node_names())
    return t


def _utilization_spec(caps, prims, **kw):  # type: ignore[no-untyped-def]
    from havm.scheduler import ClusterSpec
    from havm.scheduler.model import NodeSpec, PropertiesSpec, frozen_map

    nodes = tuple(NodeSpec(n, capacity=frozen_map({"memory": m})) for n, m in caps.items())
    return ClusterSpec(nodes=nodes, primitives=frozen_map(prims), properties=PropertiesSpec(
        fencing_enabled=False, placement_strategy="utilization"), **kw)


def test_a_displaced_resource_is_placed_with_new_ones_by_size() -> None:
    # Found by the randomized stability property: g3 (its stopped member failed on n1)
    # was placed before the new, bigger p4 because it had run, took n1 (p4's preferred
    # node) and pushed p4 to n3; the next plan, both running, placed p4 first (by size)
    # and swapped them. Displaced and new resources are now ordered alike.
    from havm.scheduler import ResourceState, State
    from havm.scheduler.model import GroupSpec, LocationSpec, NodeState, PrimitiveSpec, frozen_map

    prims = {"g3m0": PrimitiveSpec("g3m0", "havm:dummy", utilization=frozen_map({"memory": 512}), group="g3"),
             "g3m1": PrimitiveSpec("g3m1", "havm:dummy", target_role="stopped", group="g3"),
             "p4": PrimitiveSpec("p4", "havm:dummy", utilization=frozen_map({"memory": 2048}))}
    spec = _utilization_spec({"n1": 2048, "n2": 1024, "n3": 2048}, prims, groups=frozen_map(
        {"g3": GroupSpec("g3", ("g3m0", "g3m1"))}), top=("g3", "p4"), locations=(LocationSpec("p4", 20, node="n1"),))
    state = State(now=100.0, nodes={"n2": NodeState(standby=True)},
                  resources={"g3m1": {"n1": ResourceState(last_failure=90.0, failed=True)}})
    t = _stable(spec, state)
    assert (t.placement["p4"], t.placement["g3"]) == ("n1", "n3")


def test_room_held_for_a_resource_that_is_displaced_anyway_keeps_nobody_out() -> None:
    # Found by the randomized stability property: p2's held room on n3 (the only usable
    # node) kept clone c4 out; then c5 (higher priority) took that room and p2 stopped
    # anyway. The next plan, p2 no longer running, placed c4 and so stopped g0
    # (anti-colocated with c4). The plan is now made again without holding room for
    # running resources it displaces, and reaches that result at once.
    from havm.scheduler import ResourceState, State
    from havm.scheduler.model import (
        CloneSpec,
        ColocationSpec,
        GroupSpec,
        NodeState,
        PrimitiveSpec,
        frozen_map,
    )

    def prim(pid: str, memory: int = 0, **kw: object) -> PrimitiveSpec:
        return PrimitiveSpec(pid, "havm:dummy", utilization=frozen_map({"memory": memory} if memory else {}),
                             **kw)  # type: ignore[arg-type]

    prims = {"g0m0": prim("g0m0", priority=1, group="g0"), "g0m1": prim("g0m1", 2048, group="g0"),
             "p2": prim("p2", 2048), "c4x": prim("c4x", 512, stickiness=1, clone="c4"),
             "c5x": prim("c5x", 512, stickiness=1, priority=1, clone="c5")}
    spec = _utilization_spec(
        {"n1": 1024, "n3": 4096}, prims, groups=frozen_map({"g0": GroupSpec("g0", ("g0m0", "g0m1"))}),
        clones=frozen_map({"c4": CloneSpec("c4", "c4x", ("c4x",)), "c5": CloneSpec("c5", "c5x", ("c5x",))}),
        top=("g0", "p2", "c4", "c5"), colocations=(ColocationSpec("g0", "c4", -INFINITY),))
    run = ResourceState()
    state = State(now=100.0, nodes={"n1": NodeState(standby=True)},
                  resources={"g0m1": {"n3": run}, "p2": {"n3": run}})
    t = _stable(spec, state)
    assert (t.placement["c4"], t.placement["c5"], t.placement["p2"], t.placement["g0"]) == (
        ("n3",), ("n3",), "n3", None)
