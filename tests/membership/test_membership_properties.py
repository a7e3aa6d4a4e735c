"""Property: whatever faults happened (partitions, cut links, kills, restarts, delays),
once the network heals and every node runs, all nodes converge to one membership, one
controller, quorum and agreement within initdead + deadtime.

(Not asserted: that two controllers never coexist *during* faults. Heartbeat
membership is not atomic: in the window between two nodes' detections each may
hold a stale report of the other. Fencing, not membership, closes that window.)"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.membership.membership_harness import Cluster, make_config

NODES = ["n1", "n2", "n3", "n4", "n5"]

fault = st.one_of(
    st.tuples(st.just("partition"), st.lists(st.sampled_from([0, 1, 2]), min_size=5, max_size=5)),
    st.tuples(st.just("cut"), st.sampled_from([0, 1]), st.sampled_from(NODES), st.sampled_from(NODES)),
    st.tuples(st.just("kill"), st.sampled_from(NODES)),
    st.tuples(st.just("restart"), st.sampled_from(NODES)),
    st.tuples(st.just("heal")),
    st.tuples(st.just("delay"), st.sampled_from([0.0, 0.2, 0.6])),
)


def apply(c: Cluster, f: tuple) -> None:  # type: ignore[type-arg]
    kind = f[0]
    if kind == "partition":
        groups: dict[int, list[str]] = {}
        for node, g in zip(NODES, f[1], strict=True):
            groups.setdefault(g, []).append(node)
        c.net.partition(*groups.values())
    elif kind == "cut" and f[2] != f[3]:
        c.net.cut(f[1], f[2], f[3])
    elif kind == "kill" and f[1] in c.services:
        c.kill(f[1])
    elif kind == "restart":
        if f[1] in c.services:
            c.kill(f[1])
        c.start(f[1])
    elif kind == "heal":
        c.net.heal()
    elif kind == "delay":
        c.net.set_delay(f[1])


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(st.lists(st.tuples(fault, st.sampled_from([0.5, 1.0, 2.0, 4.0])), min_size=1, max_size=6))
def test_heal_always_converges_to_one_membership_and_controller(faults) -> None:  # type: ignore[no-untyped-def]
    c = Cluster(make_config(nodes=5))
    c.STEP = 0.1  # coarser steps: many simulated seconds per example
    c.run(2.0)
    for f, duration in faults:
        apply(c, f)
        c.run(duration)
    c.net.heal()
    c.net.set_delay(0.0)
    for name in NODES:
        if name not in c.services:
            c.start(name)
    c.run(8.0)  # > initdead for restarted nodes' peers, > deadtime for stale state
    views = [c.view(n) for n in NODES]
    assert {v.members for v in views} == {tuple(NODES)}
    assert {v.controller for v in views} == {"n1"}
    assert all(v.quorate and v.agreed for v in views)
