"""Where every resource should run: scores, then a greedy assignment, then constraint repair.

Follows Pacemaker's assignment: each top-level resource (primitive, group or
clone) gets a score per node (location constraints and rules, stickiness on its
current node, -INFINITY where its fail count reached migration_threshold, the
scores of colocation primaries, and its dependents' preferences weighted by the
colocation score); it goes to the best node with a score >= 0 that is usable
(online, not standby, not in maintenance, not unclean) and, with a utilization
strategy, has room. Ties go to the node it already runs on, then to the
strategy's order (see nodepool). Resources are assigned by priority, running
ones first (so a newcomer cannot take a running VM's room), then by size with a
utilization strategy (first-fit decreasing places more), then config order;
colocation primaries are assigned before their dependents.

A final repair pass makes mandatory constraints hold whatever the greedy order
did: a dependent of a mandatory colocation that is not with its primary, and
the ``then`` of a mandatory order whose ``first`` cannot run, are stopped.

Where havm differs from Pacemaker, on purpose:
- a dependent's bans (-INFINITY) steer its primary away from the banned nodes,
  unless that would leave the primary nowhere; Pacemaker ignores them and may
  leave the dependent stopped although a node fits both.
- an instance of a promotable clone whose agent has not reported a promotion
  score gets 0 (promotable), so a simulated cluster promotes deterministically.
"""

from __future__ import annotations

from havm.scheduler.model import ClusterSpec, ColocationSpec, OrderSpec, ResourceState, State
from havm.scheduler.nodepool import NodePool
from havm.scheduler.scores import INFINITY, ScoreTable, add, format_score, rule_matches, scale
from havm.scheduler.situation import Situation

TYPE_CHECKING = False  # collections.abc imports collections: 8 M instructions at start-up
if TYPE_CHECKING:
    from collections.abc import Mapping


class Unit:
    """A top-level resource being placed: primitive, group or clone."""

    __slots__ = ("id", "kind", "index", "prims", "priority")

    def __init__(self, id: str, kind: str, index: int, prims: tuple[str, ...], priority: int = 0) -> None:
        self.id = id
        self.kind = kind  # primitive | group | clone
        self.index = index
        self.prims = prims
        self.priority = priority


class Placement:
    """Result: per instance the nodes (index -> role) it should be on, per unit its nodes."""

    __slots__ = ("target", "unit_nodes", "promoted", "scores", "why")

    def __init__(self) -> None:
        self.target: dict[str, dict[int, str]] = {}
        self.unit_nodes: dict[str, list[int]] = {}
        self.promoted: dict[str, list[int]] = {}
        self.scores: dict[str, ScoreTable] = {}
        self.why: dict[str, str] = {}


