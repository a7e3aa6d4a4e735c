"""What the scheduler reasons about: an immutable cluster spec and a state snapshot.

``ClusterSpec`` is the configuration reduced to what placement needs, with
every meta value resolved (resource meta over group/clone meta over
``resource_defaults`` over built-in defaults), so the planner never looks at
pydantic models or inheritance rules. ``State`` is one snapshot of what runs
where; it carries ``now`` explicitly so failure timeouts are decided without a
clock. Both are frozen: ``plan(spec, state)`` cannot change its inputs.

Resource instances in the state are keyed by primitive id; an anonymous clone's
primitive appears once per node it runs on, a globally unique clone's instances
are ``<primitive>:<n>`` (``fs:0``, ``fs:1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from havm.config.resources import (
    AGENT_ALIASES,
    INFINITY,
    Clone,
    Colocation,
    Group,
    Location,
    Meta,
    Primitive,
    parse_expression,
)
from havm.config.schema import ClusterConfig

NodeStatus = Literal["online", "offline", "unclean"]
Role = Literal["started", "promoted"]
AttrValue = str | int | float | bool

DEFAULT_MIGRATION_THRESHOLD = INFINITY  # Pacemaker 2.x: never ban unless configured
CLONE_DEFAULT_STICKINESS = 1  # as Pacemaker: clone instances stay put unless told otherwise

_EMPTY: Mapping[str, object] = MappingProxyType({})


def frozen_map(d: Mapping | None = None) -> Mapping:  # type: ignore[type-arg]
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    attributes: Mapping[str, AttrValue] = field(default_factory=frozen_map)
    capacity: Mapping[str, int] = field(default_factory=frozen_map)
    standby: bool = False
    maintenance: bool = False


@dataclass(frozen=True, slots=True)
class PrimitiveSpec:
    id: str
    agent: str
    params: Mapping[str, AttrValue] = field(default_factory=frozen_map)
    utilization: Mapping[str, int] = field(default_factory=frozen_map)
    stickiness: int = 0
    migration_threshold: int = DEFAULT_MIGRATION_THRESHOLD
    failure_timeout: float = 0.0
    allow_migrate: bool = False
    target_role: str = "started"
    priority: int = 0
    is_managed: bool = True
    monitor_interval: float = 0.0
    group: str | None = None
    clone: str | None = None


@dataclass(frozen=True, slots=True)
class GroupSpec:
    id: str
    members: tuple[str, ...]
    clone: str | None = None


@dataclass(frozen=True, slots=True)
class CloneSpec:
    id: str
    child: str  # primitive or group id
    primitives: tuple[str, ...]  # the child's primitives, in start order
    clone_max: int | None = None  # None: one per node
    clone_node_max: int = 1
    interleave: bool = False
    globally_unique: bool = False
    promotable: bool = False
    promoted_max: int = 1
    promoted_node_max: int = 1


@dataclass(frozen=True, slots=True)
class RuleSpec:
    score: int
    join: str  # "and" | "or"
    terms: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class LocationSpec:
    rsc: str
    score: int
    node: str | None = None
    rule: RuleSpec | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class ColocationSpec:
    rsc: str
    with_rsc: str
    score: int = INFINITY
    role: str | None = None
    with_role: str | None = None


@dataclass(frozen=True, slots=True)
class OrderSpec:
    first: str
    then: str
    kind: str = "mandatory"
    symmetrical: bool = True
    first_action: str = "start"
    then_action: str = "start"


@dataclass(frozen=True, slots=True)
class PropertiesSpec:
    no_quorum_policy: str = "stop"
    fencing_enabled: bool = True
    symmetric_cluster: bool = True
    maintenance_mode: bool = False
    placement_strategy: str = "default"


@dataclass(frozen=True)
class ClusterSpec:
    """The configuration as the planner sees it; ``top`` lists top-level resource ids in order."""

    nodes: tuple[NodeSpec, ...]
    primitives: Mapping[str, PrimitiveSpec]
    groups: Mapping[str, GroupSpec] = field(default_factory=frozen_map)
    clones: Mapping[str, CloneSpec] = field(default_factory=frozen_map)
    top: tuple[str, ...] = ()
    locations: tuple[LocationSpec, ...] = ()
    colocations: tuple[ColocationSpec, ...] = ()
    orders: tuple[OrderSpec, ...] = ()
    properties: PropertiesSpec = field(default_factory=PropertiesSpec)

    @classmethod
    def from_config(cls, config: ClusterConfig) -> ClusterSpec:
        return _spec_from_config(config)

    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node as last seen. ``standby``/``maintenance``/attributes override the config's."""

    status: NodeStatus = "online"
    standby: bool | None = None
    maintenance: bool | None = None
    attributes: Mapping[str, AttrValue] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class ResourceState:
    """One resource (instance) on one node.

    ``role`` None means stopped there (the record keeps its fail count). ``failed``: the
    last operation failed and the resource needs recovery. ``blocked``: a stop failed and
    nothing may be done with it until an operator clears it (no fencing to recover).
    ``promotion_score``: the agent's preference for promoting it here.
    """

    role: Role | None = "started"
    failcount: int = 0
    last_failure: float | None = None
    failed: bool = False
    blocked: bool = False
    promotion_score: int | None = None

    @property
    def running(self) -> bool:
        return self.role is not None


