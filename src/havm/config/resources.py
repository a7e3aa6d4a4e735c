"""The resource sections of cluster.yaml: ``properties``, ``resources``, ``constraints``.

Written to be read: a VM with sensible defaults takes one line,
``{id: vm1, type: vm, params: {memory: 256}}``. Pacemaker's vocabulary is
kept (stickiness, migration_threshold, clone_max, INFINITY) with snake_case
names, so a Pacemaker user recognises everything; docs/config-resources.md
describes every field.

Scores are integers saturated at +/-1,000,000 (Pacemaker's INFINITY) and may be
written ``INFINITY``, ``+INFINITY``, ``-INFINITY`` (or ``inf``/``-inf``).

Cross-references (a constraint naming an unknown resource, a duplicate id) are
checked by :func:`check_references`, which ClusterConfig calls; each problem is
reported at the exact list item that holds it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_validator

from havm.config.cluster import Strict
from havm.config.types import Duration, Name

INFINITY = 1_000_000

_INF_WORDS = {"infinity": INFINITY, "+infinity": INFINITY, "inf": INFINITY, "+inf": INFINITY,
              "-infinity": -INFINITY, "-inf": -INFINITY}


def parse_score(value: object) -> int:
    """An integer score, saturated at +/-INFINITY; accepts 'INFINITY', '-INFINITY'."""
    if isinstance(value, bool):
        raise ValueError("expected a score: an integer, INFINITY or -INFINITY")
    if isinstance(value, int):
        return max(-INFINITY, min(INFINITY, value))
    if isinstance(value, float) and value.is_integer():
        return max(-INFINITY, min(INFINITY, int(value)))
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _INF_WORDS:
            return _INF_WORDS[word]
        if re.fullmatch(r"[+-]?\d+", word):
            return max(-INFINITY, min(INFINITY, int(word)))
    raise ValueError(f"expected a score: an integer, INFINITY or -INFINITY, got {value!r}")


Score = Annotated[int, BeforeValidator(parse_score)]

_ROLE_ALIASES = {"master": "promoted", "slave": "unpromoted", "started": "started",
                 "stopped": "stopped", "promoted": "promoted", "unpromoted": "unpromoted"}


def _role(value: object) -> object:
    if isinstance(value, str):
        return _ROLE_ALIASES.get(value.strip().lower(), value)
    return value


TargetRole = Annotated[Literal["started", "stopped", "promoted", "unpromoted"], BeforeValidator(_role)]
ConstraintRole = Annotated[Literal["started", "promoted", "unpromoted"], BeforeValidator(_role)]

#: short agent names and what they stand for
#: (havm's own agents, see havm.executor.registry; the OCF ones run unmodified by full name)
AGENT_ALIASES = {
    "vm": "havm:vm", "libvirt": "havm:libvirt", "ip": "havm:ip",
    "fs": "havm:fs", "service": "havm:service", "dummy": "havm:dummy",
}
_AGENT = re.compile(
    r"^(?:(?P<short>[a-z][a-z0-9_-]*)|ocf:[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+|"
    r"(?:lsb|systemd|service|stonith|havm):[A-Za-z0-9_.@-]+)$")


def _check_agent(value: str) -> str:
    m = _AGENT.match(value)
    if not m or (m.group("short") and m.group("short") not in AGENT_ALIASES):
        raise ValueError(
            f"unknown agent type {value!r}; expected one of {', '.join(AGENT_ALIASES)} "
            "or a full name such as ocf:heartbeat:IPaddr2, lsb:apache2, systemd:nginx")
    return value


AgentType = Annotated[str, BeforeValidator(lambda v: _check_agent(v) if isinstance(v, str) else v)]


_KNOWN_KEYS: dict[type, frozenset[str]] = {}


class Section(Strict):
    """Strict model whose unknown keys are reported with the list of allowed ones."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = _KNOWN_KEYS.get(cls)
            if known is None:  # computed once per class: this runs for every item of a large config
                known = _KNOWN_KEYS[cls] = frozenset(cls.model_fields)
            unknown = [k for k in data if k not in known]
            if unknown:
                allowed = ", ".join(cls.model_fields)
                names = ", ".join(repr(k) for k in unknown)
                raise ValueError(f"unknown key {names}; expected one of: {allowed}")
        return data


