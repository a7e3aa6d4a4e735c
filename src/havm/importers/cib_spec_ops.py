"""Operations, roles and location rules as the CIB importer reads them, for the lean reader (``cib_spec``).

Each function answers what ``havm import cib`` would make of the element: the
value it would keep, None where it would drop it (and report it), or
``Unsupported`` where the lean reader leaves the whole CIB to the importer.
"""

from __future__ import annotations

from havm.importers.cib_stream import Element, Unsupported
from havm.importers.pcmk_values import (
    is_havm_id,
    norm,
    pcmk_bool,
    pcmk_interval,
    pcmk_role,
    pcmk_score,
)
from havm.scheduler.model import RuleSpec

OP_NAMES = ("start", "stop", "monitor", "migrate_to", "migrate_from", "promote", "demote")
OP_KEYS = {"id", "name", "interval", "timeout", "role", "on-fail", "enabled", "description"}  # as written today
RULE_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "defined", "not_defined")

#: (on-fail entry, what the importer keeps the operation as (None: drops it), interval)
OpFacts = tuple[tuple[tuple[str, int], str] | None, str | None, float]


def role_of(raw: str | None) -> str | None:
    """Our role for a constraint's role attribute; None for none or Started (the default)."""
    if raw is None or raw.strip().lower() == "started":
        return None
    role = pcmk_role(raw)
    if role is None:
        raise Unsupported(f"role {raw!r}")
    return role


def ops_of(el: Element, memo: dict[tuple[str | None, ...], OpFacts]) -> tuple[float, dict[tuple[str, int], str]]:
    """The interval of the monitor the importer would keep (0: none), and on-fail by (op, interval ms).

    ``memo`` holds what an operation's values come to: a large CIB writes the
    same few operations (monitor 30s, timeout 20s) once per resource.
    """
    monitor = 0.0
    seen: set[str] = set()
    on_fail: dict[tuple[str, int], str] = {}
    for operations in el.children:
        if operations.tag != "operations":
            continue
        if "id-ref" in operations.attrib:
            raise Unsupported("operations with id-ref")
        for op in operations.children:
            if op.tag != "op":
                continue
            attrib = op.attrib
            if attrib.keys() <= OP_KEYS:
                values = (attrib.get("name"), attrib.get("interval"), attrib.get("timeout"), attrib.get("role"),
                          attrib.get("on-fail"), attrib.get("enabled"))  # all but id and description
                facts = memo.get(values)
                if facts is None:
                    facts = memo[values] = _op_facts(attrib.get("name", ""), attrib)
            else:
                facts = _op_facts(attrib.get("name", ""), {norm(k): v for k, v in attrib.items()})
            fail, key, interval = facts
            if fail is not None:
                on_fail[fail[0]] = fail[1]
            if key is None or key in seen:
                continue
            seen.add(key)
            if key == "monitor":
                monitor = interval
    return monitor, on_fail


def _op_facts(name: str, attrs: dict[str, str]) -> OpFacts:
    """What one ``<op>`` (attribute names normalised) comes to, as the importer reads it."""
    policy = attrs.get("on-fail")
    try:
        interval: float | None = pcmk_interval(attrs.get("interval", "0"))
    except ValueError:
        interval = None
    fail = None
    if policy and interval is not None:
        fail = ((name, int(round(interval * 1000))), policy.strip().lower())
    if name not in OP_NAMES or interval is None:
        return fail, None, 0.0
    if "enabled" in attrs:
        try:
            if not pcmk_bool(attrs["enabled"]):
                return fail, None, 0.0
        except ValueError:
            pass
    if "timeout" in attrs:
        try:
            pcmk_interval(attrs["timeout"])
        except ValueError:
            return fail, None, 0.0  # the importer drops an operation whose timeout it cannot read
    role = None
    if "role" in attrs:
        role = pcmk_role(attrs["role"])
        if role is None:
            return fail, None, 0.0
    if name == "monitor" and interval == 0:
        return fail, None, 0.0
    return fail, "monitor_promoted" if name == "monitor" and role == "promoted" else name, interval


def rule_of(rule: Element) -> tuple[int, RuleSpec, str | None] | None:
    """As the importer's ``_rule``; None where it drops the rule."""
    if rule.attrib.get("score-attribute") or rule.attrib.get("score_attribute"):
        return None
    raw = rule.attrib.get("score")
    try:
        score = 0 if raw is None else pcmk_score(raw)
    except ValueError:
        return None
    join = (rule.attrib.get("boolean-op") or rule.attrib.get("boolean_op") or "and").strip().lower()
    if join not in ("and", "or"):
        return None
    terms: list[tuple[str, ...]] = []
    for sub in rule:
        if sub.tag != "expression":
            return None
        term = _expression(sub)
        if term is None:
            return None
        terms.append(term)
    if not terms:
        return None
    try:
        role = role_of(rule.attrib.get("role"))
    except Unsupported:
        return None
    # a one-term rule reads back as "and" from the YAML (there is nothing to join)
    return score, RuleSpec(score, join if len(terms) > 1 else "and", tuple(terms)), role


def _expression(ex: Element) -> tuple[str, ...] | None:
    attr = ex.attrib.get("attribute") or ""
    op = (ex.attrib.get("operation") or "").strip().lower()
    value = ex.attrib.get("value")
    if ex.attrib.get("value-source", "literal") != "literal" or op not in RULE_OPS:
        return None
    if (attr.startswith("#") and attr != "#uname") or not attr or (attr != "#uname" and not is_havm_id(attr)):
        return None
    if (ex.attrib.get("type") or "string").lower() == "version":
        return None
    if op in ("defined", "not_defined"):
        return (op, attr)
    if value is None or not value or any(ch.isspace() for ch in value) or value in ("and", "or", *RULE_OPS):
        return None
    return (op, attr, value)