@dataclass(frozen=True)
class State:
    """A snapshot: node states, what runs where, and the time it was taken (seconds)."""

    now: float = 0.0
    quorum: bool = True
    nodes: Mapping[str, NodeState] = field(default_factory=frozen_map)
    resources: Mapping[str, Mapping[str, ResourceState]] = field(default_factory=frozen_map)

    def node(self, name: str) -> NodeState:
        return self.nodes.get(name) or _ONLINE

    def on(self, rsc: str) -> Mapping[str, ResourceState]:
        return self.resources.get(rsc) or _NO_RECORDS  # type: ignore[return-value]


_ONLINE = NodeState()
_NO_RECORDS: Mapping[str, ResourceState] = MappingProxyType({})


def full_agent_name(agent_type: str) -> str:
    return AGENT_ALIASES.get(agent_type, agent_type)


def _merge_meta(*metas: Meta) -> dict[str, object]:
    """First non-None wins, most specific first."""
    out: dict[str, object] = {}
    for name in Meta.model_fields:
        for m in metas:
            value = getattr(m, name)
            if value is not None:
                out[name] = value
                break
    return out


def _primitive(p: Primitive, metas: tuple[Meta, ...], default_stickiness: int,
               group: str | None, clone: str | None) -> PrimitiveSpec:
    m = _merge_meta(p.meta, *metas)
    stickiness = m.get("stickiness")
    if stickiness is None:
        stickiness = CLONE_DEFAULT_STICKINESS if clone and default_stickiness == 0 else default_stickiness
    monitor = p.ops.get("monitor")
    threshold = m.get("migration_threshold", DEFAULT_MIGRATION_THRESHOLD)
    return PrimitiveSpec(
        id=p.id, agent=full_agent_name(p.type), params=frozen_map(p.params),
        utilization=frozen_map(p.utilization), stickiness=int(stickiness),  # type: ignore[call-overload]
        migration_threshold=int(threshold),  # type: ignore[call-overload]
        failure_timeout=float(m.get("failure_timeout", 0.0)),  # type: ignore[arg-type]
        allow_migrate=bool(m.get("allow_migrate", False)),
        target_role=str(m.get("target_role", "started")), priority=int(m.get("priority", 0)),  # type: ignore[call-overload]
        is_managed=bool(m.get("is_managed", True)),
        monitor_interval=monitor.interval if monitor else 0.0, group=group, clone=clone)


def _spec_from_config(config: ClusterConfig) -> ClusterSpec:
    props = config.properties
    defaults = config.resource_defaults
    default_stickiness = defaults.stickiness if defaults.stickiness is not None else props.stickiness
    if not props.auto_failback and defaults.stickiness is None and "stickiness" not in props.model_fields_set:
        default_stickiness = INFINITY  # Heartbeat's auto_failback off: stay where you run
    prims: dict[str, PrimitiveSpec] = {}
    groups: dict[str, GroupSpec] = {}
    clones: dict[str, CloneSpec] = {}
    top: list[str] = []
    for r in config.resources:
        if isinstance(r, Primitive):
            prims[r.id] = _primitive(r, (defaults,), default_stickiness, None, None)
            top.append(r.id)
        elif isinstance(r, Group):
            for m in r.resources:
                prims[m.id] = _primitive(m, (r.meta, defaults), default_stickiness, r.group, None)
            groups[r.group] = GroupSpec(r.group, tuple(m.id for m in r.resources))
            top.append(r.group)
        else:
            assert isinstance(r, Clone)
            inner = r.resource
            if isinstance(inner, Group):
                for m in inner.resources:
                    prims[m.id] = _primitive(m, (inner.meta, r.meta, defaults), default_stickiness,
                                             inner.group, r.clone)
                groups[inner.group] = GroupSpec(inner.group, tuple(m.id for m in inner.resources), r.clone)
                child, members = inner.group, tuple(m.id for m in inner.resources)
            else:
                prims[inner.id] = _primitive(inner, (r.meta, defaults), default_stickiness, None, r.clone)
                child, members = inner.id, (inner.id,)
            clones[r.clone] = CloneSpec(
                r.clone, child, members, r.clone_max, r.clone_node_max, r.interleave, r.globally_unique,
                r.promotable, r.promoted_max, r.promoted_node_max)
            top.append(r.clone)
    locations: list[LocationSpec] = []
    colocations: list[ColocationSpec] = []
    orders: list[OrderSpec] = []
    for c in config.constraints:
        if isinstance(c, Location):
            if c.rule is not None:
                join, terms = parse_expression(c.rule.expression)
                locations.append(LocationSpec(c.location, c.rule.score, None, RuleSpec(c.rule.score, join, terms),
                                              c.role))
            else:
                assert c.score is not None
                locations.append(LocationSpec(c.location, c.score, c.node, None, c.role))
        elif isinstance(c, Colocation):
            colocations.append(ColocationSpec(c.colocation, c.with_, c.score, c.role, c.with_role))
        else:
            symmetrical = c.symmetrical if c.symmetrical is not None else c.kind != "serialize"
            orders.append(OrderSpec(c.order, c.then, c.kind, symmetrical, c.first_action,
                                    c.then_action or c.first_action))
    nodes = tuple(NodeSpec(n.name, frozen_map(n.attributes), frozen_map(n.utilization), n.standby, n.maintenance)
                  for n in config.nodes)
    return ClusterSpec(
        nodes=nodes, primitives=frozen_map(prims), groups=frozen_map(groups), clones=frozen_map(clones),
        top=tuple(top), locations=tuple(locations), colocations=tuple(colocations), orders=tuple(orders),
        properties=PropertiesSpec(props.no_quorum_policy, props.fencing_enabled, props.symmetric_cluster,
                                  props.maintenance_mode, props.placement_strategy))
