"""The facts the planner derives once from (spec, state) before placing anything.

Node by node: which may host resources (``usable``), which are reachable
(``healthy``), which must be fenced; resource by resource: where it runs now
(``current``, ignoring offline nodes: what ran on a cleanly stopped node is
stopped), and what must be left exactly as it is (``frozen``: maintenance,
unmanaged, blocked after a failed stop, or stranded on an unclean node that
cannot be fenced). The quorum policy is resolved here into one mode.
"""

from __future__ import annotations

from havm.scheduler.model import AttrValue, ClusterSpec, ResourceState, State
from havm.scheduler.scores import INFINITY, ScoreTable

TYPE_CHECKING = False  # collections.abc imports collections: 8 M instructions at start-up
if TYPE_CHECKING:
    from collections.abc import Mapping


class Situation:
    def __init__(self, spec: ClusterSpec, state: State) -> None:
        props = spec.properties
        self.notes: list[str] = []
        self.index = {n.name: i for i, n in enumerate(spec.nodes)}
        n = len(spec.nodes)
        self.attributes: list[Mapping[str, AttrValue]] = []
        self.status: list[str] = []
        self.maintenance: list[bool] = []
        standby: list[bool] = []
        for node in spec.nodes:
            ns = state.node(node.name)
            attrs = dict(node.attributes)
            attrs.update(ns.attributes)
            self.attributes.append(attrs)
            status = ns.status
            if status == "unclean" and not props.fencing_enabled:
                # Without fencing havm must trust that an unclean node is down: the
                # price is a split brain if it is not. Said loudly in the transition.
                self.notes.append(f"{node.name} is unclean but fencing is disabled: assuming it is down")
                status = "offline"
            self.status.append(status)
            standby.append(node.standby if ns.standby is None else ns.standby)
            self.maintenance.append(node.maintenance if ns.maintenance is None else ns.maintenance)
        self.quorum = state.quorum
        if state.quorum or props.no_quorum_policy == "ignore":
            self.mode = "normal"
        else:
            self.mode = props.no_quorum_policy  # stop | freeze | demote
            self.notes.append(f"no quorum: policy {self.mode}")
        self.fence_allowed = props.fencing_enabled and self.mode == "normal" and not props.maintenance_mode
        self.healthy = [s == "online" for s in self.status]
        self.unclean = [s == "unclean" for s in self.status]
        self.usable = [self.healthy[i] and not standby[i] and not self.maintenance[i]
                       and not props.maintenance_mode for i in range(n)]
        self.to_fence = [i for i in range(n) if self.unclean[i] and self.fence_allowed]
        # instances of globally unique clones: fs -> (fs:0, fs:1, ...)
        self.instances: dict[str, tuple[str, ...]] = {}
        for c in spec.clones.values():
            if c.globally_unique:
                count = c.clone_max if c.clone_max is not None else n
                for p in c.primitives:
                    self.instances[p] = tuple(f"{p}:{k}" for k in range(count))
        self.current: dict[str, dict[int, ResourceState]] = {}
        # where each instance runs on a healthy node (``current``'s order): asked per
        # resource by scoring (stickiness) and placement (ties go to the current node)
        self.healthy_on: dict[str, list[int]] = {}
        self.failed: dict[str, set[int]] = {}
        self.frozen: dict[str, set[int]] = {}
        # primitives with a copy that may stay where it runs (a usable node where it has
        # not failed): Placer.order places them first
        self.may_stay: set[str] = set()
        records = state.resources
        healthy, usable, node_status, index = self.healthy, self.usable, self.status, self.index
        # per node: a copy there must be left as it is (the per-record facts added below)
        stuck_on = [self.maintenance[i] or props.maintenance_mode or (self.unclean[i] and not self.fence_allowed)
                    for i in range(n)]
        for p, prim in spec.primitives.items():
            for inst in self.instances.get(p, (p,)):
                here: dict[int, ResourceState] = {}
                on: list[int] = []
                may_stay = False
                for node_name, rec in (records.get(inst) or {}).items():
                    i = index.get(node_name)
                    if i is None or rec.role is None or node_status[i] == "offline":  # (role None: not running)
                        continue
                    here[i] = rec
                    if healthy[i]:
                        on.append(i)
                        if rec.failed:
                            self.failed.setdefault(inst, set()).add(i)
                        elif usable[i]:
                            may_stay = True
                    if stuck_on[i] or rec.blocked:
                        self.frozen.setdefault(inst, set()).add(i)
                if here:
                    self.current[inst] = here
                    if on:
                        self.healthy_on[inst] = on
                    if may_stay:
                        self.may_stay.add(p)
                if not prim.is_managed or props.maintenance_mode:
                    self.frozen.setdefault(inst, set()).update(here)
        for i in self.to_fence:
            self.notes.append(f"{spec.nodes[i].name} is unclean: fencing it before recovering its resources")
        self.promotable = {p for c in spec.clones.values() if c.promotable for p in c.primitives}

    def restrict_by_policy(self, prims: tuple[str, ...], t: ScoreTable) -> None:
        """Apply the no-quorum policy to a resource's scores (normal mode: nothing)."""
        if self.mode == "normal":
            return
        if self.mode == "stop" or (self.mode == "demote" and not any(p in self.promotable for p in prims)):
            t.add_all(-INFINITY)
            return
        # freeze (and demote, for promotable clones): keep what runs healthily, start nothing
        keep: set[int] = set()
        for p in prims:
            for inst in self.instances.get(p, (p,)):
                for i in self.current.get(inst, {}):
                    if self.healthy[i] and i not in self.failed.get(inst, ()):
                        keep.add(i)
        t.restrict(keep, len(self.healthy))
