"""Placing clones: instances on the best nodes, then which of them are promoted.

An anonymous clone runs at most one instance per node (instances are
indistinguishable); a globally unique clone has named instances ``rsc:0`` ...
and up to ``clone_node_max`` of them per node. Instances already running stay
where they are while their node keeps a score >= 0 (clone stickiness defaults
to 1, as in Pacemaker). For a promotable clone, up to ``promoted_max`` of the
placed instances are promoted: the agent's promotion score, plus location
constraints and colocations that name the promoted role, with the currently
promoted instance winning ties so a healthy primary is never moved for nothing.
"""

from __future__ import annotations

from havm.scheduler.scores import INFINITY, ScoreTable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from havm.scheduler.placement import Placer, Unit


def allocate_clone(pl: Placer, unit: Unit) -> None:
    spec = pl.spec.clones[unit.id]
    sit = pl.sit
    out = pl.out
    n_max = spec.clone_max if spec.clone_max is not None else pl.n
    t = pl.own_table(unit)[0].copy()
    pl._apply_primaries(unit, t)
    sit.restrict_by_policy(unit.prims, t)
    out.scores[unit.id] = t
    need = pl._need(unit.prims)
    pl.release_holds(unit)
    first = unit.prims[0]
    insts = sit.instances.get(first, (first,))
    chosen: list[int] = []
    per_node: dict[int, int] = {}
    assigned: dict[str, int] = {}

    def take(i: int, inst: str | None) -> None:
        chosen.append(i)
        per_node[i] = per_node.get(i, 0) + 1
        if inst is not None:
            assigned[inst] = i
        pl.pool.take(i, need, len(unit.prims))

    # instances that must stay as they are (maintenance, unmanaged, unfenceable)
    for inst in insts:
        for i in sorted(sit.frozen.get(inst, ())):
            take(i, inst if spec.globally_unique else None)
    if len(chosen) > n_max:
        n_max = len(chosen)
    current: dict[int, list[str]] = {}
    for inst in insts:
        for i in sit.healthy_on.get(inst, ()):
            current.setdefault(i, []).append(inst)

    def ok(i: int) -> bool:
        return (sit.usable[i] and t.get(i) >= 0 and per_node.get(i, 0) < spec.clone_node_max
                and pl.pool.fits(i, need))

    if spec.globally_unique:
        # running instances keep their node when they can
        for inst in insts:
            if inst in assigned or len(chosen) >= n_max:
                continue
            for i in sorted(sit.current.get(inst, {})):
                if sit.healthy[i] and ok(i):
                    take(i, inst)
                    break
        for inst in insts:
            if inst in assigned or len(chosen) >= n_max:
                continue
            cands = [i for i in range(pl.n) if ok(i)]
            if not cands:
                break
            best = min(cands, key=lambda i: (-t.get(i), per_node.get(i, 0), pl.pool.key(i)))
            take(best, inst)
        for inst, i in assigned.items():
            out.target[inst] = {i: "started"}
    else:
        cands = sorted((i for i in range(pl.n) if i not in per_node and ok(i)),
                       key=lambda i: (-t.get(i), 0 if i in current else 1, pl.pool.key(i)))
        for i in cands:
            if len(chosen) >= n_max:
                break
            if ok(i):
                take(i, None)
        for p in unit.prims:
            out.target[p] = {i: "started" for i in sorted(chosen)}
    out.unit_nodes[unit.id] = sorted(chosen)
    if not chosen:
        out.why[unit.id] = "no node can run an instance"
    if spec.promotable:
        _promote(pl, unit, sorted(set(chosen)))