class Meta(Section):
    """Per-resource behaviour. ``None`` means inherit (group/clone meta, then resource_defaults)."""

    stickiness: Score | None = Field(None, description="preference for staying where it runs")
    migration_threshold: int | None = Field(
        None, ge=0, description="failures on a node before it is banned there; 0 = never ban")
    failure_timeout: Duration | None = Field(None, description="failures older than this are forgotten; 0 = never")
    allow_migrate: bool | None = Field(None, description="live-migrate instead of stop/start when moving")
    target_role: TargetRole | None = None
    priority: int | None = Field(None, description="higher priority resources are placed first")
    is_managed: bool | None = Field(None, description="false: havm neither starts nor stops it")


class Op(Section):
    interval: Duration = 0.0
    timeout: Duration = 20.0
    role: ConstraintRole | None = None
    on_fail: Literal["restart", "ignore", "block", "stop", "fence", "standby"] | None = None


OpName = Literal["start", "stop", "monitor", "monitor_promoted", "migrate_to", "migrate_from",
                 "promote", "demote"]
#: agent parameters: scalars, or lists and mappings of them for agents that take structure
#: (a VM's disks and NICs); OCF agents get scalars only, as OCF_RESKEY_* variables
Param = str | int | float | bool | list[Any] | dict[str, Any]


class Primitive(Section):
    """One resource driven by one agent."""

    id: Name
    type: AgentType
    params: dict[Name, Param] = Field(default_factory=dict)
    utilization: dict[Name, int] = Field(default_factory=dict)
    meta: Meta = Field(default_factory=Meta)
    ops: dict[OpName, Op] = Field(default_factory=dict)


class Group(Section):
    """Members start in order on one node and stop in reverse order."""

    group: Name
    resources: list[Primitive] = Field(min_length=1)
    meta: Meta = Field(default_factory=Meta)


class Clone(Section):
    """Copies of one primitive or group on several nodes; promotable: some are primaries."""

    clone: Name
    resource: Annotated[Annotated[Primitive, Tag("<primitive>")] | Annotated[Group, Tag("<group>")],
                        Discriminator(lambda v: "<group>" if isinstance(v, dict) and "group" in v
                                      else "<primitive>")]
    clone_max: int | None = Field(None, ge=0, description="instances in all; default: one per node")
    clone_node_max: int = Field(1, ge=1)
    interleave: bool = False
    globally_unique: bool = False
    promotable: bool = False
    promoted_max: int = Field(1, ge=0)
    promoted_node_max: int = Field(1, ge=1)
    meta: Meta = Field(default_factory=Meta)

    @model_validator(mode="after")
    def _rules(self) -> Clone:
        if self.clone_node_max > 1 and not self.globally_unique:
            raise ValueError("clone_node_max above 1 needs globally_unique: true "
                             "(anonymous instances are indistinguishable on one node)")
        if self.promotable and isinstance(self.resource, Group):
            raise ValueError("a promotable clone must hold a primitive, not a group")
        if self.globally_unique and isinstance(self.resource, Group):
            raise ValueError("a globally unique clone must hold a primitive, not a group")
        return self


def _resource_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "group" in value:
            return "<group>"
        if "clone" in value:
            return "<clone>"
    return "<primitive>"


Resource = Annotated[
    Annotated[Primitive, Tag("<primitive>")] | Annotated[Group, Tag("<group>")] | Annotated[Clone, Tag("<clone>")],
    Discriminator(_resource_kind)]


class Rule(Section):
    """Score the nodes whose attributes match ``expression``.

    ``expression``: ``ATTR OP VALUE`` or ``defined ATTR`` / ``not_defined ATTR``,
    joined by ``and`` or ``or`` (not both). OP is eq, ne, lt, lte, gt, gte;
    values compare as numbers when both sides are numbers. ``#uname`` is the node name.
    """

    score: Score
    expression: str

    @model_validator(mode="after")
    def _parse(self) -> Rule:
        parse_expression(self.expression)
        return self


_CMP = ("eq", "ne", "lt", "lte", "gt", "gte")


def parse_expression(text: str) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """``"rack eq r2 and ssd defined"`` -> ("and", (("eq", "rack", "r2"), ...))."""
    words = text.split()
    joins = {w for w in words if w in ("and", "or")}
    if len(joins) > 1:
        raise ValueError(f"expression {text!r} mixes 'and' and 'or'; use one of them")
    join = joins.pop() if joins else "and"
    terms: list[tuple[str, ...]] = []
    current: list[str] = []
    for w in words + [join]:
        if w == join:
            if len(current) == 3 and current[1] in _CMP:
                terms.append((current[1], current[0], current[2]))
            elif len(current) == 2 and current[0] in ("defined", "not_defined"):
                terms.append((current[0], current[1]))
            elif len(current) == 2 and current[1] in ("defined", "not_defined"):
                terms.append((current[1], current[0]))
            else:
                raise ValueError(
                    f"cannot read expression {' '.join(current)!r} in {text!r}; expected ATTR OP VALUE "
                    f"(OP one of {', '.join(_CMP)}) or 'defined ATTR' / 'not_defined ATTR'")
            current = []
        else:
            current.append(w)
    return join, tuple(terms)


