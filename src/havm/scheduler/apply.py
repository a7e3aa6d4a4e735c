"""The state a transition leads to if every action succeeds.

Used by ``havm simulate`` (to show the state after) and by the stability tests:
planning again from ``apply(state, plan(spec, state))`` must find nothing to do.
"""

from __future__ import annotations

from havm.scheduler.model import NodeState, ResourceState, State, frozen_map
from havm.scheduler.transition import Transition


def apply(state: State, transition: Transition) -> State:
    nodes = dict(state.nodes)
    resources = {rid: dict(per) for rid, per in state.resources.items()}

    def put(rid: str, node: str, role: str | None) -> None:
        per = resources.setdefault(rid, {})
        rec = per.get(node, ResourceState(role=None))
        per[node] = rec.replace(role=role, failed=False)

    for a in transition.actions:
        if a.pseudo or a.node is None:
            continue
        if a.op == "fence":
            nodes[a.node] = state.node(a.node).replace(status="offline")
            for per in resources.values():
                if a.node in per:
                    per[a.node] = per[a.node].replace(role=None, failed=False)
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
    return state.replace(nodes=frozen_map(nodes),
                   resources=frozen_map({rid: frozen_map(per) for rid, per in resources.items()}))


__all__ = ["NodeState", "apply"]