def _promote(pl: Placer, unit: Unit, nodes: list[int]) -> None:
    spec = pl.spec.clones[unit.id]
    sit = pl.sit
    p = unit.prims[0]
    prim = pl.spec.primitives[p]
    was = {i for i, rec in sit.current.get(p, {}).items() if rec.role == "promoted" and sit.healthy[i]}
    pinned = {i for i in sit.frozen.get(p, ()) if i in was}
    score = ScoreTable(0, {})
    for i in nodes:
        rec = pl.state.on(p).get(pl.spec.nodes[i].name)
        base = rec.promotion_score if rec is not None and rec.promotion_score is not None else 0
        score.over[i] = base
        if i in was:
            score.add_node(i, max(prim.stickiness, 1))
    loc, _ = pl._location_table(unit, None, role="promoted")
    score.add_table(loc)
    for c in pl.colos_dep.get(unit.id, ()):
        if c.role != "promoted":
            continue
        pid = pl.unit_of[c.with_rsc]
        if pid not in pl.busy:
            pl.allocate(pl.units[pid])
        with_nodes = set(pl._nodes_of(pid, c.with_role))
        if c.score >= INFINITY:
            score.restrict(with_nodes, pl.n)
        else:
            for i in with_nodes:
                score.add_node(i, c.score)
    for c in pl.colos_pri.get(unit.id, ()):
        if c.with_role != "promoted" or c.score <= 0:
            continue
        dep = pl.units[pl.unit_of[c.rsc]]
        if dep.id in pl.done or dep.kind == "clone":
            continue
        dt, _ = pl.own_table(dep)
        trial = score.copy()
        trial.add_table(dt, c.score, INFINITY)
        if any(trial.get(i) >= 0 for i in nodes):
            score = trial
    limit = spec.promoted_max
    if prim.target_role in ("unpromoted", "stopped") or sit.mode == "demote":
        limit = 0
    promoted = sorted(pinned)
    if sit.mode == "freeze":  # keep the primaries there are (up to the limit), make no new one
        promoted += [i for i in sorted(was) if i in nodes and i not in pinned][:max(0, limit - len(promoted))]
        limit = len(promoted)
    cands = sorted((i for i in nodes if i not in promoted and score.get(i) >= 0),
                   key=lambda i: (-score.get(i), 0 if i in was else 1, i))
    for i in cands:
        if len(promoted) >= max(limit, len(pinned)):
            break
        promoted.append(i)
    promoted.sort()
    pl.out.promoted[unit.id] = promoted
    if p in pl.out.target:
        for i in promoted:
            pl.out.target[p][i] = "promoted"
    else:
        # globally unique: targets are kept per instance (p:0, p:1, ...); promote one
        # instance on each chosen node
        left = list(promoted)
        for inst in sit.instances.get(p, ()):
            tgt = pl.out.target.get(inst, {})
            for i in sorted(tgt):
                if i in left:
                    tgt[i] = "promoted"
                    left.remove(i)
                    break
    pl.out.scores[unit.id + "#promoted"] = score


def top_up_clone(pl: Placer, unit: Unit) -> bool:
    """Add instances of an anonymous clone on nodes that have room now (after the first pass)."""
    spec = pl.spec.clones[unit.id]
    t = pl.out.scores.get(unit.id)
    if spec.globally_unique or t is None or pl.sit.mode != "normal":
        return False
    n_max = spec.clone_max if spec.clone_max is not None else pl.n
    chosen = pl.out.unit_nodes.setdefault(unit.id, [])
    if len(chosen) >= n_max:
        return False
    need = pl._need(unit.prims)
    outer, pl.pool.priority = pl.pool.priority, unit.priority
    try:
        cands = sorted((i for i in range(pl.n) if i not in chosen and pl.sit.usable[i] and t.get(i) >= 0),
                       key=lambda i: (-t.get(i), pl.pool.key(i)))
        added = False
        for i in cands:
            if len(chosen) >= n_max:
                break
            if pl.pool.fits(i, need):
                chosen.append(i)
                pl.pool.take(i, need, len(unit.prims))
                for p in unit.prims:
                    pl.out.target.setdefault(p, {})[i] = "started"
                added = True
        chosen.sort()
        return added
    finally:
        pl.pool.priority = outer
