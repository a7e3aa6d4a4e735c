"""CIB constraints (rsc_location, rsc_colocation, rsc_order) as havm constraints.

Today's spelling (``rsc``/``with-rsc``, ``first``/``then``, ``kind``) and
Heartbeat 2's (``from``/``to``, ``type="after"|"before"``, ``score`` on
orders, ``from_role``/``to_role``) are both read. Resource sets are expanded
into pairs as Pacemaker does:

- order: within a sequential set each member after the previous; between
  consecutive sets, the last member of a sequential set (or every member of a
  non-sequential one) before the first (or every) member of the next;
- colocation: within a sequential set each member with the previous one;
  between consecutive sets, the first member of a sequential set (every
  member of a non-sequential one) with the last member of the next set (every
  member of a non-sequential one), as Pacemaker's ``colocate_rsc_sets``.

``require-all=false`` sets (one of, not all of) have no havm equivalent and
are reported. A location constraint with several rules becomes one havm
location per rule (Pacemaker adds the score of every rule that matches, so
this is the same). Constraints that name a resource that was not imported are
reported, never written with a dangling reference.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from havm.config.resources import INFINITY
from havm.importers.cib_resources import Ctx
from havm.importers.cibxml import describe, norm, pcmk_bool, pcmk_role, pcmk_score
from havm.importers.output import format_score, havm_id

_RULE_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "defined", "not_defined")


class _Skip(Exception):
    """This constraint (or rule) is not carried over; the message says why."""


def convert_constraint(ctx: Ctx, el: ET.Element, nodes: set[str]) -> list[dict[str, Any]]:
    try:
        if el.tag == "rsc_location":
            return _location(ctx, el, nodes)
        if el.tag == "rsc_colocation":
            return _colocation(ctx, el)
        if el.tag == "rsc_order":
            return _order(ctx, el)
        raise _Skip("tickets (multi-site clusters) have no havm equivalent")
    except _Skip as e:
        ctx.drop(el, str(e))
        return []


def _rsc(ctx: Ctx, raw: str | None, attr: str) -> str:
    if not raw:
        raise _Skip(f"no {attr!r} attribute")
    if raw in ctx.ids:
        return ctx.ids[raw]
    if raw in ctx.dropped:
        raise _Skip(f"it names {raw!r}, which was not imported ({ctx.dropped[raw]})")
    raise _Skip(f"it names {raw!r}, which is not a resource in the input")


def _attr(el: ET.Element, *names: str) -> str | None:
    for n in names:
        if el.get(n) is not None:
            return el.get(n)
    return None


def _score(el: ET.Element, default: int | None) -> int:
    raw = _attr(el, "score")
    if raw is None:
        if default is None:
            raise _Skip("no 'score'")
        return default
    try:
        return pcmk_score(raw)
    except ValueError as e:
        raise _Skip(str(e)) from None


def _check_role(ctx: Ctx, rsc: str, role: str | None) -> None:
    if role in ("promoted", "unpromoted") and ctx.kinds.get(rsc) != "promotable":
        raise _Skip(f"role {role} on {rsc!r}, which is not a promotable clone in havm")


def _role(el: ET.Element, *names: str) -> str | None:
    raw = _attr(el, *names)
    if raw is None or raw.strip().lower() == "started":
        return None
    role = pcmk_role(raw)
    if role is None:
        raise _Skip(f"role {raw!r}: havm constraints name started, promoted or unpromoted instances")
    return role


def _sets(ctx: Ctx, el: ET.Element) -> list[tuple[list[str], bool, ET.Element]]:
    """The resource sets of a constraint: (havm ids, sequential, set element)."""
    out = []
    for raw_set in el.findall("resource_set"):
        rset = ctx.cib.resolve(raw_set, ctx.report)
        if rset is None:
            raise _Skip("a resource set it uses is missing")
        if rset.get("require-all") is not None and not pcmk_bool(rset.get("require-all", "true")):
            raise _Skip("require-all=false (any one of a set) has no havm equivalent")
        ids = [_rsc(ctx, ref.get("id"), "resource_ref id") for ref in rset.findall("resource_ref")]
        if not ids:
            raise _Skip(f"resource set {rset.get('id')!r} is empty")
        out.append((ids, pcmk_bool(rset.get("sequential", "true")), rset))
    return out


def _location(ctx: Ctx, el: ET.Element, nodes: set[str]) -> list[dict[str, Any]]:
    """Location constraints keep their id (``cli-prefer-vm1`` stays clearable); several from one get -1, -2..."""
    out = _locations(ctx, el, nodes)
    raw = el.get("id")
    if raw:
        base = havm_id(raw)
        for i, c in enumerate(out, 1):
            c_id = base if len(out) == 1 else f"{base[:58]}-{i}"
            c["id"] = c_id
    return out


def _locations(ctx: Ctx, el: ET.Element, nodes: set[str]) -> list[dict[str, Any]]:
    if el.get("rsc-pattern"):
        raise _Skip("rsc-pattern (a regular expression over resource ids) is not supported")
    if el.find("resource_set") is not None:
        targets = [r for ids, _, _ in _sets(ctx, el) for r in ids]
    else:
        targets = [_rsc(ctx, el.get("rsc"), "rsc")]
    role = _role(el, "role")
    out: list[dict[str, Any]] = []
    if el.get("node") is not None:
        node = el.get("node", "")
        if node not in nodes:
            raise _Skip(f"node {node!r} is not among the imported nodes ({', '.join(sorted(nodes))})")
        score = _score(el, None)
        for rsc in targets:
            _check_role(ctx, rsc, role)
            c: dict[str, Any] = {"location": rsc, "node": node, "score": format_score(score)}
            if role:
                c["role"] = role
            out.append(c)
        return out
    rules = el.findall("rule")
    if not rules:
        raise _Skip("neither 'node' nor a <rule>")
    for raw_rule in rules:
        rule = ctx.cib.resolve(raw_rule, ctx.report)
        if rule is None:
            continue
        try:
            score, expression, rule_role = _rule(rule)
        except _Skip as e:
            ctx.drop(raw_rule, str(e))
            continue
        for rsc in targets:
            try:
                _check_role(ctx, rsc, rule_role or role)
            except _Skip as e:
                ctx.drop(raw_rule, str(e))
                continue
            c = {"location": rsc, "rule": {"score": format_score(score), "expression": expression}}
            if rule_role or role:
                c["role"] = rule_role or role
            out.append(c)
    if not out:
        raise _Skip("none of its rules could be carried over")
    return out


def _rule(rule: ET.Element) -> tuple[int, str, str | None]:
    if rule.get("score-attribute") or rule.get("score_attribute"):
        raise _Skip("score-attribute (a score read from a node attribute) is not supported")
    score = _score(rule, 0)
    join = (_attr(rule, "boolean-op", "boolean_op") or "and").strip().lower()
    if join not in ("and", "or"):
        raise _Skip(f"boolean-op {join!r}: expected and/or")
    terms = []
    for sub in rule:
        if sub.tag != "expression":
            raise _Skip(f"<{sub.tag}> in a rule: havm rules test node attributes only")
        terms.append(_expression(sub))
    if not terms:
        raise _Skip("a rule with no expression")
    return score, f" {join} ".join(terms), _role(rule, "role")


def _expression(ex: ET.Element) -> str:
    attr = ex.get("attribute") or ""
    op = (ex.get("operation") or "").strip().lower()
    value = ex.get("value")
    if ex.get("value-source", "literal") != "literal":
        raise _Skip(f"value-source={ex.get('value-source')}: havm compares with literal values")
    if op not in _RULE_OPS:
        raise _Skip(f"operation {op!r}: havm rules know {', '.join(_RULE_OPS)}")
    if attr.startswith("#") and attr != "#uname":
        raise _Skip(f"built-in attribute {attr!r}: havm rules know #uname and node attributes")
    if not attr or (attr != "#uname" and havm_id(attr) != attr):
        raise _Skip(f"attribute {attr!r} is not a valid havm attribute name")
    if (ex.get("type") or "string").lower() == "version":
        raise _Skip("type=version comparisons are not supported")
    if op in ("defined", "not_defined"):
        return f"{op} {attr}"
    if value is None or not value or any(ch.isspace() for ch in value) or value in ("and", "or", *_RULE_OPS):
        raise _Skip(f"value {value!r} cannot be written in a havm rule expression "
                    "(one word, not a keyword)")
    return f"{attr} {op} {value}"


def _colocation(ctx: Ctx, el: ET.Element) -> list[dict[str, Any]]:
    attr = _attr(el, "node-attribute", "node_attribute")
    if attr and attr != "#uname":
        raise _Skip(f"node-attribute={attr}: havm colocates on the same node only")
    score = _score(el, INFINITY)
    if el.find("resource_set") is not None:
        pairs = _colocation_pairs(ctx, el)
    else:
        dep = _rsc(ctx, _attr(el, "rsc", "from"), "rsc")
        primary = _rsc(ctx, _attr(el, "with-rsc", "to"), "with-rsc")
        pairs = [(dep, _role(el, "rsc-role", "from_role", "from-role"),
                  primary, _role(el, "with-rsc-role", "to_role", "to-role"))]
    if _attr(el, "symmetrical") is not None:
        ctx.report.info(*ctx.where(el), describe(el), "'symmetrical' means nothing for a colocation; ignored")
    out = []
    for dep, dep_role, primary, primary_role in pairs:
        if dep == primary:
            continue
        _check_role(ctx, dep, dep_role)
        _check_role(ctx, primary, primary_role)
        c: dict[str, Any] = {"colocation": dep, "with": primary, "score": format_score(score)}
        if dep_role:
            c["role"] = dep_role
        if primary_role:
            c["with_role"] = primary_role
        out.append(c)
    return out


def _colocation_pairs(ctx: Ctx, el: ET.Element) -> list[tuple[str, str | None, str, str | None]]:
    sets = _sets(ctx, el)
    roles = [_role(s, "role") for _, _, s in sets]
    pairs: list[tuple[str, str | None, str, str | None]] = []
    for (ids, seq, _), role in zip(sets, roles, strict=True):
        if seq:
            pairs.extend((ids[i], role, ids[i - 1], role) for i in range(1, len(ids)))
    for k in range(len(sets) - 1):
        (ids1, seq1, _), (ids2, seq2, _) = sets[k], sets[k + 1]
        deps = [ids1[0]] if seq1 else ids1
        prims = [ids2[-1]] if seq2 else ids2
        pairs.extend((d, roles[k], p, roles[k + 1]) for d in deps for p in prims)
    return pairs


_ACTIONS = {"start": "start", "promote": "promote"}


def _order(ctx: Ctx, el: ET.Element) -> list[dict[str, Any]]:
    kind_raw = (el.get("kind") or "").strip().lower()
    if kind_raw:
        if kind_raw not in ("mandatory", "optional", "serialize"):
            raise _Skip(f"kind {kind_raw!r}: expected Mandatory, Optional or Serialize")
        kind = kind_raw
    else:  # Heartbeat 2 / Pacemaker 1.0: score 0 = optional, above 0 = mandatory
        kind = "optional" if _score(el, INFINITY) == 0 else "mandatory"
    sym_raw = _attr(el, "symmetrical")
    symmetrical = None if sym_raw is None else pcmk_bool(sym_raw)
    if el.find("resource_set") is None and el.get("require-all") is not None and \
            not pcmk_bool(el.get("require-all", "true")) and kind == "mandatory":
        kind = "optional"
        ctx.report.info(*ctx.where(el), describe(el), "require-all=false (then may start once any instance of "
                        "first runs): imported as an optional order, which never keeps then from starting")
    if el.find("resource_set") is not None:
        pairs = _order_pairs(ctx, el)
    elif el.get("first") is not None or el.get("then") is not None:
        first_action = _action(_attr(el, "first-action") or "start")
        then_action = _action(_attr(el, "then-action") or first_action)
        pairs = [(_rsc(ctx, el.get("first"), "first"), first_action,
                  _rsc(ctx, el.get("then"), "then"), then_action)]
    else:  # Heartbeat 2: <rsc_order from="A" type="after" to="B"/> = A after B
        a = _rsc(ctx, el.get("from"), "from")
        b = _rsc(ctx, el.get("to"), "to")
        a_action = _action(el.get("action") or "start")
        b_action = _action(el.get("to_action") or el.get("to-action") or a_action)
        typ = (el.get("type") or "after").strip().lower()
        if typ == "after":
            pairs = [(b, b_action, a, a_action)]
        elif typ == "before":
            pairs = [(a, a_action, b, b_action)]
        else:
            raise _Skip(f"type {typ!r}: expected after or before")
    out = []
    for first, first_action, then, then_action in pairs:
        if first == then:
            continue
        c: dict[str, Any] = {"order": first, "then": then}
        if kind != "mandatory":
            c["kind"] = kind
        if symmetrical is not None:
            c["symmetrical"] = symmetrical
        if first_action != "start":
            c["first_action"] = first_action
        if then_action != first_action:
            c["then_action"] = then_action
        out.append(c)
    return out


def _action(raw: str) -> str:
    a = norm(raw)
    if a not in _ACTIONS:
        raise _Skip(f"action {raw!r}: havm orders start and promote actions (stops follow in reverse)")
    return _ACTIONS[a]


def _order_pairs(ctx: Ctx, el: ET.Element) -> list[tuple[str, str, str, str]]:
    sets = _sets(ctx, el)
    actions = [_action(s.get("action") or "start") for _, _, s in sets]
    pairs: list[tuple[str, str, str, str]] = []
    for (ids, seq, _), act in zip(sets, actions, strict=True):
        if seq:
            pairs.extend((ids[i - 1], act, ids[i], act) for i in range(1, len(ids)))
    for k in range(len(sets) - 1):
        (ids1, seq1, _), (ids2, seq2, _) = sets[k], sets[k + 1]
        firsts = [ids1[-1]] if seq1 else ids1
        thens = [ids2[0]] if seq2 else ids2
        pairs.extend((f, actions[k], t, actions[k + 1]) for f in firsts for t in thens)
    return pairs