class Location(Section):
    """Prefer (score > 0) or avoid (score < 0) nodes for a resource."""

    location: Name
    id: Name | None = Field(None, description="optional name; 'havm resource move/ban' use cli-prefer-*/cli-ban-*")
    node: Name | None = None
    score: Score | None = None
    rule: Rule | None = None
    role: ConstraintRole | None = None

    @model_validator(mode="after")
    def _shape(self) -> Location:
        if (self.node is None) == (self.rule is None):
            raise ValueError("a location constraint needs exactly one of 'node' (with 'score') or 'rule'")
        if self.node is not None and self.score is None:
            raise ValueError("a location constraint with 'node' needs a 'score' (e.g. 100, INFINITY, -INFINITY)")
        if self.rule is not None and self.score is not None:
            raise ValueError("put the score inside 'rule' for a rule-based location constraint")
        return self


class Colocation(Section):
    """Place ``colocation`` (the dependent) relative to ``with`` (the primary)."""

    colocation: Name
    with_: Name = Field(alias="with")
    score: Score = INFINITY
    role: ConstraintRole | None = None
    with_role: ConstraintRole | None = None

    model_config = Strict.model_config | {"populate_by_name": True}

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:  # 'with' is the key, with_ the attribute
        if isinstance(data, dict):
            allowed = ("colocation", "with", "score", "role", "with_role")
            unknown = [k for k in data if k not in allowed]
            if unknown:
                raise ValueError(f"unknown key {', '.join(repr(k) for k in unknown)}; "
                                 f"expected one of: {', '.join(allowed)}")
        return data


class Order(Section):
    """Start ``then`` after ``order`` (its first); symmetrical: stop in reverse."""

    order: Name
    then: Name
    kind: Literal["mandatory", "optional", "serialize"] = "mandatory"
    symmetrical: bool | None = Field(None, description="default: true, except for serialize")
    first_action: Literal["start", "promote"] = "start"
    then_action: Literal["start", "promote"] | None = Field(None, description="default: first_action")


def _constraint_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("location", "colocation", "order"):
            if key in value:
                return f"<{key}>"
    return "<location>"


Constraint = Annotated[
    Annotated[Location, Tag("<location>")] | Annotated[Colocation, Tag("<colocation>")] | Annotated[Order, Tag("<order>")],
    Discriminator(_constraint_kind)]


def _action_limit(unlimited: bool, zero: str) -> BeforeValidator:
    """A count of concurrent actions: a whole number >= 1, or -1 (no limit) where allowed.

    0 is refused, with ``zero`` saying why: as a plain count it would admit
    nothing and hang every transition, and Pacemaker's meanings of 0
    (batch-limit: from the nodes' CPU load; node-action-limit: 2 x the node's
    cores) rest on figures havm does not measure."""
    expected = "-1 (no limit) or a whole number of actions, at least 1" if unlimited else \
        "a whole number of actions, at least 1"

    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected {expected}, got {value!r}")
        if value >= 1 or (unlimited and value == -1):
            return value
        raise ValueError(f"expected {expected}, got {value}" + (f" ({zero})" if value == 0 else ""))

    return BeforeValidator(check)


BatchLimit = Annotated[int, _action_limit(
    False, "Pacemaker's 0, a limit from the nodes' CPU load, has no havm equivalent")]
NodeActionLimit = Annotated[int, _action_limit(
    True, "Pacemaker's 0, 2 x the node's cores, has no havm equivalent: give that number")]
MigrationLimit = Annotated[int, _action_limit(True, "no migration could ever run; -1 for no limit")]