class Placer:
    def __init__(self, spec: ClusterSpec, state: State, sit: Situation, unheld: frozenset[str] = frozenset()
                 ) -> None:
        self.spec = spec
        self.state = state
        self.sit = sit
        self.unheld = unheld  # running units whose room is not held for them (see place)
        self.units: dict[str, Unit] = {}
        self.unit_of: dict[str, str] = {}
        for idx, rid in enumerate(spec.top):
            if rid in spec.clones:
                c = spec.clones[rid]
                u = Unit(rid, "clone", idx, c.primitives)
                self.unit_of[c.child] = rid
            elif rid in spec.groups:
                u = Unit(rid, "group", idx, spec.groups[rid].members)
            else:
                u = Unit(rid, "primitive", idx, (rid,))
            u.priority = spec.primitives[u.prims[0]].priority
            self.units[rid] = u
            self.unit_of[rid] = rid
            for p in u.prims:
                self.unit_of[p] = rid
        self.locs: dict[str, list] = {}
        for loc in spec.locations:
            self.locs.setdefault(self.unit_of[loc.rsc], []).append(loc)
        self.colos_dep: dict[str, list[ColocationSpec]] = {}
        self.colos_pri: dict[str, list[ColocationSpec]] = {}
        loop_of = _colocation_loops([(self.unit_of[col.rsc], self.unit_of[col.with_rsc]) for col in spec.colocations])
        for col in spec.colocations:
            d, p = self.unit_of[col.rsc], self.unit_of[col.with_rsc]
            if d == p:
                continue  # inside one group or clone: already together
            if d in loop_of and loop_of[d] == loop_of.get(p) and self.units[p].index > self.units[d].index:
                # A colocation loop has no first resource; placing it in whatever order the
                # state suggests would flip-flop. Break it the same way every time: inside a
                # loop a resource follows only those before it in the config. (Mandatory
                # colocations still hold: the repair pass enforces them.)
                continue
            self.colos_dep.setdefault(d, []).append(col)
            self.colos_pri.setdefault(p, []).append(col)
        # mandatory orders by their 'then' unit, unless 'first' is colocated with 'then'
        # (then 'then' must be placed first and the repair pass decides)
        self.firsts: dict[str, list[OrderSpec]] = {}
        self.thens: dict[str, list[str]] = {}  # the reverse: first unit -> its mandatory 'then' units
        for o in spec.orders:
            f, t = self.unit_of[o.first], self.unit_of[o.then]
            if o.kind == "mandatory" and f != t and not any(self.unit_of[c.with_rsc] == t
                                                            for c in self.colos_dep.get(f, ())):
                self.firsts.setdefault(t, []).append(o)
                self.thens.setdefault(f, []).append(t)
        self.pool = NodePool(sit.usable, [n.capacity for n in spec.nodes], spec.properties.placement_strategy)
        self.out = Placement()
        self.done: set[str] = set()
        self.holds: dict[str, list[tuple[int, dict[str, int]]]] = {}
        self.held_at_start: dict[str, list[tuple[int, dict[str, int]]]] = {}
        self._needs: dict[tuple[str, ...], dict[str, int]] = {}
        self._own: dict[str, tuple[ScoreTable, list[ScoreTable]]] = {}
        self.busy: set[str] = set()
        self.stay: dict[str, set[int]] = {}  # units that may stay where they run, not start elsewhere
        self.n = len(spec.nodes)

    # -- scores ---------------------------------------------------------------------
    def _need(self, prims: tuple[str, ...]) -> dict[str, int]:
        cached = self._needs.get(prims)
        if cached is not None:
            return cached
        need: dict[str, int] = {}
        for p in prims:
            for d, v in self.spec.primitives[p].utilization.items():
                need[d] = need.get(d, 0) + v
        self._needs[prims] = need
        return need

    def _location_table(self, unit: Unit, names: set[str] | None = None,
                        role: str | None = None) -> tuple[ScoreTable, set[int]]:
        """Scores from location constraints on the unit (or only on ``names``); and allowed nodes."""
        t = ScoreTable(0, {})
        allowed: set[int] = set()
        for loc in self.locs.get(unit.id, ()):
            if names is not None and loc.rsc not in names:
                continue
            if (loc.role or "started") != (role or "started") and not (role is None and loc.role == "unpromoted"):
                continue
            if loc.node is not None:
                i = self.sit.index[loc.node]
                t.add_node(i, loc.score)
                allowed.add(i)
            else:
                assert loc.rule is not None
                for i, node in enumerate(self.spec.nodes):
                    if rule_matches(loc.rule, node.name, self.sit.attributes[i]):
                        t.add_node(i, loc.score)
                        allowed.add(i)
        return t, allowed

    def _prim_table(self, p: str, unit: Unit, instances: tuple[str, ...] | None = None,
                    into: ScoreTable | None = None) -> ScoreTable:
        """Stickiness and failure bans of one primitive (all its instances), added to ``into``."""
        spec = self.spec.primitives[p]
        t = into if into is not None else ScoreTable(0, {})
        sit = self.sit
        threshold = spec.migration_threshold
        for inst in instances or (p,):
            on = sit.healthy_on.get(inst)
            if on:
                for i in on:
                    t.add_node(i, spec.stickiness)
            recs = self.state.resources.get(inst) if threshold > 0 else None
            if recs:
                for node, rec in recs.items():
                    if rec.failcount > 0 and self._banned(threshold, spec.failure_timeout, rec):
                        ni = sit.index.get(node)
                        if ni is not None:
                            t.add_node(ni, -INFINITY)
        if spec.target_role == "stopped":
            t.add_all(-INFINITY)
        return t

    def _banned(self, threshold: int, timeout: float, rec: ResourceState) -> bool:
        if threshold <= 0 or rec.failcount <= 0:
            return False
        if timeout > 0 and rec.last_failure is not None and self.state.now >= rec.last_failure + timeout:
            return False  # expired
        return rec.failcount >= threshold

    def own_table(self, unit: Unit) -> tuple[ScoreTable, list[ScoreTable]]:
        """The unit's own scores (no colocation), and for groups each member's.

        Cached: it depends on the config and the state only. Callers copy before changing it.
        """
        cached = self._own.get(unit.id)
        if cached is None:
            cached = self._own[unit.id] = self._own_table(unit)
        return cached

    def _own_table(self, unit: Unit) -> tuple[ScoreTable, list[ScoreTable]]:
        if unit.kind == "primitive":
            t, allowed = self._location_table(unit)
            self._prim_table(unit.id, unit, None, into=t)
            if not self.spec.properties.symmetric_cluster:
                t.restrict(allowed)
            return t, []
        own = {unit.id} | ({self.spec.clones[unit.id].child} if unit.kind == "clone" else set())
        t, allowed = self._location_table(unit, own - set(unit.prims))
        members: list[ScoreTable] = []
        insts = self.sit.instances
        for p in unit.prims:
            mt, m_allowed = self._location_table(unit, {p})
            mt.add_table(self._prim_table(p, unit, insts.get(p)))
            allowed |= m_allowed
            if unit.kind == "group":
                trial = t.copy()
                trial.add_table(mt)
                if trial.any_allowed(self.sit.usable) or not members:
                    t = trial
                members.append(mt)
            else:
                t.add_table(mt)
        if not self.spec.properties.symmetric_cluster:
            t.restrict(allowed)
        return t, members

    def _nodes_of(self, unit_id: str, role: str | None) -> list[int]:
        nodes = self.out.unit_nodes.get(unit_id, [])
        if role == "promoted":
            return self.out.promoted.get(unit_id, [])
        if role == "unpromoted":
            promoted = self.out.promoted.get(unit_id, [])
            return [i for i in nodes if i not in promoted]
        return nodes

    def _apply_primaries(self, unit: Unit, t: ScoreTable) -> None:
        for c in self.colos_dep.get(unit.id, ()):
            if c.role == "promoted" and unit.kind == "clone":
                continue  # applies to promotion, not to placement
            pid = self.unit_of[c.with_rsc]
            if pid in self.busy:
                continue  # a colocation loop: the repair pass decides
            self.allocate(self.units[pid])
            nodes = set(self._nodes_of(pid, c.with_role))
            if c.score >= INFINITY:
                t.restrict(nodes, self.n)
            else:
                for i in nodes:
                    t.add_node(i, c.score)

    def _merge_dependents(self, unit: Unit, t: ScoreTable) -> None:
        for c in self.colos_pri.get(unit.id, ()):
            did = self.unit_of[c.rsc]
            dep = self.units[did]
            if did in self.done or dep.kind == "clone" or c.score == 0:
                continue
            if c.with_role is not None and c.with_role != "started":
                continue
            dt, _ = self.own_table(dep)
            if c.score < 0:  # avoid what the dependent prefers; never turn its bans into wishes
                dt = ScoreTable(max(dt.base, 0), {i: s for i, s in dt.over.items() if s > 0})
            trial = t.copy()
            trial.add_table(dt, c.score, INFINITY)
            if trial.any_allowed(self.sit.usable):
                t.base, t.over = trial.base, trial.over

    # -- assignment -------------------------------------------------------------------
    def order(self) -> list[Unit]:
        utilization = self.spec.properties.placement_strategy != "default"

        may_stay = self.sit.may_stay

        def key(u: Unit) -> tuple[int, int, int, int]:
            # Resources that can stay where they run first, then all others alike: one
            # displaced from where it ran has no place to keep either, and ranking it before
            # new ones made the order depend on what ran before, so the next plan, with it
            # running, could undo this one's choice (not stable).
            rank = 1
            for p in u.prims:
                if p in may_stay:
                    rank = 0
                    break
            size = sum(self._need(u.prims).values()) if utilization else 0
            return (-u.priority, rank, -size, u.index)

        return sorted(self.units.values(), key=key)

    def _held(self, unit: Unit) -> list[tuple[int, dict[str, int]]]:
        """Room a running unit holds on its current nodes until it is placed."""
        held: list[tuple[int, dict[str, int]]] = []
        sit = self.sit
        nodes = {i for p in unit.prims if self.spec.primitives[p].target_role != "stopped"
                 for inst in sit.instances.get(p, (p,))
                 for i in sit.current.get(inst, ()) if sit.usable[i] and i not in sit.failed.get(inst, ())}
        own = self.own_table(unit)[0] if nodes else None
        if own is not None and unit.kind != "clone" and len(nodes) > 1:
            # active on several nodes: it will keep (at most) the one it likes best
            nodes = {min(nodes, key=lambda i: (-own.get(i), i))}
        for i in sorted(nodes):
            if own is not None and own.get(i) < 0:
                continue  # it cannot stay there anyway (banned, target_role stopped, ...)
            # the members running there (a lone primitive runs on every node in ``nodes``)
            here = unit.prims if len(unit.prims) == 1 else \
                tuple(p for p in unit.prims if any(i in self.sit.current.get(inst, ())
                                                   for inst in self.sit.instances.get(p, (p,))))
            need = self._need(here)
            cap = self.spec.nodes[i].capacity
            if all(v <= cap.get(d, 0) for d, v in need.items()):  # it could stay there at all
                held.append((i, need))
        return held

    def run(self) -> Placement:
        units = self.order()
        if self.pool.use_capacity:
            self.holds = {u.id: self._held(u) if u.id not in self.unheld else [] for u in units}
            self.held_at_start = dict(self.holds)  # (placing a unit pops its entry from holds)
            for u in units:
                for i, need in self.holds[u.id]:
                    self.pool.reserve(i, u.priority, need)
        for unit in units:
            self.allocate(unit)
        if self.pool.use_capacity and self.sit.mode == "normal":
            # Room held for a running resource that then could not stay is free now: give
            # it to whoever was refused (else the next plan would, and this one is unstable),
            # unless a dependent already chose its place without it.
            for _ in range(3):
                changed = False
                for unit in units:
                    if unit.kind != "clone" and self.out.unit_nodes.get(unit.id):
                        continue  # placed (the common case, first: nothing below would change it)
                    if self.frozen_node(unit) is not False:
                        continue
                    if any(self.out.unit_nodes.get(self.unit_of[c.rsc]) for c in self.colos_pri.get(unit.id, ())):
                        continue
                    if self.out.unit_nodes.get(unit.id):  # a placed clone: room for more instances?
                        from havm.scheduler.clones import top_up_clone
                        changed = top_up_clone(self, unit) or changed
                        continue
                    self.done.discard(unit.id)
                    self.allocate(unit)
                    changed = changed or bool(self.out.unit_nodes.get(unit.id))
                if not changed:
                    break
        from havm.scheduler.repair import repair
        repair(self)
        return self.out

    def lost_holds(self) -> frozenset[str]:
        """Running units that held room on a node and were not placed on any such node."""
        if not self.pool.use_capacity:
            return frozenset()
        lost = set(self.unheld)
        for uid, held in self.held_at_start.items():
            if held and not {i for i, _ in held} & set(self.out.unit_nodes.get(uid, ())):
                lost.add(uid)
        return frozenset(lost)

    def allocate(self, unit: Unit) -> None:
        if unit.id in self.done or unit.id in self.busy:
            return
        self.busy.add(unit.id)
        pool = self.pool
        outer_priority, pool.priority = pool.priority, unit.priority
        try:
            # a mandatory order's 'then' cannot run unless its 'first' can: decide that
            # before placing it, so a resource that will not run never pushes others around
            for o in self.firsts.get(unit.id, ()):
                fid = self.unit_of[o.first]
                self.allocate(self.units[fid])
                if fid in self.busy:
                    continue
                have = self.out.promoted.get(fid) if o.first_action == "promote" else self.out.unit_nodes.get(fid)
                if not have and self.frozen_node(unit) is False:
                    stay = self.may_stay(self.units[fid], unit, o.symmetrical)
                    if stay:
                        self.stay[unit.id] = stay
                        continue
                    self.out.unit_nodes[unit.id] = []
                    self.out.why[unit.id] = f"{o.first} must {o.first_action} first and cannot"
                    return
            # Room held for a running 'then' of this unit is this unit's to use: the 'then'
            # cannot run without it (else each would wait for the other, and the next
            # plan, with neither running, would decide differently).
            thens = self.thens.get(unit.id) if self.holds else None
            lent = [(t, self.holds.pop(t)) for t in thens if self.holds.get(t)] if thens else []
            for t, held in lent:
                for i, need in held:
                    pool.reserve(i, self.units[t].priority, need, -1)
            if unit.kind == "clone":
                from havm.scheduler.clones import allocate_clone
                allocate_clone(self, unit)
            else:
                self._allocate_single(unit)
            if lent and self.out.unit_nodes.get(unit.id):  # else the 'then' units cannot run: nothing to hold
                for t, held in lent:
                    if t not in self.done:
                        self.holds[t] = held
                        for i, need in held:
                            pool.reserve(i, self.units[t].priority, need)
        finally:
            if self.holds:
                self.release_holds(unit)
            pool.priority = outer_priority
            self.busy.discard(unit.id)
            self.done.add(unit.id)

    def may_stay(self, first: Unit, then: Unit, symmetrical: bool) -> set[int]:
        """Where ``then`` may keep running although its mandatory ``first`` will not run.

        As Pacemaker: ``first`` stopped on purpose (target_role stopped) schedules no start
        at all, so the order does not touch an already running ``then`` (if the order is
        symmetrical, only while nothing of ``first`` is active: a stop of ``first`` would
        stop ``then`` before it). A ``first`` that cannot start
        (failed, banned, no room) is another matter: ``then`` stops. Empty for clones (their
        instances are decided per node).
        """
        sit = self.sit
        if then.kind == "clone" or self.spec.primitives[first.prims[0]].target_role != "stopped" or \
                (symmetrical and any(sit.current.get(inst) for p in first.prims
                                     for inst in sit.instances.get(p, (p,)))):
            return set()
        nodes: set[int] | None = None
        for p in then.prims:  # where all of it runs already (so staying starts nothing)
            if self.spec.primitives[p].target_role == "stopped":
                continue
            here = {i for i, rec in sit.current.get(p, {}).items()
                    if sit.usable[i] and rec.running and i not in sit.failed.get(p, ())}
            nodes = here if nodes is None else nodes & here
        return nodes or set()

    def release_holds(self, unit: Unit) -> None:
        """The unit is being placed now: the room it held is its own to take (or leave)."""
        for i, need in self.holds.pop(unit.id, ()):
            self.pool.reserve(i, unit.priority, need, -1)

    def frozen_node(self, unit: Unit) -> int | None | bool:
        """A unit that must stay as it is: its node (None: stays stopped); False if not frozen."""
        frozen = [p for p in unit.prims if p in self.sit.frozen]
        if not frozen:
            return False
        for p in frozen:
            if self.sit.frozen[p]:
                return min(self.sit.frozen[p])
        return None

    def _allocate_single(self, unit: Unit) -> None:
        out, sit = self.out, self.sit
        fixed = self.frozen_node(unit) if sit.frozen else False
        if fixed is not False:
            if fixed is not None:
                running = [p for p in unit.prims if fixed in self.sit.current.get(p, {})]
                self._place(unit, fixed, running, frozen=True)
            else:
                out.unit_nodes[unit.id] = []
                out.why[unit.id] = "not managed"
            return
        t, members = self.own_table(unit)
        stay = self.stay.get(unit.id)
        if unit.id in self.colos_dep or unit.id in self.colos_pri or self.sit.mode != "normal" or stay:
            t = t.copy()  # the cached table stays as it is
            self._apply_primaries(unit, t)
            self._merge_dependents(unit, t)
            self.sit.restrict_by_policy(unit.prims, t)
            if stay:
                t.restrict(stay)
        out.scores[unit.id] = t
        current: set[int] = set()
        for p in unit.prims:
            on = sit.healthy_on.get(p)
            if on:
                current.update(on)
        runnable = unit.prims
        prims = self.spec.primitives
        for k, p in enumerate(unit.prims):  # members from the first stopped one on stay stopped
            if prims[p].target_role == "stopped":
                runnable = unit.prims[:k]
                break
        need = self._need(runnable)
        if self.holds:
            self.release_holds(unit)
        if self.pool.use_capacity and current:
            # Moving by choice (a better score elsewhere) may take room a running resource of
            # the same priority holds: that one may move too (a swap). Displaced from a node
            # that is full or gone, it may not: it would only displace the other in turn.
            wish = self.choose(t, current, {})
            self.pool.respect_equal = wish is None or wish in current or not current
        best = None
        for chain in self._chain_needs(unit, need):  # room for the whole chain, else for fewer
            best = self.choose(t, current, chain)
            if best is not None:
                break
        self.pool.respect_equal = True
        if best is None:
            out.unit_nodes[unit.id] = []
            out.why[unit.id] = self._why_nowhere(t, need)
            return
        placed = list(unit.prims)
        if unit.kind == "group":  # members that cannot run there stop, and so do those after them
            for k, mt in enumerate(members):
                if mt.get(best) < 0:
                    placed = placed[:k]
                    for p in unit.prims[k:]:
                        out.why[p] = f"cannot run on {self.spec.nodes[best].name} with group {unit.id}"
                    break
        if self.sit.mode != "normal":  # freeze: what runs healthily stays, nothing starts
            placed = [p for p in placed if best in self.sit.current.get(p, {})
                      and best not in self.sit.failed.get(p, ())]
            if not placed:
                out.unit_nodes[unit.id] = []
                out.why[unit.id] = f"no quorum (policy {self.sit.mode})"
                return
        self._place(unit, best, placed)

    def _place(self, unit: Unit, i: int, prims: list[str], frozen: bool = False) -> None:
        for p in prims:
            role = "started"
            if frozen:
                rec = self.sit.current.get(p, {}).get(i)
                role = rec.role if rec and rec.role else "started"
            self.out.target[p] = {i: role}
        self.out.unit_nodes[unit.id] = [i] if prims else []
        self.pool.take(i, self._need(tuple(prims)), len(prims))

    def unplace(self, unit_id: str, nodes: list[int] | None = None, why: str = "") -> bool:
        """Remove the unit (or its instances on ``nodes``); True if anything changed."""
        unit = self.units[unit_id]
        have = self.out.unit_nodes.get(unit_id, [])
        drop = [i for i in have if nodes is None or i in nodes]
        drop = [i for i in drop if not any(i in self.sit.frozen.get(p, ()) for p in unit.prims)]
        if not drop:
            return False
        for i in drop:
            placed = [p for p in unit.prims if i in self._instance_nodes(p)]
            for p in placed:
                for inst in self.sit.instances.get(p, (p,)):
                    self.out.target.get(inst, {}).pop(i, None)
            self.pool.give_back(i, self._need(tuple(placed)), len(placed))
        keep = list(have)
        for i in drop:
            keep.remove(i)
        self.out.unit_nodes[unit_id] = keep
        self.out.promoted[unit_id] = [i for i in self.out.promoted.get(unit_id, []) if i in keep]
        if why:
            self.out.why[unit_id] = why
        return True

    def _instance_nodes(self, p: str) -> set[int]:
        nodes: set[int] = set()
        for inst in self.sit.instances.get(p, (p,)):
            nodes.update(self.out.target.get(inst, {}))
        return nodes

    def choose(self, t: ScoreTable, current: set[int], need: Mapping[str, int]) -> int | None:
        pool = self.pool
        usable = self.sit.usable
        best: tuple | None = None
        explicit = set(t.over) | current
        for i in explicit:
            s = t.get(i)
            if s < 0 or not usable[i] or not pool.fits(i, need):
                continue
            k = (-s, 0 if i in current else 1, pool.key(i))
            if best is None or k < best:
                best = k
        # Any other node scores t.base and ranks after a current node at that score: when the
        # best explicit node beats that, the walk of the pool's heap cannot change the answer
        # (the common case of a resource that stays where it runs).
        if t.base >= 0 and (best is None or best[:2] >= (-t.base, 1)):
            j = pool.best(explicit, need)
            if j is not None:
                k = (-t.base, 1, pool.key(j))
                if best is None or k < best:
                    best = k
        return None if best is None else best[2][-1]

    def _chain_needs(self, unit: Unit, need: Mapping[str, int]) -> list[Mapping[str, int]]:
        """The room to look for: ``need`` plus that of the resources that must run with this one
        and are not placed yet (the whole chain first, then without its last ones, then alone).

        As Pacemaker (with a utilization strategy): a node is chosen with room for the
        colocated chain, so the partners are not left stopped for lack of room.
        """
        if not self.pool.use_capacity:
            return [need]
        needs = [need]
        total = dict(need)
        seen = {unit.id}
        work = [unit.id]
        while work:  # the chain: whatever must run with it, directly or through others
            for c in self.colos_pri.get(work.pop(0), ()):
                did = self.unit_of[c.rsc]
                dep = self.units[did]
                if c.score < INFINITY or c.with_role not in (None, "started") or dep.kind == "clone" \
                        or did in seen or did in self.done:
                    continue  # (one being placed, which asked for this one first, counts too)
                seen.add(did)
                work.append(did)
                runnable = [p for p in dep.prims if self.spec.primitives[p].target_role != "stopped"]
                extra = self._need(tuple(runnable))
                if any(extra.values()):
                    total = {d: total.get(d, 0) + extra.get(d, 0) for d in total.keys() | extra.keys()}
                    needs.append(total)
        needs.reverse()
        return needs

    def _why_nowhere(self, t: ScoreTable, need: Mapping[str, int]) -> str:
        if not any(self.sit.usable):
            return "no node can run resources"
        allowed = [i for i in range(self.n) if self.sit.usable[i] and t.get(i) >= 0]
        if not allowed:
            return "no usable node has a score >= 0"
        if need:
            return "no allowed node has room for " + ", ".join(f"{d}={v}" for d, v in sorted(need.items()))
        return "cannot run anywhere"

    def explain_score(self, unit_id: str, i: int) -> str:
        t = self.out.scores.get(unit_id)
        return format_score(t.get(i)) if t else "?"


