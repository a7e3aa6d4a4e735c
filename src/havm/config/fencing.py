"""The ``fencing`` section: devices that power nodes off, and the order to try them.

```yaml
fencing:
  devices:
    - id: bmc-n1
      agent: fence_ipmilan            # a fence-agent run unmodified, or 'lab' (the lab's power switch)
      params: {ip: 10.0.9.1, username: admin, password: secret}   # the agent's own stdin keys
      nodes: [n1]                     # which nodes it can fence (default: all) ...
    - id: pdu
      agent: fence_apc_snmp
      params: {ip: 10.0.9.50}
      host_map: {n1: "3", n2: "4"}    # ... or, per node, the plug= value the agent gets
      delay: {n1: 5}                  # wait before fencing n1 (a number: for every node)
      timeout: 30s                    # one attempt (off + status confirmation)
      retries: 1                      # attempts after the first one fails
  levels:
    n1: [[bmc-n1], [pdu]]             # level 1, then level 2; every device of a level must succeed
```

Without ``levels`` for a node, each device that can fence it is a level of
its own, in the order listed (as Pacemaker does without a topology).

Cross-references (unknown device in a level, unknown node, a level naming a
device that cannot fence that node) are errors located at the exact item.
An agent missing from this host is only a *warning* at validate time (the
configuration is shared by every node, and another node may have it) and an
error when a fence needs it (``agent_warnings``).
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from havm.config.resources import Section
from havm.config.types import Duration, Name, parse_duration

LAB_AGENT = "lab"
#: where fence-agents live on Debian and RHEL, searched after PATH (not always on a daemon's PATH)
AGENT_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
# an agent's name; imported CIBs may carry other fencing plugins' names (external/ssh), valid
# but never run: only a plain name found in the agent dirs is ever executed (find_agent)
_AGENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*(/[A-Za-z0-9][A-Za-z0-9_.+-]*)?$")


def _check_agent(value: object) -> object:
    if isinstance(value, str) and (not _AGENT.match(value) or len(value) > 100):
        raise ValueError(f"expected 'lab' or a fence agent's name such as fence_ipmilan (a name, not a path), "
                         f"got {value!r}")
    return value


def _check_param(value: object) -> object:
    """The stdin protocol is one ``key=value`` per line: a value holding a line
    break would smuggle in another key, so it is refused here."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("expected a scalar (string, number or boolean): fence agents take key=value lines")
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError("a fence agent parameter cannot contain a line break or NUL")
    return value


def _delay(value: object) -> object:
    if isinstance(value, dict):
        return {k: parse_duration(v) for k, v in value.items()}
    return parse_duration(value)


AgentName = Annotated[str, BeforeValidator(_check_agent)]
AgentParam = Annotated[str, BeforeValidator(_check_param)]
Delay = Annotated[float | dict[Name, float], BeforeValidator(_delay)]


class FenceDevice(Section):
    id: Name
    agent: AgentName = Field(description="'lab', or a fence agent such as fence_ipmilan")
    params: dict[Name, AgentParam] = Field(default_factory=dict,
                                           description="passed unmodified to the agent as key=value lines")
    nodes: list[Name] | None = Field(None, description="nodes this device can fence; default: all")
    host_map: dict[Name, AgentParam] | None = Field(None, description="node -> the agent's plug= value")
    delay: Delay = Field(0.0, description="wait this long before fencing (a number, or per target node)")
    timeout: Duration = Field(60.0, description="one attempt: off, then the status confirmation")
    retries: int = Field(0, ge=0, le=10, description="attempts after a failed one, before the next level")
    confirm: Literal["status", "exit"] = Field(
        "status", description="status: off must be confirmed by action=status reporting off; "
                              "exit: trust the off action's exit 0 (agents without a status action)")

    @model_validator(mode="after")
    def _consistent(self) -> FenceDevice:
        if self.nodes is not None and self.host_map is not None:
            raise ValueError("give either nodes or host_map (host_map's keys are the nodes it fences)")
        if self.timeout <= 0:
            raise ValueError("timeout must be more than 0")
        reserved = [k for k in ("action", "nodename") if k in self.params]
        if reserved:
            raise ValueError(f"params cannot set {' or '.join(reserved)}: havm gives the action and the target")
        if self.host_map is not None and ("plug" in self.params or "port" in self.params):
            raise ValueError("give the plug either in params or per node in host_map, not both")
        return self

    def can_fence(self, node: str) -> bool:
        if self.host_map is not None:
            return node in self.host_map
        return self.nodes is None or node in self.nodes

    def plug_for(self, node: str) -> str:
        """The agent's ``plug=`` value for ``node``: its host_map entry, else the node's name."""
        return (self.host_map or {}).get(node, node)

    def delay_for(self, node: str) -> float:
        if isinstance(self.delay, dict):
            return self.delay.get(node, 0.0)
        return self.delay