class Properties(Section):
    """Cluster-wide scheduling properties (Pacemaker's cluster options)."""

    no_quorum_policy: Literal["stop", "freeze", "ignore", "demote"] = "stop"
    fencing_enabled: bool = True
    fencing_watchdog_timeout: Duration | None = Field(
        None, description="watchdog self-fencing: a lost node counts as fenced after this long (default: "
                          "2 x watchdog.timeout); must exceed watchdog.timeout + watchdog.interval + deadtime")
    symmetric_cluster: bool = Field(True, description="false: resources run only where a location allows")
    maintenance_mode: bool = Field(False, description="true: the scheduler plans nothing")
    placement_strategy: Literal["default", "utilization", "balanced", "minimal"] = "default"
    stickiness: Score = Field(0, description="default stickiness (resource_defaults.stickiness wins)")
    auto_failback: bool = Field(
        True, description="Heartbeat's auto_failback: true, resources return to their preferred node when it "
                          "comes back; false, they stay where they run (default stickiness INFINITY)")
    # throttling (controller/throttle.py); fencing is never throttled. Defaults keep the
    # controller's long-standing behaviour (16 at once, nothing per node): see
    # docs/config-resources.md for the values to choose on small hosts
    batch_limit: BatchLimit = Field(16, description="resource actions running at once in the whole cluster")
    node_action_limit: NodeActionLimit = Field(
        -1, description="resource actions running at once on one node (a live migration counts on its source "
                        "and its target); -1: no limit")
    migration_limit: MigrationLimit = Field(
        -1, description="live migrations running at once on one node (source and target); -1: no limit")


def walk_primitives(resources: list[Any]) -> list[tuple[Primitive, Group | None, Clone | None]]:
    """Every primitive with its enclosing group and clone, in config order."""
    out: list[tuple[Primitive, Group | None, Clone | None]] = []
    for r in resources:
        if isinstance(r, Primitive):
            out.append((r, None, None))
        elif isinstance(r, Group):
            out.extend((m, r, None) for m in r.resources)
        else:
            inner = r.resource
            if isinstance(inner, Group):
                out.extend((m, inner, r) for m in inner.resources)
            else:
                out.append((inner, None, r))
    return out


def check_references(resources: list[Any], constraints: list[Any], node_names: list[str]) -> list[
        tuple[tuple[str | int, ...], str, object]]:
    """Cross-field problems as (location, message, input) triples."""
    problems: list[tuple[tuple[str | int, ...], str, object]] = []
    ids: dict[str, tuple[str | int, ...]] = {}
    promotable: set[str] = set()

    def claim(name: str, loc: tuple[str | int, ...]) -> None:
        if name in ids:
            problems.append((loc, f"id {name!r} is already used (at {_fmt(ids[name])})", name))
        else:
            ids[name] = loc

    for i, r in enumerate(resources):
        if isinstance(r, Primitive):
            claim(r.id, ("resources", i, "id"))
        elif isinstance(r, Group):
            claim(r.group, ("resources", i, "group"))
            for j, m in enumerate(r.resources):
                claim(m.id, ("resources", i, "resources", j, "id"))
        else:
            claim(r.clone, ("resources", i, "clone"))
            inner = r.resource
            if isinstance(inner, Group):
                claim(inner.group, ("resources", i, "resource", "group"))
                for j, m in enumerate(inner.resources):
                    claim(m.id, ("resources", i, "resource", "resources", j, "id"))
            else:
                claim(inner.id, ("resources", i, "resource", "id"))
                if r.promotable:
                    promotable.update((inner.id, r.clone))
    nodes = set(node_names)
    known = ", ".join(sorted(ids)) or "none configured"

    def ref(name: str, loc: tuple[str | int, ...]) -> None:
        if name not in ids:
            problems.append((loc, f"unknown resource {name!r}; resources are: {known}", name))

    for i, c in enumerate(constraints):
        if isinstance(c, Location):
            ref(c.location, ("constraints", i, "location"))
            if c.node is not None and c.node not in nodes:
                problems.append((("constraints", i, "node"),
                                 f"unknown node {c.node!r}; nodes are: {', '.join(node_names)}", c.node))
            if c.role in ("promoted", "unpromoted") and c.location in ids and c.location not in promotable:
                problems.append((("constraints", i, "role"),
                                 f"role {c.role} needs a promotable clone, {c.location!r} is not one", c.role))
        elif isinstance(c, Colocation):
            ref(c.colocation, ("constraints", i, "colocation"))
            ref(c.with_, ("constraints", i, "with"))
            if c.colocation == c.with_:
                problems.append((("constraints", i, "with"), "a resource cannot be colocated with itself", c.with_))
            for key, name, role in (("role", c.colocation, c.role), ("with_role", c.with_, c.with_role)):
                if role in ("promoted", "unpromoted") and name in ids and name not in promotable:
                    problems.append((("constraints", i, key),
                                     f"role {role} needs a promotable clone, {name!r} is not one", role))
        else:
            ref(c.order, ("constraints", i, "order"))
            ref(c.then, ("constraints", i, "then"))
            if c.order == c.then:
                problems.append((("constraints", i, "then"), "a resource cannot be ordered after itself", c.then))
    return problems


def _fmt(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out