def _colocation_loops(edges: list[tuple[str, str]]) -> dict[str, int]:
    """Units in a colocation loop (a strongly connected component of 2+), mapped to its number."""
    graph: dict[str, list[str]] = {}
    for d, p in edges:
        if d != p:
            graph.setdefault(d, []).append(p)
            graph.setdefault(p, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: dict[str, int] = {}
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, k = work.pop()
            if k == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = graph[v]
            if k < len(succ):
                work.append((v, k + 1))
                w = succ[k]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    for w in comp:
                        comps[w] = index[v]
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return comps


def order_blocks(o: OrderSpec) -> bool:
    return o.kind == "mandatory"


def place(spec: ClusterSpec, state: State, sit: Situation) -> Placer:
    """The placement, by a ``Placer`` run (twice at most, with capacities).

    Room is held for running resources until they are placed, so that new ones do not
    take it from under them. A running resource this plan moves or stops anyway needed
    no room held: what it held may have kept another resource out (one of equal
    priority placed before the one that then took the room), which the next plan, with
    the first one no longer running, would place: not stable. Such a plan is made again
    without holding room for those.
    """
    placer = Placer(spec, state, sit)
    placer.run()
    lost = placer.lost_holds()
    if lost:
        placer = Placer(spec, state, sit, unheld=lost)
        placer.run()
    return placer


__all__ = ["Placement", "Placer", "Unit", "add", "order_blocks", "place", "scale"]