Level = Annotated[list[Name], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]
Levels = Annotated[list[Level], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class Fencing(Section):
    devices: list[FenceDevice] = Field(default_factory=list)
    levels: dict[Name, Levels] = Field(
        default_factory=dict, description="per node: levels tried in order, each a list of device ids "
                                          "that must all succeed (a single id is a level of one)")

    def device(self, dev_id: str) -> FenceDevice:
        for d in self.devices:
            if d.id == dev_id:
                return d
        raise KeyError(dev_id)

    def levels_for(self, node: str) -> list[list[FenceDevice]]:
        """The levels to try for ``node``, in order (assumes a validated section)."""
        if node in self.levels:
            return [[self.device(i) for i in level] for level in self.levels[node]]
        return [[d] for d in self.devices if d.can_fence(node)]


def check_fencing(fencing: Fencing, node_names: list[str]) -> list[tuple[tuple[str | int, ...], str, Any]]:
    """Cross-field problems as (location, message, input), like ``check_references``."""
    problems: list[tuple[tuple[str | int, ...], str, Any]] = []
    nodes = set(node_names)
    known_nodes = ", ".join(node_names)
    ids: dict[str, int] = {}
    for i, d in enumerate(fencing.devices):
        if d.id in ids:
            problems.append((("fencing", "devices", i, "id"),
                             f"fence device id {d.id!r} is already used (fencing.devices[{ids[d.id]}])", d.id))
        ids.setdefault(d.id, i)
        for key, names in (("nodes", d.nodes or []), ("host_map", list(d.host_map or {}))):
            for n in names:
                if n not in nodes:
                    problems.append((("fencing", "devices", i, key),
                                     f"unknown node {n!r}; nodes are: {known_nodes}", n))
        if isinstance(d.delay, dict):
            for n in d.delay:
                if n not in nodes:
                    problems.append((("fencing", "devices", i, "delay"),
                                     f"unknown node {n!r}; nodes are: {known_nodes}", n))
    known_devices = ", ".join(ids) or "none configured"
    for node, levels in fencing.levels.items():
        if node not in nodes:
            problems.append((("fencing", "levels", node), f"unknown node {node!r}; nodes are: {known_nodes}", node))
        if not levels:
            problems.append((("fencing", "levels", node), "give at least one level (a list of device ids)", levels))
        for li, level in enumerate(levels):
            if not level:
                problems.append((("fencing", "levels", node, li), "a level needs at least one device", level))
            for di, dev_id in enumerate(level):
                loc = ("fencing", "levels", node, li, di)
                if dev_id not in ids:
                    problems.append((loc, f"unknown fence device {dev_id!r}; devices are: {known_devices}", dev_id))
                elif node in nodes and not fencing.devices[ids[dev_id]].can_fence(node):
                    problems.append((loc, f"fence device {dev_id!r} cannot fence {node!r} "
                                          "(not in its nodes/host_map)", dev_id))
    return problems


#: what the incumbent controller of a two-node cluster may need, after deadtime, before its own fence
#: starts: the skew between the two sides noticing the loss (one heartbeat) plus this margin for its
#: cycle (its own report, which is local, and planning). It no longer waits for the lost node's report:
#: a membership change abandons report fetches (controller.py, chaos finding 2).
FENCE_RACE_MARGIN = 1.0


def fence_race_bound(deadtime: float, keepalive: float) -> float:
    """The least fence delay that lets the node it protects win a two-node fence race.

    The side that stops hearing the other declares it dead after ``deadtime``; the
    other side may learn it only from that side's heartbeats (a one-way loss) and
    then waits up to ``deadtime`` for it to rejoin before fencing it
    (controller.py ``_joining``). So the protected node shoots up to deadtime +
    one keepalive + its cycle after the other decided: the delay must be longer.
    """
    return deadtime + keepalive + FENCE_RACE_MARGIN


def check_fence_delays(fencing: Fencing, deadtime: float, keepalive: float,
                       two_node: bool) -> list[tuple[tuple[str | int, ...], str, Any]]:
    """In a two-node cluster, every non-zero fence delay must exceed ``fence_race_bound``."""
    if not two_node:
        return []
    bound = fence_race_bound(deadtime, keepalive)
    problems: list[tuple[tuple[str | int, ...], str, Any]] = []
    for i, d in enumerate(fencing.devices):
        delays = d.delay if isinstance(d.delay, dict) else {"every node": d.delay}
        for node, delay in delays.items():
            if 0 < delay <= bound:
                problems.append((("fencing", "devices", i, "delay"),
                                 f"fence delay for {node} is {delay:g}s: in a two-node cluster it must exceed "
                                 f"deadtime + keepalive + {FENCE_RACE_MARGIN:g}s ({bound:g}s), or the other node "
                                 f"shoots {node} before {node} notices the loss (a delay only chooses the survivor "
                                 "if it outlasts that)", delay))
    return problems


def find_agent(agent: str, path: str | None = None) -> str | None:
    """The executable of fence agent ``agent``: on PATH, else in the usual sbin dirs.
    Only plain names are looked up: a name with a '/' is never run."""
    if "/" in agent or agent.startswith("."):
        return None
    found = shutil.which(agent, path=path)
    if found:
        return found
    for d in AGENT_DIRS:
        candidate = os.path.join(d, agent)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def agent_warnings(fencing: Fencing, node_names: list[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """What is valid but will not work from this host: agents not installed here,
    nodes no device can fence. Warnings, not errors: the file is shared by every node."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, d in enumerate(fencing.devices):
        if d.agent != LAB_AGENT and find_agent(d.agent) is None:
            out.append((("fencing", "devices", i, "agent"),
                        f"fence agent {d.agent!r} is not installed on this host (not on PATH nor in "
                        f"{', '.join(AGENT_DIRS)}): fencing through {d.id!r} fails here"))
    if fencing.devices:
        for n in node_names:
            if not fencing.levels_for(n):
                out.append((("fencing",), f"no fence device can fence node {n!r}: if it is lost, its resources "
                                          "are never recovered"))
    return out
