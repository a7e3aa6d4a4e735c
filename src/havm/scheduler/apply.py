"""The state a transition leads to if every action succeeds.

Used by ``havm simulate`` (to show the state after) and by the stability tests:
planning again from ``apply(state, plan(spec, state))`` must find nothing to do.
"""

from __future__ import annotations

from dataclasses import replace

from havm.scheduler.model import NodeState, ResourceState, State, frozen_map
from havm.scheduler.transition import Transition


def apply(state: State, transition: Transition) -> State:
    nodes = dict(state.nodes)
    resources = {rid: dict(per) for rid, per in state.resources.items()}

    def put(rid: str, node: str, role: str | None) -> None:
        per = resources.setdefault(rid, {})
        rec = per.get(node, ResourceState(role=None))
        per[node] = replace(rec, role=role, failed=False)  # type: ignore[arg-type]

    for a in transition.actions:
        if a.pseudo or a.node is None:
            continue
        if a.op == "fence":
            nodes[a.node] = replace(state.node(a.node), status="offline")
            for per in resources.values():
                if a.node in per:
                    per[a.node] = replace(per[a.node], role=None, failed=False)
        elif a.resource is None:
            continue
        elif a.op == "stop":
            put(a.resource, a.node, None)
        elif a.op in ("start", "migrate_from"):
            put(a.resource, a.node, "started")
        elif a.op == "promote":
            put(a.resource, a.node, "promoted")
        elif a.op == "demote":
            put(a.resource, a.node, "started")
    return replace(state, nodes=frozen_map(nodes),
                   resources=frozen_map({rid: frozen_map(per) for rid, per in resources.items()}))


__all__ = ["NodeState", "apply"]
