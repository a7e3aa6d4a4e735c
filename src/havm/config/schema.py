"""The whole cluster configuration: one YAML file, validated declaratively."""

from __future__ import annotations

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from havm.config.alerts import Alert, check_alerts
from havm.config.cluster import Auth, Daemon, Link, Node, Quorum, Strict, Timing
from havm.config.fencing import Fencing, check_fence_delays, check_fencing
from havm.config.resources import Constraint, Meta, Properties, Resource, check_references
from havm.config.types import Name
from havm.config.watchdog import Watchdog, check_watchdog

SCHEMA_VERSION = 1


class ClusterConfig(Strict):
    """The root of cluster.yaml.

    The cluster part (nodes, links, timing, quorum, auth) is what membership
    needs; ``resources``, ``constraints``, ``properties`` and ``fencing`` are
    filled in by the scheduler, executor and fencing parts.
    """

    version: int = Field(SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)
    cluster: Name
    nodes: list[Node] = Field(min_length=1)
    links: list[Link] = Field(min_length=1, max_length=8)
    timing: Timing = Field(default_factory=Timing)
    quorum: Quorum = Field(default_factory=Quorum)
    auth: Auth = Field(default_factory=Auth)
    daemon: Daemon = Field(default_factory=Daemon)
    # Sections owned by later parts; empty means "none configured".
    resources: list[Resource] = Field(default_factory=list)
    constraints: list[Constraint] = Field(default_factory=list)
    properties: Properties = Field(default_factory=Properties)
    resource_defaults: Meta = Field(default_factory=Meta)
    fencing: Fencing = Field(default_factory=Fencing)
    alerts: list[Alert] = Field(default_factory=list)
    watchdog: Watchdog = Field(default_factory=Watchdog)

    @model_validator(mode="after")
    def _cross_rules(self) -> ClusterConfig:
        problems: list[str] = []
        seen: set[str] = set()
        for n in self.nodes:
            if n.name in seen:
                problems.append(f"node name {n.name!r} is used twice")
            seen.add(n.name)
        link_names = [lk.name for lk in self.links]
        if len(set(link_names)) != len(link_names):
            problems.append(f"link names must be unique, got {link_names}")
        for n in self.nodes:
            missing = [lk for lk in link_names if lk not in n.addresses]
            extra = [lk for lk in n.addresses if lk not in link_names]
            if missing:
                problems.append(f"node {n.name!r} has no address on link(s) {', '.join(missing)}")
            if extra:
                problems.append(f"node {n.name!r} names unknown link(s) {', '.join(extra)}; links are {', '.join(link_names)}")
        for lk in link_names:
            owners: dict[str, str] = {}
            for n in self.nodes:
                addr = n.addresses.get(lk)
                if addr is None:
                    continue
                if addr in owners:
                    problems.append(f"nodes {owners[addr]!r} and {n.name!r} share address {addr} on link {lk}")
                owners[addr] = n.name
        if self.quorum.two_node and len(self.nodes) != 2:
            problems.append(f"quorum.two_node is only for clusters of exactly 2 nodes, this one has {len(self.nodes)}")
        if sum(n.votes for n in self.nodes) == 0:
            problems.append("at least one node must have a vote")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _resource_references(self) -> ClusterConfig:
        # Raised as a ValidationError so each problem keeps its own location
        # (constraints[3].with) and hence its own line in the loader's report.
        problems = check_references(self.resources, self.constraints, self.node_names)
        problems += check_alerts(self.alerts, self.node_names, self.resources)
        problems += check_fencing(self.fencing, self.node_names)
        problems += check_fence_delays(self.fencing, self.timing.deadtime, self.timing.keepalive,
                                       self.quorum.two_node)
        problems += check_watchdog(self.watchdog, self.timing, self.properties.no_quorum_policy,
                                   self.properties.fencing_watchdog_timeout)
        if problems:
            raise ValidationError.from_exception_data("ClusterConfig", [
                InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)
                for loc, message, value in problems])
        return self

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]
