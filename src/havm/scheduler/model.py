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

from havm.scheduler.record import Record, init, setters

TYPE_CHECKING = False  # no typing import at run time: havm simulate starts faster
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import MappingProxyType
    from typing import Literal

    from havm.config.schema import ClusterConfig

    NodeStatus = Literal["online", "offline", "unclean"]
    Role = Literal["started", "promoted"]

AttrValue = str | int | float | bool

INFINITY = 1_000_000  # Pacemaker's; the config's INFINITY is the same number
DEFAULT_MIGRATION_THRESHOLD = INFINITY  # Pacemaker 2.x: never ban unless configured
CLONE_DEFAULT_STICKINESS = 1  # as Pacemaker: clone instances stay put unless told otherwise

if not TYPE_CHECKING:
    MappingProxyType = type(type.__dict__)  # what the types module does, without importing it
_EMPTY: Mapping[str, object] = MappingProxyType({})


def frozen_map(d: Mapping | None = None) -> Mapping:  # type: ignore[type-arg]
    return MappingProxyType(dict(d)) if d else _EMPTY


class NodeSpec(Record):
    __slots__ = ("name", "attributes", "capacity", "standby", "maintenance")
    name: str
    attributes: Mapping[str, AttrValue]
    capacity: Mapping[str, int]
    standby: bool
    maintenance: bool

    def __init__(self, name: str, attributes: Mapping[str, AttrValue] = _EMPTY,  # type: ignore[assignment]
                 capacity: Mapping[str, int] = _EMPTY, standby: bool = False,  # type: ignore[assignment]
                 maintenance: bool = False) -> None:
        init(self, "name", name)
        init(self, "attributes", attributes)
        init(self, "capacity", capacity)
        init(self, "standby", standby)
        init(self, "maintenance", maintenance)


class PrimitiveSpec(Record):
    __slots__ = ("id", "agent", "params", "utilization", "stickiness", "migration_threshold", "failure_timeout",
                 "allow_migrate", "target_role", "priority", "is_managed", "monitor_interval", "group", "clone")
    id: str
    agent: str
    params: Mapping[str, AttrValue]
    utilization: Mapping[str, int]
    stickiness: int
    migration_threshold: int
    failure_timeout: float
    allow_migrate: bool
    target_role: str
    priority: int
    is_managed: bool
    monitor_interval: float
    group: str | None
    clone: str | None

    def __init__(self, id: str, agent: str, params: Mapping[str, AttrValue] = _EMPTY,  # type: ignore[assignment]
                 utilization: Mapping[str, int] = _EMPTY, stickiness: int = 0,  # type: ignore[assignment]
                 migration_threshold: int = DEFAULT_MIGRATION_THRESHOLD, failure_timeout: float = 0.0,
                 allow_migrate: bool = False, target_role: str = "started", priority: int = 0,
                 is_managed: bool = True, monitor_interval: float = 0.0, group: str | None = None,
                 clone: str | None = None) -> None:
        _prim_id(self, id)
        _prim_agent(self, agent)
        _prim_params(self, params)
        _prim_utilization(self, utilization)
        _prim_stickiness(self, stickiness)
        _prim_migration_threshold(self, migration_threshold)
        _prim_failure_timeout(self, failure_timeout)
        _prim_allow_migrate(self, allow_migrate)
        _prim_target_role(self, target_role)
        _prim_priority(self, priority)
        _prim_is_managed(self, is_managed)
        _prim_monitor_interval(self, monitor_interval)
        _prim_group(self, group)
        _prim_clone(self, clone)


# built thousands of times per plan: the slots' own setters (see record.setters)
(_prim_id, _prim_agent, _prim_params, _prim_utilization, _prim_stickiness,
 _prim_migration_threshold, _prim_failure_timeout, _prim_allow_migrate, _prim_target_role,
 _prim_priority, _prim_is_managed, _prim_monitor_interval, _prim_group, _prim_clone) = setters(PrimitiveSpec)


class GroupSpec(Record):
    __slots__ = ("id", "members", "clone")
    id: str
    members: tuple[str, ...]
    clone: str | None

    def __init__(self, id: str, members: tuple[str, ...], clone: str | None = None) -> None:
        init(self, "id", id)
        init(self, "members", members)
        init(self, "clone", clone)


class CloneSpec(Record):
    __slots__ = ("id", "child", "primitives", "clone_max", "clone_node_max", "interleave", "globally_unique",
                 "promotable", "promoted_max", "promoted_node_max")
    id: str
    child: str  # primitive or group id
    primitives: tuple[str, ...]  # the child's primitives, in start order
    clone_max: int | None  # None: one per node
    clone_node_max: int
    interleave: bool
    globally_unique: bool
    promotable: bool
    promoted_max: int
    promoted_node_max: int

    def __init__(self, id: str, child: str, primitives: tuple[str, ...], clone_max: int | None = None,
                 clone_node_max: int = 1, interleave: bool = False, globally_unique: bool = False,
                 promotable: bool = False, promoted_max: int = 1, promoted_node_max: int = 1) -> None:
        init(self, "id", id)
        init(self, "child", child)
        init(self, "primitives", primitives)
        init(self, "clone_max", clone_max)
        init(self, "clone_node_max", clone_node_max)
        init(self, "interleave", interleave)
        init(self, "globally_unique", globally_unique)
        init(self, "promotable", promotable)
        init(self, "promoted_max", promoted_max)
        init(self, "promoted_node_max", promoted_node_max)


