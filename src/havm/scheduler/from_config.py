"""``ClusterSpec`` from a validated ``ClusterConfig`` (the YAML path).

Kept apart from the model so that the model imports no pydantic: ``havm
simulate cluster.xml`` never validates a YAML config and should not pay for it.
Meta inheritance and defaults are resolved by ``model.primitive_spec``, which
the CIB path (``havm.importers.cib_spec``) shares.
"""

from __future__ import annotations

from havm.config.resources import (
    AGENT_ALIASES,
    Clone,
    Colocation,
    Group,
    Location,
    Meta,
    Primitive,
    parse_expression,
)
from havm.config.schema import ClusterConfig
from havm.scheduler.model import (
    INFINITY,
    CloneSpec,
    ClusterSpec,
    ColocationSpec,
    GroupSpec,
    LocationSpec,
    NodeSpec,
    OrderSpec,
    PrimitiveSpec,
    PropertiesSpec,
    RuleSpec,
    frozen_map,
    primitive_spec,
)


def full_agent_name(agent_type: str) -> str:
    return AGENT_ALIASES.get(agent_type, agent_type)


_META_FIELDS = tuple(Meta.model_fields)


def _meta(m: Meta) -> dict[str, object]:
    return {k: getattr(m, k) for k in _META_FIELDS}


def _primitive(p: Primitive, metas: tuple[Meta, ...], default_stickiness: int,
               group: str | None, clone: str | None) -> PrimitiveSpec:
    monitor = p.ops.get("monitor")
    return primitive_spec(p.id, full_agent_name(p.type), p.params, p.utilization,  # type: ignore[arg-type]
                          monitor.interval if monitor else 0.0, tuple(_meta(m) for m in (p.meta, *metas)),
                          default_stickiness, group, clone)


def spec_from_config(config: ClusterConfig) -> ClusterSpec:
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
