"""From (current, target) placement to a DAG of actions.

Per resource instance: a healthy copy that stays is kept; a copy that leaves is
demoted (if promoted) then stopped; a new copy is started (after every stop of
the same resource: no moment with two copies) then promoted. A copy on an
unclean node is not stopped: fencing that node stops it, so its restart waits
for the fence. An allow_migrate primitive moving between two healthy nodes
migrates (migrate_to on the source, migrate_from on the target, stop of the
leftover on the source) unless something it depends on restarts.

Mandatory orders (and the implicit order inside a group) propagate restarts:
when a ``first`` stops or starts, a ``then`` that would stay put is restarted
after it, as Pacemaker does. For a clone ``first`` only a change on the same
node restarts a ``then`` (havm's choice: adding an instance elsewhere must not
bounce every VM that needs the filesystem clone).

Orders become edges between the actions of both sides (symmetrical ones also
stop ``then`` before ``first``); with a utilization strategy, starts on a node
wait for that node's stops (``load_stopped``), so capacity is never exceeded
in flight either.
"""

from __future__ import annotations

import heapq

from havm.scheduler.scores import format_score
from havm.scheduler.transition import OP_RANK, Action

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from havm.scheduler.model import ResourceState
    from havm.scheduler.placement import Placer


class Inst:
    """One resource instance: where it runs (``cur``), where it should (``tgt``), and the moves."""

    __slots__ = ("id", "prim", "unit", "cur", "tgt", "keep", "stop", "start", "implied", "restarted", "migrate")

    def __init__(self, id: str, prim: str, unit: str, cur: dict[int, str], tgt: dict[int, str],
                 start: set[int] | None = None) -> None:
        self.id = id
        self.prim = prim
        self.unit = unit
        self.cur = cur  # node -> role now (healthy, managed copies)
        self.tgt = tgt
        self.keep: set[int] = set()
        self.stop: set[int] = set()
        self.start: set[int] = set() if start is None else start
        self.implied: set[int] = set()  # on unclean nodes: stopped by fencing
        self.restarted: dict[int, str] = {}
        self.migrate: tuple[int, int] | None = None


def _unchanged(cur: Mapping[int, ResourceState], tgt: Mapping[int, str], healthy: list[bool]) -> bool:
    """Does every copy run on a healthy node, in the role the target gives it there?"""
    for i, rec in cur.items():
        if not healthy[i] or (rec.role or "started") != tgt.get(i):
            return False
    return True