class RuleSpec(Record):
    """``terms``: ("eq", attr, value), ("defined", attr)...; joined by ``join`` (and/or)."""

    __slots__ = ("score", "join", "terms")
    score: int
    join: str
    terms: tuple[tuple[str, ...], ...]

    def __init__(self, score: int, join: str, terms: tuple[tuple[str, ...], ...]) -> None:
        init(self, "score", score)
        init(self, "join", join)
        init(self, "terms", terms)


class LocationSpec(Record):
    __slots__ = ("rsc", "score", "node", "rule", "role")
    rsc: str
    score: int
    node: str | None
    rule: RuleSpec | None
    role: str | None

    def __init__(self, rsc: str, score: int, node: str | None = None, rule: RuleSpec | None = None,
                 role: str | None = None) -> None:
        init(self, "rsc", rsc)
        init(self, "score", score)
        init(self, "node", node)
        init(self, "rule", rule)
        init(self, "role", role)


class ColocationSpec(Record):
    __slots__ = ("rsc", "with_rsc", "score", "role", "with_role")
    rsc: str
    with_rsc: str
    score: int
    role: str | None
    with_role: str | None

    def __init__(self, rsc: str, with_rsc: str, score: int = INFINITY, role: str | None = None,
                 with_role: str | None = None) -> None:
        init(self, "rsc", rsc)
        init(self, "with_rsc", with_rsc)
        init(self, "score", score)
        init(self, "role", role)
        init(self, "with_role", with_role)


class OrderSpec(Record):
    __slots__ = ("first", "then", "kind", "symmetrical", "first_action", "then_action")
    first: str
    then: str
    kind: str
    symmetrical: bool
    first_action: str
    then_action: str

    def __init__(self, first: str, then: str, kind: str = "mandatory", symmetrical: bool = True,
                 first_action: str = "start", then_action: str = "start") -> None:
        init(self, "first", first)
        init(self, "then", then)
        init(self, "kind", kind)
        init(self, "symmetrical", symmetrical)
        init(self, "first_action", first_action)
        init(self, "then_action", then_action)


class PropertiesSpec(Record):
    __slots__ = ("no_quorum_policy", "fencing_enabled", "symmetric_cluster", "maintenance_mode",
                 "placement_strategy")
    no_quorum_policy: str
    fencing_enabled: bool
    symmetric_cluster: bool
    maintenance_mode: bool
    placement_strategy: str

    def __init__(self, no_quorum_policy: str = "stop", fencing_enabled: bool = True, symmetric_cluster: bool = True,
                 maintenance_mode: bool = False, placement_strategy: str = "default") -> None:
        init(self, "no_quorum_policy", no_quorum_policy)
        init(self, "fencing_enabled", fencing_enabled)
        init(self, "symmetric_cluster", symmetric_cluster)
        init(self, "maintenance_mode", maintenance_mode)
        init(self, "placement_strategy", placement_strategy)


_DEFAULT_PROPERTIES = PropertiesSpec()


class ClusterSpec(Record):
    """The configuration as the planner sees it; ``top`` lists top-level resource ids in order."""

    __slots__ = ("nodes", "primitives", "groups", "clones", "top", "locations", "colocations", "orders",
                 "properties")
    nodes: tuple[NodeSpec, ...]
    primitives: Mapping[str, PrimitiveSpec]
    groups: Mapping[str, GroupSpec]
    clones: Mapping[str, CloneSpec]
    top: tuple[str, ...]
    locations: tuple[LocationSpec, ...]
    colocations: tuple[ColocationSpec, ...]
    orders: tuple[OrderSpec, ...]
    properties: PropertiesSpec

    def __init__(self, nodes: tuple[NodeSpec, ...], primitives: Mapping[str, PrimitiveSpec],
                 groups: Mapping[str, GroupSpec] = _EMPTY, clones: Mapping[str, CloneSpec] = _EMPTY,  # type: ignore[assignment]
                 top: tuple[str, ...] = (), locations: tuple[LocationSpec, ...] = (),
                 colocations: tuple[ColocationSpec, ...] = (), orders: tuple[OrderSpec, ...] = (),
                 properties: PropertiesSpec = _DEFAULT_PROPERTIES) -> None:
        init(self, "nodes", nodes)
        init(self, "primitives", primitives)
        init(self, "groups", groups)
        init(self, "clones", clones)
        init(self, "top", top)
        init(self, "locations", locations)
        init(self, "colocations", colocations)
        init(self, "orders", orders)
        init(self, "properties", properties)

    @classmethod
    def from_config(cls, config: ClusterConfig) -> ClusterSpec:
        from havm.scheduler.from_config import spec_from_config  # pydantic: only for config users

        return spec_from_config(config)

    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]


