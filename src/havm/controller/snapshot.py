"""Build the scheduler's State from what the controller knows. Pure.

Inputs: the membership view (who is a member, who left cleanly), each node's
last resource report (what its executor found), the nodes fenced since they
were last seen, whether fencing is enabled, and the time.

Node status, the safety rule of the whole cluster:
- a member is ``online``, unless a stop failed there (with fencing
  enabled): then it is ``unclean``, and the failed stop escalates to fencing
  (only that makes it safe: the resource may still run); once fenced (and
  until membership sees it go) it is ``offline``;
- a node that left cleanly (stopped its resources, then said LEAVE) or that
  was fenced since it was last seen is ``offline``: nothing runs there;
- any other node (dead, never seen since we started, partitioned away) is
  ``unclean``: it may still run what it ran, so the scheduler must fence it
  before recovering anything of it. With fencing disabled by the operator
  it is taken as ``offline`` (documented as unsafe).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from havm.executor.records import MIGRATION_LEFTOVERS, PRESENT_AND_FAILED
from havm.membership.view import MembershipView
from havm.scheduler.model import ClusterSpec, NodeState, ResourceState, State, frozen_map

# "migrated": a migrated-away source's stale copy, present until stopped; it must be stopped.
# "incoming": a migration target's copy whose migration nobody finished (a controller reads
# one only if the controller driving the phases died): it may run, so it must be stopped too
ROLE_OF = {"started": "started", "promoted": "promoted", **{r: "started" for r in PRESENT_AND_FAILED}}


def stop_failed(report: Mapping[str, Any]) -> list[str]:
    """Resources whose stop failed on that node (its report's states)."""
    return sorted(r for r, st in report.items() if st.get("role") == "stop-failed")


def node_status(name: str, view: MembershipView, fenced: Set[str], fencing_enabled: bool,
                failed_stop: bool = False) -> str:
    if name in view.members:
        if failed_stop and fencing_enabled:
            return "offline" if name in fenced else "unclean"
        return "online"
    if name in fenced:
        return "offline"
    try:
        peer = view.peer(name)
    except KeyError:
        peer = None
    if peer is not None and peer.left:
        return "offline"
    return "unclean" if fencing_enabled else "offline"


def resource_states(report: Mapping[str, Any]) -> dict[str, ResourceState]:
    """One node's report (LocalResources.report()['states']) as scheduler records."""
    out: dict[str, ResourceState] = {}
    for rsc, st in report.items():
        role = ROLE_OF.get(st.get("role", "stopped"))
        failed = st.get("role") in PRESENT_AND_FAILED
        failcount = int(st.get("failcount", 0))
        if role is None and failcount == 0:
            continue
        out[rsc] = ResourceState(role=role, failcount=failcount,  # type: ignore[arg-type]
                                 last_failure=st.get("last_failure"), failed=failed)
    return out


def build_state(spec: ClusterSpec, view: MembershipView, reports: Mapping[str, Mapping[str, Any]],
                fenced: Set[str], fencing_enabled: bool, now: float) -> State:
    """The scheduler's snapshot. ``reports`` maps a node to its resource states.

    An unclean node whose report we do not have (it died before this controller
    ever heard from it, e.g. it was the previous controller) may still run any
    resource that no member runs: each of those is taken as running there, so
    the scheduler fences the node before starting them anywhere else. Without
    this, a new controller would start a dead controller's resources at once,
    while the dead node might still run them. One end of a live migration (a
    stale source copy, an unfinished target copy) does not count as running on
    a member: the other end may be the unknown node.
    """
    nodes: dict[str, NodeState] = {}
    per_rsc: dict[str, dict[str, ResourceState]] = {}
    unknown: list[str] = []
    held: set[str] = set()  # resources a node we know about holds for real (no migration leftover)
    leftovers: dict[str, set[str]] = {}
    for n in spec.nodes:
        status = node_status(n.name, view, fenced, fencing_enabled, bool(stop_failed(reports.get(n.name, {}))))
        nodes[n.name] = NodeState(status=status)  # type: ignore[arg-type]
        if status == "offline":
            continue  # nothing runs on a node that is off
        if status == "unclean" and n.name not in reports:
            unknown.append(n.name)
            continue
        report = reports.get(n.name, {})
        for rsc, rs in resource_states(report).items():
            per_rsc.setdefault(rsc, {})[n.name] = rs
            role = report[rsc].get("role")
            if role in MIGRATION_LEFTOVERS:
                leftovers.setdefault(rsc, set()).add(role)
                if leftovers[rsc] == set(MIGRATION_LEFTOVERS):
                    held.add(rsc)  # both ends of the migration known: it is on one of them
            elif rs.running:
                held.add(rsc)
    if unknown:
        # one end of a migration on a node we know does not say where the VM is: the source's
        # stale copy ("migrated") means it went to the target, the target's unfinished one
        # ("incoming") that it may still be on the source; the other end may be an unknown node
        for rsc in spec.primitives:
            if rsc not in held:
                for name in unknown:
                    per_rsc.setdefault(rsc, {})[name] = ResourceState(role="started")
    return State(now=now, quorum=view.quorate, nodes=frozen_map(nodes),
                 resources=frozen_map({r: frozen_map(v) for r, v in per_rsc.items()}))
