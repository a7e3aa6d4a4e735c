"""Make mandatory colocations and orders hold after the greedy assignment.

The greedy pass can leave a mandatory constraint broken: a colocation loop, a
primary that could not be placed after its dependent was, or the ``first`` of a
mandatory order that could not run. Each broken constraint stops (or demotes)
its dependent side; stopping can break another constraint, so this repeats
until nothing changes. Every round removes at least one placement, so it ends.
"""

from __future__ import annotations

from havm.scheduler.scores import INFINITY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from havm.scheduler.placement import Placer


def _demote(pl: Placer, unit_id: str, nodes: list[int], why: str) -> bool:
    promoted = pl.out.promoted.get(unit_id, [])
    bad = [i for i in promoted if i in nodes and i not in pl.sit.frozen.get(pl.units[unit_id].prims[0], ())]
    if not bad:
        return False
    pl.out.promoted[unit_id] = [i for i in promoted if i not in bad]
    p = pl.units[unit_id].prims[0]
    for i in bad:
        pl.out.target[p][i] = "started"
    pl.out.why[unit_id] = why
    return True


def repair(pl: Placer) -> None:
    spec = pl.spec
    colos = [c for c in spec.colocations if abs(c.score) >= INFINITY
             and pl.unit_of[c.rsc] != pl.unit_of[c.with_rsc]]
    orders = [o for o in spec.orders if o.kind == "mandatory" and pl.unit_of[o.first] != pl.unit_of[o.then]]
    if not colos and not orders:
        return  # nothing mandatory to repair
    limit = sum(len(v) for v in pl.out.unit_nodes.values()) + len(colos) + len(orders) + 2
    for _ in range(limit):
        changed = False
        for c in colos:
            d, p = pl.unit_of[c.rsc], pl.unit_of[c.with_rsc]
            allowed = set(pl._nodes_of(p, c.with_role))
            dep_promoted = c.role == "promoted" and pl.units[d].kind == "clone"
            have = pl.out.promoted.get(d, []) if dep_promoted else pl.out.unit_nodes.get(d, [])
            if c.score >= INFINITY:
                bad = [i for i in have if i not in allowed]
                why = f"must run with {c.with_rsc}" + (f" ({c.with_role})" if c.with_role else "")
            else:
                bad = [i for i in have if i in allowed]
                why = f"must not run with {c.with_rsc}"
            if not bad:
                continue
            if dep_promoted:
                changed |= _demote(pl, d, bad, why)
            else:
                changed |= pl.unplace(d, bad if pl.units[d].kind == "clone" else None, why)
        for o in orders:
            f, t = pl.unit_of[o.first], pl.unit_of[o.then]
            first_nodes = pl.out.promoted.get(f, []) if o.first_action == "promote" else pl.out.unit_nodes.get(f, [])
            if o.then_action == "promote" and pl.units[t].kind == "clone":
                have = pl.out.promoted.get(t, [])
            else:
                have = pl.out.unit_nodes.get(t, [])
            if not have:
                continue
            per_node = (pl.units[f].kind == "clone" and pl.units[t].kind == "clone"
                        and spec.clones[t].interleave)
            bad = [i for i in have if i not in first_nodes] if per_node else (list(have) if not first_nodes else [])
            if bad and not first_nodes and set(have) <= pl.may_stay(pl.units[f], pl.units[t], o.symmetrical):
                continue  # running already, and nothing of its first stops: it stays (as Pacemaker)
            if not bad:
                continue
            why = f"{o.first} must {o.first_action} first and cannot"
            if o.then_action == "promote" and pl.units[t].kind == "clone":
                changed |= _demote(pl, t, bad, why)
            else:
                changed |= pl.unplace(t, bad if pl.units[t].kind == "clone" else None, why)
        if not changed:
            return