class NodeState(Record):
    """A node as last seen. ``standby``/``maintenance``/attributes override the config's."""

    __slots__ = ("status", "standby", "maintenance", "attributes")
    status: NodeStatus
    standby: bool | None
    maintenance: bool | None
    attributes: Mapping[str, AttrValue]

    def __init__(self, status: NodeStatus = "online", standby: bool | None = None, maintenance: bool | None = None,
                 attributes: Mapping[str, AttrValue] = _EMPTY) -> None:  # type: ignore[assignment]
        _node_status(self, status)
        _node_standby(self, standby)
        _node_maintenance(self, maintenance)
        _node_attributes(self, attributes)


class ResourceState(Record):
    """One resource (instance) on one node.

    ``role`` None means stopped there (the record keeps its fail count). ``failed``: the
    last operation failed and the resource needs recovery. ``blocked``: a stop failed and
    nothing may be done with it until an operator clears it (no fencing to recover).
    ``promotion_score``: the agent's preference for promoting it here.
    """

    __slots__ = ("role", "failcount", "last_failure", "failed", "blocked", "promotion_score")
    role: Role | None
    failcount: int
    last_failure: float | None
    failed: bool
    blocked: bool
    promotion_score: int | None

    def __init__(self, role: Role | None = "started", failcount: int = 0, last_failure: float | None = None,
                 failed: bool = False, blocked: bool = False, promotion_score: int | None = None) -> None:
        _rsc_role(self, role)
        _rsc_failcount(self, failcount)
        _rsc_last_failure(self, last_failure)
        _rsc_failed(self, failed)
        _rsc_blocked(self, blocked)
        _rsc_promotion_score(self, promotion_score)

    @property
    def running(self) -> bool:
        return self.role is not None


# built thousands of times per plan: the slots' own setters (see record.setters)
_node_status, _node_standby, _node_maintenance, _node_attributes = setters(NodeState)
_rsc_role, _rsc_failcount, _rsc_last_failure, _rsc_failed, _rsc_blocked, _rsc_promotion_score = \
    setters(ResourceState)


class State(Record):
    """A snapshot: node states, what runs where, and the time it was taken (seconds)."""

    __slots__ = ("now", "quorum", "nodes", "resources")
    now: float
    quorum: bool
    nodes: Mapping[str, NodeState]
    resources: Mapping[str, Mapping[str, ResourceState]]

    def __init__(self, now: float = 0.0, quorum: bool = True, nodes: Mapping[str, NodeState] = _EMPTY,  # type: ignore[assignment]
                 resources: Mapping[str, Mapping[str, ResourceState]] = _EMPTY) -> None:  # type: ignore[assignment]
        init(self, "now", now)
        init(self, "quorum", quorum)
        init(self, "nodes", nodes)
        init(self, "resources", resources)

    def node(self, name: str) -> NodeState:
        return self.nodes.get(name) or _ONLINE

    def on(self, rsc: str) -> Mapping[str, ResourceState]:
        return self.resources.get(rsc) or _NO_RECORDS  # type: ignore[return-value]


_ONLINE = NodeState()
_NO_RECORDS: Mapping[str, ResourceState] = _EMPTY  # type: ignore[assignment]


def merge_meta(metas: tuple[Mapping[str, object], ...]) -> Mapping[str, object]:
    """Meta values, the first one set (not None) winning: most specific first."""
    found = list(filter(None, metas))  # (no comprehension: this runs once per primitive)
    if len(found) == 1 and None not in found[0].values():
        return found[0]  # the common case: only the defaults (or only its own) say anything
    out: dict[str, object] = {}
    for m in reversed(found):
        for k, v in m.items():
            if v is not None:
                out[k] = v
    return out


def primitive_spec(pid: str, agent: str, params: Mapping[str, AttrValue], utilization: Mapping[str, int],
                   monitor_interval: float, metas: tuple[Mapping[str, object], ...], default_stickiness: int,
                   group: str | None, clone: str | None) -> PrimitiveSpec:
    """A primitive with its meta resolved: ``metas`` most specific first (own, group, clone, defaults).

    Shared by the config path (``from_config``) and the CIB path (``importers.cib_spec``),
    so both resolve inheritance and defaults the same way.
    """
    m = merge_meta(metas)
    stickiness = m.get("stickiness")
    if stickiness is None:
        stickiness = CLONE_DEFAULT_STICKINESS if clone and default_stickiness == 0 else default_stickiness
    return PrimitiveSpec(
        pid, agent, frozen_map(params), frozen_map(utilization), int(stickiness),  # type: ignore[call-overload]
        int(m.get("migration_threshold", DEFAULT_MIGRATION_THRESHOLD)),  # type: ignore[call-overload]
        float(m.get("failure_timeout", 0.0)),  # type: ignore[arg-type]
        bool(m.get("allow_migrate", False)), str(m.get("target_role", "started")),
        int(m.get("priority", 0)), bool(m.get("is_managed", True)),  # type: ignore[call-overload]
        monitor_interval, group, clone)
