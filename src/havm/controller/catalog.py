"""Every primitive of a configuration with what the executor needs to run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from havm.config.resources import AGENT_ALIASES, walk_primitives
from havm.config.schema import ClusterConfig
from havm.executor.records import ActionRequest

DEFAULT_TIMEOUT = 20.0
DEFAULT_TIMEOUTS = {"start": 60.0, "stop": 60.0, "migrate_to": 120.0, "migrate_from": 60.0}


@dataclass(frozen=True)
class PrimitiveRun:
    id: str
    agent: str  # full name
    params: dict[str, Any] = field(default_factory=dict)
    timeouts: dict[str, float] = field(default_factory=dict)
    monitor_interval: float = 0.0

    def timeout(self, action: str) -> float:
        if action in self.timeouts:
            return self.timeouts[action]
        if action == "monitor" and "monitor" in self.timeouts:
            return self.timeouts["monitor"]
        return DEFAULT_TIMEOUTS.get(action, self.timeouts.get("monitor", DEFAULT_TIMEOUT))

    def request(self, action: str, args: dict[str, Any] | None = None, interval: float = 0.0) -> ActionRequest:
        return ActionRequest(self.id, self.agent, action, dict(self.params), self.timeout(action), interval,
                             dict(args or {}))

    def monitor_request(self) -> ActionRequest | None:
        if self.monitor_interval <= 0:
            return None
        return self.request("monitor", interval=self.monitor_interval)


def catalog(config: ClusterConfig) -> dict[str, PrimitiveRun]:
    out: dict[str, PrimitiveRun] = {}
    for p, _group, _clone in walk_primitives(list(config.resources)):
        timeouts: dict[str, float] = {str(name): op.timeout for name, op in p.ops.items()}
        monitor = p.ops.get("monitor")
        interval = monitor.interval if monitor is not None else 10.0
        out[p.id] = PrimitiveRun(p.id, AGENT_ALIASES.get(p.type, p.type), dict(p.params), timeouts, interval)
    return out
