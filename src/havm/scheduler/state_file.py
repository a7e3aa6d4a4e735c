"""Read a state snapshot from a YAML or JSON file (``havm simulate --state``).

Format (JSON is YAML too)::

    now: 1700000000          # seconds; failure_timeout counts back from here (default 0)
    quorum: true             # default true
    nodes:                   # nodes not listed are online
      n1: online             # online | offline | unclean
      n2: {status: online, standby: true, maintenance: false, attributes: {rack: r1}}
    resources:
      vm1: {n1: started}     # started | promoted | unpromoted | stopped
      vm2:
        n2: {role: started, failcount: 2, last_failure: 1699999990, failed: true}
      drbd: {n1: promoted, n2: {role: unpromoted, promotion_score: 10}}
      fs:0: {n1: started}    # an instance of a globally unique clone

``failed``: the last operation failed (the resource needs recovery);
``blocked``: a stop failed and nothing may touch it. Errors name file, line and field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from havm.config.types import Name
from havm.config.yamlpos import format_path, load_yaml_file, load_yaml_text
from havm.errors import ConfigError, ConfigIssue
from havm.scheduler.model import NodeState, ResourceState, State, frozen_map


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _short_node(v: Any) -> Any:
    return {"status": v} if isinstance(v, str) else v


def _short_rsc(v: Any) -> Any:
    return {"role": v} if isinstance(v, str) else v


def _role(v: Any) -> Any:
    if isinstance(v, str):
        return {"unpromoted": "started", "slave": "started", "master": "promoted"}.get(v.lower(), v.lower())
    return v


class _Node(_Strict):
    status: Literal["online", "offline", "unclean"] = "online"
    standby: bool | None = None
    maintenance: bool | None = None
    attributes: dict[Name, str | int | float | bool] = Field(default_factory=dict)


class _Rsc(_Strict):
    role: Annotated[Literal["started", "promoted", "stopped"], BeforeValidator(_role)] = "started"
    failcount: int = Field(0, ge=0)
    last_failure: float | None = None
    failed: bool = False
    blocked: bool = False
    promotion_score: int | None = None


class _StateDoc(_Strict):
    now: float = 0.0
    quorum: bool = True
    nodes: dict[Name, Annotated[_Node, BeforeValidator(_short_node)]] = Field(default_factory=dict)
    resources: dict[str, dict[Name, Annotated[_Rsc, BeforeValidator(_short_rsc)]]] = Field(default_factory=dict)


def state_from_data(data: Any) -> State:
    doc = _StateDoc.model_validate(data if data is not None else {})
    return _to_state(doc)


def _to_state(doc: _StateDoc) -> State:
    nodes = {name: NodeState(n.status, n.standby, n.maintenance, frozen_map(n.attributes))
             for name, n in doc.nodes.items()}
    resources = {}
    for rid, per_node in doc.resources.items():
        resources[rid] = frozen_map({
            node: ResourceState(None if r.role == "stopped" else r.role, r.failcount, r.last_failure,
                                r.failed, r.blocked, r.promotion_score)
            for node, r in per_node.items()})
    return State(now=doc.now, quorum=doc.quorum, nodes=frozen_map(nodes), resources=frozen_map(resources))


def load_state(path: str | None = None, text: str | None = None) -> State:
    """Load and validate a state file; raise ConfigError naming file:line: field."""
    located = load_yaml_text(text, path or "<state>") if text is not None else load_yaml_file(str(path))
    try:
        doc = _StateDoc.model_validate(located.data if located.data is not None else {})
    except ValidationError as e:
        issues = []
        for err in e.errors():
            loc = tuple(p for p in err["loc"] if isinstance(p, str | int) and not str(p).startswith("function-"))
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                msg = "unknown key"
            issues.append(ConfigIssue(located.file, located.line_of(loc), format_path(loc), msg))
        raise ConfigError(issues) from None
    return _to_state(doc)


def state_to_data(state: State) -> dict[str, Any]:
    """The inverse of :func:`state_from_data` (for golden files and ``apply``)."""
    nodes: dict[str, Any] = {}
    for name, n in state.nodes.items():
        entry: dict[str, Any] = {"status": n.status}
        if n.standby is not None:
            entry["standby"] = n.standby
        if n.maintenance is not None:
            entry["maintenance"] = n.maintenance
        if n.attributes:
            entry["attributes"] = dict(n.attributes)
        nodes[name] = entry if len(entry) > 1 else n.status
    resources: dict[str, Any] = {}
    for rid, per_node in state.resources.items():
        out: dict[str, Any] = {}
        for node, r in per_node.items():
            entry = {"role": r.role or "stopped"}
            for key, default in (("failcount", 0), ("last_failure", None), ("failed", False),
                                 ("blocked", False), ("promotion_score", None)):
                if getattr(r, key) != default:
                    entry[key] = getattr(r, key)
            out[node] = entry if len(entry) > 1 else entry["role"]
        resources[rid] = out
    return {"now": state.now, "quorum": state.quorum, "nodes": nodes, "resources": resources}
