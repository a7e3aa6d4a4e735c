"""What-if events applied to a state snapshot: a node fails, returns, an operation fails.

Used by ``havm simulate --node-fail/--node-up/--op-fail/--standby`` and by tests;
each returns a new State (snapshots are immutable).
"""

from __future__ import annotations

from havm.scheduler.model import INFINITY, ClusterSpec, NodeState, ResourceState, State, frozen_map


def _usage(message: str) -> Exception:
    from havm.errors import UsageError  # imported when needed: havm simulate starts faster

    return UsageError(message)


def _check_node(spec: ClusterSpec, node: str) -> None:
    if node not in spec.node_names():
        raise _usage(f"unknown node {node!r}; nodes are: {', '.join(spec.node_names())}")


def _with_node(state: State, node: str, **changes: object) -> State:
    nodes = dict(state.nodes)
    nodes[node] = state.node(node).replace(**changes)
    return state.replace(nodes=frozen_map(nodes))


def node_fail(spec: ClusterSpec, state: State, node: str) -> State:
    """The node stops answering: unclean (it must be fenced before its resources move)."""
    _check_node(spec, node)
    return _with_node(state, node, status="unclean")


def node_up(spec: ClusterSpec, state: State, node: str) -> State:
    """The node joins cleanly with nothing running."""
    _check_node(spec, node)
    resources = {rid: frozen_map({n: r for n, r in per.items() if n != node or not r.running})
                  for rid, per in state.resources.items()}
    return _with_node(state, node, status="online").replace(resources=frozen_map(resources))


def standby(spec: ClusterSpec, state: State, node: str) -> State:
    _check_node(spec, node)
    return _with_node(state, node, standby=True)


def op_fail(spec: ClusterSpec, state: State, rsc: str, op: str, node: str) -> State:
    """An operation failed: monitor (+1 failure), start (fatal there), stop (fence or block)."""
    _check_node(spec, node)
    base = rsc.split(":")[0] if ":" in rsc and rsc.split(":")[0] in spec.primitives else rsc
    if base not in spec.primitives:
        raise _usage(f"unknown resource {rsc!r} (give a primitive id)")
    if op not in ("monitor", "start", "stop", "promote", "demote", "migrate_to", "migrate_from"):
        raise _usage(f"cannot simulate a failure of {op!r}; use monitor, start, stop, promote or demote")
    per = dict(state.on(rsc))
    rec = per.get(node, ResourceState(role=None))
    if op == "stop":
        if spec.properties.fencing_enabled:
            return node_fail(spec, state, node)
        per[node] = rec.replace(role=rec.role or "started", blocked=True)
    else:
        count = INFINITY if op == "start" else min(INFINITY, rec.failcount + 1)
        role = rec.role or "started"
        per[node] = rec.replace(role=role, failcount=count, last_failure=state.now, failed=True)
    resources = dict(state.resources)
    resources[rsc] = frozen_map(per)
    return state.replace(resources=frozen_map(resources))


__all__ = ["NodeState", "node_fail", "node_up", "op_fail", "standby"]