class GraphBuilder:
    def __init__(self, pl: Placer) -> None:
        self.pl = pl
        self.spec = pl.spec
        self.sit = pl.sit
        self.names = [n.name for n in pl.spec.nodes]
        self.actions: dict[str, Action] = {}
        self.edges: dict[str, set[str]] = {}  # action -> the actions it waits for
        self.weak: set[tuple[str, str]] = set()  # edges that may be dropped to break a cycle
        self.insts: dict[str, Inst] = {}
        self.by_prim: dict[str, list[Inst]] = {}

    # -- per instance plan ------------------------------------------------------------
    def prepare(self) -> None:
        sit, out = self.sit, self.pl.out
        healthy, current, target, failed_all = sit.healthy, sit.current, out.target, sit.failed
        # restarts propagate along groups and mandatory orders: instances there always take part
        linked = {p for g in self.spec.groups.values() for p in g.members}
        for o in self.spec.orders:
            linked.update(self.pl.units[self.pl.unit_of[o.first]].prims)
            linked.update(self.pl.units[self.pl.unit_of[o.then]].prims)
        unit_of, instances, frozen_all, insts, by_prim = self.pl.unit_of, sit.instances, sit.frozen, self.insts, \
            self.by_prim
        no_set: set[int] = set()
        for p, prim in self.spec.primitives.items():
            for inst_id in instances.get(p, (p,)):
                frozen = frozen_all.get(inst_id, no_set)
                cur_all = current.get(inst_id, {})
                tgt_all = target.get(inst_id, {})
                if not cur_all and not frozen:  # not running anywhere (the common case of a fresh start)
                    if not tgt_all:
                        continue
                    inst = Inst(inst_id, p, unit_of[p], {}, dict(tgt_all), set(tgt_all))
                    insts[inst_id] = inst
                    if p in by_prim:
                        by_prim[p].append(inst)
                    else:
                        by_prim[p] = [inst]
                    continue
                if not frozen and p not in linked and inst_id not in failed_all and len(cur_all) == len(tgt_all) \
                        and (len(cur_all) <= 1 or prim.clone is not None) \
                        and _unchanged(cur_all, tgt_all, healthy):
                    continue  # stays exactly as it is (or stays stopped): no action, nothing to order
                cur: dict[int, str] = {i: rec.role or "started" for i, rec in cur_all.items()
                                       if healthy[i] and i not in frozen}
                tgt = {i: r for i, r in tgt_all.items() if i not in frozen}
                inst = Inst(inst_id, p, self.pl.unit_of[p], cur, tgt)
                inst.implied = {i for i in cur_all if sit.unclean[i] and i not in frozen}
                multi = prim.clone is None and len(cur_all) > 1
                failed = sit.failed.get(inst_id, set())
                inst.keep = {i for i in cur if i in tgt and i not in failed and not multi}
                inst.stop = set(cur) - inst.keep
                inst.start = set(tgt) - inst.keep
                self.insts[inst_id] = inst
                self.by_prim.setdefault(p, []).append(inst)

    def _deps(self) -> list[tuple[list[str], list[str], bool, str]]:
        """Mandatory (first prims, then prims, same-node-only, first_action) pairs."""
        deps: list[tuple[list[str], list[str], bool, str]] = []
        for g in self.spec.groups.values():
            for a, b in zip(g.members, g.members[1:], strict=False):
                deps.append(([a], [b], True, "start"))
        units = self.pl.units
        for o in self.spec.orders:
            if o.kind != "mandatory":
                continue
            f, t = units[self.pl.unit_of[o.first]], units[self.pl.unit_of[o.then]]
            if f.id == t.id:
                continue
            deps.append((list(f.prims), list(t.prims), f.kind == "clone", o.first_action))
        return deps

    def _changes(self, prims: list[str], first_action: str) -> set[int] | None:
        nodes: set[int] = set()
        for p in prims:
            for inst in self.by_prim.get(p, ()):
                nodes |= inst.stop | inst.start | inst.implied
                if first_action == "promote":
                    nodes |= {i for i in inst.keep if inst.cur.get(i) != inst.tgt.get(i)}
        return nodes

    def propagate(self) -> None:
        deps = self._deps()
        by_first: dict[str, list[int]] = {}
        for k, (firsts, _, _, _) in enumerate(deps):
            for p in firsts:
                by_first.setdefault(p, []).append(k)
        work = list(range(len(deps)))
        budget = 10 * (len(deps) + len(self.insts)) + 10
        while work and budget > 0:
            budget -= 1
            k = work.pop()
            firsts, thens, same_node, action = deps[k]
            changed = self._changes(firsts, action)
            if not changed:
                continue
            for p in thens:
                for inst in self.by_prim.get(p, ()):
                    hit = [i for i in inst.keep if not same_node or i in changed]
                    if not hit:
                        continue
                    for i in hit:
                        inst.keep.discard(i)
                        inst.stop.add(i)
                        inst.start.add(i)
                        inst.restarted[i] = f"{firsts[0]} changes" if len(firsts) == 1 else \
                            f"{self.pl.unit_of[firsts[0]]} changes"
                    work.extend(by_first.get(p, ()))

    def choose_migrations(self) -> None:
        sit = self.sit
        # A resource cannot migrate while something it is ordered after both stops and
        # starts: its migration would wait for that start, which waits for that stop,
        # which (symmetrical order) waits for the migration to finish.
        blockers: dict[str, set[str]] = {}
        for o in self.spec.orders:
            if o.kind == "mandatory":
                blockers.setdefault(self.pl.unit_of[o.then], set()).add(self.pl.unit_of[o.first])
        stopping, starting = set(), set()
        for inst in self.insts.values() if blockers else ():
            if inst.stop or inst.implied:
                stopping.add(inst.unit)
            if inst.start:
                starting.add(inst.unit)
        restarting_units = stopping & starting
        for inst in self.insts.values():
            # a move from one node to one other (most instances only start: the cheap test first)
            if len(inst.stop) != 1 or len(inst.start) != 1 or len(inst.cur) != 1 or len(inst.tgt) != 1:
                continue
            prim = self.spec.primitives[inst.prim]
            if not prim.allow_migrate or prim.group or prim.clone or inst.implied or inst.restarted:
                continue
            (src,), (dst,) = inst.stop, inst.start
            if src == dst or inst.id in sit.failed or not sit.healthy[src] or not sit.healthy[dst]:
                continue
            if blockers.get(inst.unit, set()) & restarting_units:
                continue
            inst.migrate = (src, dst)

    # -- actions ------------------------------------------------------------------------
    def add(self, op: str, rsc: str | None, node: int | None, reason: str = "", target: int | None = None,
            pseudo: bool = False, interval: float = 0.0, aid: str | None = None) -> str:
        name = self.names[node] if node is not None else None
        if aid is None:
            aid = f"fence_{name}" if op == "fence" else f"{rsc}_{op}_{name}"
        actions = self.actions
        if aid not in actions:
            actions[aid] = Action(aid, op, name, rsc, None if target is None else self.names[target], pseudo,
                                  interval, reason)
            self.edges[aid] = set()
        return aid

    def edge(self, before: str | None, after: str | None, weak: bool = False) -> None:
        if before is None or after is None or before == after:
            return
        self.edges[after].add(before)
        if weak:
            self.weak.add((before, after))

    def _start_only(self, inst: Inst, monitor: float) -> None:
        """``emit`` for an instance that only starts (nothing runs, nothing to stop or promote)."""
        r = inst.id
        ub: dict[int, str] = {}
        arrivals = self.arrivals
        for y in inst.start if len(inst.start) == 1 else sorted(inst.start):
            st = self.add("start", r, y, self._best_score(inst, y))  # (why_start's answer here)
            ub[y] = st
            if y in arrivals:
                arrivals[y].append(st)
            else:
                arrivals[y] = [st]
            last = st
            if inst.tgt.get(y) == "promoted":
                last = self.add("promote", r, y, "chosen as primary")
                self.promotes[r] = {y: last}
                self.edge(st, last)
            if monitor > 0:
                self.edges[self.add("monitor", r, y, interval=monitor)].add(last)
        self.up_begin[r] = self.up_end[r] = ub

    def emit(self) -> None:
        sit = self.sit
        self.up_begin: dict[str, dict[int, str]] = {}
        self.up_end: dict[str, dict[int, str]] = {}
        self.down: dict[str, dict[int, str]] = {}  # the copy on the node is gone
        self.down_begin: dict[str, dict[int, str]] = {}  # the copy starts leaving the node
        self.promotes: dict[str, dict[int, str]] = {}
        self.demotes: dict[str, dict[int, str]] = {}
        self.plain_stops: dict[int, list[str]] = {}
        self.arrivals: dict[int, list[str]] = {}
        fences = {i: self.add("fence", None, i, "node is unclean") for i in sit.to_fence}
        prims = self.spec.primitives
        for inst in self.insts.values():
            monitor = prims[inst.prim].monitor_interval
            if not inst.cur and not inst.implied and len(inst.start) == 1:
                self._start_only(inst, monitor)
                continue
            r = inst.id
            ub: dict[int, str] = {}
            ue: dict[int, str] = {}
            dn: dict[int, str] = {}
            pr: dict[int, str] = {}
            dm: dict[int, str] = {}
            db: dict[int, str] = {}
            self.up_begin[r], self.up_end[r], self.down[r] = ub, ue, dn
            self.promotes[r], self.demotes[r], self.down_begin[r] = pr, dm, db
            stops, starts = [], []
            for x in sorted(inst.stop):
                why = self.why_leave(inst, x)
                if inst.cur.get(x) == "promoted":
                    dm[x] = self.add("demote", r, x, why)
                if inst.migrate:
                    src, dst = inst.migrate
                    mt = self.add("migrate_to", r, src, self.why_move(inst, src, dst), target=dst)
                    mf = self.add("migrate_from", r, dst, self.why_move(inst, src, dst), target=src)
                    st = self.add("stop", r, src, f"migrated to {self.names[dst]}")
                    self.edge(mt, mf)
                    self.edge(mf, st)
                    ub[dst], ue[dst], dn[src], db[src] = mt, mf, st, mt
                    if monitor > 0:
                        self.edge(mf, self.add("monitor", r, dst, interval=monitor))
                    break
                st = self.add("stop", r, x, why)
                self.edge(dm.get(x), st)
                dn[x] = st
                db[x] = dm.get(x, st)
                stops.append(st)
                self.plain_stops.setdefault(x, []).append(st)
            if inst.migrate:
                continue
            for y in sorted(inst.start):
                st = self.add("start", r, y, self.why_start(inst, y))
                ub[y] = ue[y] = st
                starts.append(st)
                self.arrivals.setdefault(y, []).append(st)
                last = st
                if inst.tgt.get(y) == "promoted":
                    last = pr[y] = self.add("promote", r, y, "chosen as primary")
                    self.edge(st, last)
                if monitor > 0:
                    self.edge(last, self.add("monitor", r, y, interval=monitor))
            for y in sorted(inst.keep):
                now, to = inst.cur.get(y), inst.tgt.get(y)
                if now == to:
                    continue
                if to == "promoted":
                    act = pr[y] = self.add("promote", r, y, "chosen as primary")
                else:
                    act = dm[y] = self.add("demote", r, y, self.pl.out.why.get(inst.unit, "another is primary"))
                if monitor > 0:
                    self.edge(act, self.add("monitor", r, y, interval=monitor))
            for s in stops:
                for t in starts:
                    self.edge(s, t)
            for d in dm.values():
                for p in pr.values():
                    self.edge(d, p)
            for u in inst.implied:
                f = fences.get(u)
                for a in list(ub.values()) + list(pr.values()):
                    self.edge(f, a)

    def wire_groups(self) -> None:
        for g in self.spec.groups.values():
            for a, b in zip(g.members, g.members[1:], strict=False):
                for ia, ib in zip(self.by_prim.get(a, ()), self.by_prim.get(b, ()), strict=False):
                    for y, act in self.up_begin.get(ib.id, {}).items():
                        self.edge(self.up_end.get(ia.id, {}).get(y), act)
                    for x, act in self.down.get(ia.id, {}).items():
                        self.edge(self.down.get(ib.id, {}).get(x), act)

    def _collect(self, prims: tuple[str, ...], table: dict[str, dict[int, str]]) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for p in prims:
            for inst in self.by_prim.get(p, ()):
                out.extend(table.get(inst.id, {}).items())
        return sorted(out)

    def _connect(self, befores: list[tuple[int, str]], afters: list[tuple[int, str]], per_node: bool,
                 barrier: str, rsc: str, weak: bool) -> None:
        if not befores or not afters:
            return
        if per_node:
            for x, b in befores:
                for y, a in afters:
                    if x == y:
                        self.edge(b, a, weak)
            return
        if len(befores) > 1 and len(afters) > 1:
            op = "running" if barrier.endswith("running") else "stopped"
            bar = self.add(op, rsc, None, pseudo=True, aid=barrier)
            for _, b in befores:
                self.edge(b, bar)
            for _, a in afters:
                self.edge(bar, a, weak)
            return
        for _, b in befores:
            for _, a in afters:
                self.edge(b, a, weak)

    def wire_orders(self) -> None:
        units = self.pl.units
        for o in self.spec.orders:
            f, t = units[self.pl.unit_of[o.first]], units[self.pl.unit_of[o.then]]
            if f.id == t.id:
                continue
            per_node = f.kind == "clone" and t.kind == "clone" and self.spec.clones[t.id].interleave
            weak = o.kind != "mandatory"
            done = self._collect(f.prims, self.promotes if o.first_action == "promote" else self.up_end)
            begin = self._collect(t.prims, self.promotes if o.then_action == "promote" else self.up_begin)
            self._connect(done, begin, per_node, f"{f.id}_{o.first_action}_running", f.id, weak)
            if o.symmetrical:
                t_down = self._collect(t.prims, self.demotes if o.then_action == "promote" else self.down)
                f_down = self._collect(f.prims, self.demotes if o.first_action == "promote" else self.down_begin)
                self._connect(t_down, f_down, per_node, f"{t.id}_{o.then_action}_stopped", t.id, True)

    def wire_load(self) -> None:
        if self.spec.properties.placement_strategy == "default":
            return
        for i, stops in sorted(self.plain_stops.items()):
            arrivals = self.arrivals.get(i, [])
            if not arrivals:
                continue
            bar = self.add("load_stopped", None, i, pseudo=True, aid=f"load_stopped_{self.names[i]}")
            for s in stops:
                self.edge(s, bar)
            for a in arrivals:
                self.edge(bar, a)

    # -- reasons --------------------------------------------------------------------------
    def _score(self, unit: str, i: int) -> str:
        t = self.pl.out.scores.get(unit)
        return format_score(t.get(i)) if t is not None else "?"

    def why_leave(self, inst: Inst, x: int) -> str:
        sit, name = self.sit, self.names[x]
        if x in inst.restarted:
            return f"restart: {inst.restarted[x]}"
        rec = self.pl.state.on(inst.id).get(name)
        if rec is not None and rec.failed:
            prim = self.spec.primitives[inst.prim]
            if self.pl._banned(prim.migration_threshold, prim.failure_timeout, rec):
                return f"failed {rec.failcount} times on {name} (migration_threshold {prim.migration_threshold})"
            return f"recovering from a failure on {name}"
        if not sit.usable[x]:
            return f"{name} is in standby" if sit.healthy[x] else f"{name} is {sit.status[x]}"
        if len(inst.cur) > 1 and self.spec.primitives[inst.prim].clone is None:
            return "active on several nodes"
        if not inst.tgt:
            return self.pl.out.why.get(inst.prim) or self.pl.out.why.get(inst.unit) or "stopping"
        if x not in inst.tgt:
            if self.spec.primitives[inst.prim].clone is not None:
                return "instance no longer needed here"
            y = min(inst.tgt)
            return f"moving to {self.names[y]} (score {self._score(inst.unit, y)} vs {self._score(inst.unit, x)})"
        return "stopping"

    def why_start(self, inst: Inst, y: int) -> str:
        if y in inst.restarted:
            return f"restart: {inst.restarted[y]}"
        if inst.implied:
            return "recovering from " + ", ".join(self.names[u] for u in sorted(inst.implied)) + " after fencing"
        if inst.stop:
            if y in inst.stop:
                return f"recovering on {self.names[y]}"
            x = min(inst.stop)
            return f"moving from {self.names[x]}: {self.why_leave(inst, x)}"
        return self._best_score(inst, y)

    def _best_score(self, inst: Inst, y: int) -> str:
        t = self.pl.out.scores.get(inst.unit)
        return f"best score {format_score(t.get(y)) if t is not None else '?'} on {self.names[y]}"

    def why_move(self, inst: Inst, src: int, dst: int) -> str:
        return f"live migration: {self.why_leave(inst, src)}"

    # -- order ----------------------------------------------------------------------------
    def build(self) -> tuple[list[Action], dict[str, tuple[str, ...]], list[str]]:
        self.prepare()
        self.propagate()
        self.choose_migrations()
        self.emit()
        self.wire_groups()
        self.wire_orders()
        self.wire_load()
        notes: list[str] = []
        order = self._toposort()
        if order is None:
            notes.append("the orders form a cycle; optional and symmetrical edges inside it were dropped")
            for before, after in self.weak:
                self.edges[after].discard(before)
            order = self._toposort()
        if order is None:
            notes.append("the mandatory orders form a cycle; their edges inside it were dropped")
            self._drop_cycle_edges()
            order = self._toposort()
            assert order is not None
        edges = self.edges
        waits: dict[str, tuple[str, ...]] = {}
        for a in order:
            e = edges[a]
            waits[a] = tuple(sorted(e)) if len(e) > 1 else tuple(e)
        return [self.actions[a] for a in order], waits, notes

    def _toposort(self) -> list[str] | None:
        """Kahn's algorithm; among ready actions the lowest (operation rank, id) first.

        Actions are numbered in that order, and most of them wait only for actions
        before them in it (fences, then stops, starts, monitors), so the order is walked
        front to back: an action whose predecessors are all taken is taken when the walk
        reaches it, unless a deferred action that has become ready since is lower. Only
        the actions reached too early (an order between two starts, say) are deferred:
        they alone need to know their predecessors' successors, and a heap.
        """
        actions, rank = self.actions, OP_RANK
        # Two sorts (ids as strings, then a stable sort by rank) cost less than one sort
        # of (rank, id) tuples.
        ids = sorted(self.edges)
        ids.sort(key=lambda a: rank.get(actions[a].op, 99))
        num = {a: k for k, a in enumerate(ids)}
        edges = self.edges
        n = len(ids)
        k = self._forward_prefix(ids, num)  # all taken in order, none deferred
        if k == n:
            return ids
        taken = [True] * k + [False] * (n - k)
        blocked = [0] * n  # a deferred action: how many of its predecessors are not taken
        waiters: dict[int, list[int]] = {}  # untaken action -> deferred actions waiting for it
        ready: list[int] = []  # deferred actions whose predecessors are all taken: a heap
        order = list(range(k))
        pop, push = heapq.heappop, heapq.heappush
        while True:
            while k < n:  # the walk: defer what is not ready yet
                missing = 0
                for b in edges[ids[k]]:
                    j = num[b]
                    if not taken[j]:
                        missing += 1
                        waiters.setdefault(j, []).append(k)
                if not missing:
                    break
                blocked[k] = missing
                k += 1
            if ready and (k == n or ready[0] < k):
                j = pop(ready)
            elif k < n:
                j = k
                k += 1
            else:
                break
            taken[j] = True
            order.append(j)
            if j in waiters:
                for w in waiters.pop(j):
                    blocked[w] -= 1
                    if blocked[w] == 0:
                        push(ready, w)
        return [ids[j] for j in order] if len(order) == n else None

    def _forward_prefix(self, ids: list[str], num: dict[str, int]) -> int:
        """How many actions, from the first in ``ids``, wait only for actions before them."""
        edges = self.edges
        for k, a in enumerate(ids):
            for b in edges[a]:
                if num[b] > k:
                    return k
        return len(ids)

    def _drop_cycle_edges(self) -> None:
        intrinsic_ops = {"demote", "stop", "start", "promote", "monitor", "migrate_to", "migrate_from"}
        for after, befores in self.edges.items():
            a = self.actions[after]
            for b in list(befores):
                ab = self.actions[b]
                same = a.resource == ab.resource and a.op in intrinsic_ops
                if not same and ab.op != "fence":
                    befores.discard(b)
