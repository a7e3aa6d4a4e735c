"""A harness driving several MembershipServices over a FakeNetwork with a ManualClock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from havm.clock import ManualClock
from havm.config.schema import ClusterConfig
from havm.membership.fake import FakeNetwork
from havm.membership.service import MembershipService
from havm.membership.tiebreak import FakeProber

KEY = b"0123456789abcdef0123456789abcdef"

TIMING = {"keepalive": 0.5, "warntime": 1.5, "deadtime": 3.0, "initdead": 6.0}


def make_config(nodes: int = 3, links: int = 2, quorum: dict[str, Any] | None = None,
                timing: dict[str, Any] | None = None, cluster: str = "lab",
                votes: dict[str, int] | None = None) -> ClusterConfig:
    link_names = [f"l{i}" for i in range(links)]
    return ClusterConfig.model_validate({
        "cluster": cluster,
        "links": [{"name": lk, "port": 20694} for lk in link_names],
        "nodes": [{"name": f"n{i}", "votes": (votes or {}).get(f"n{i}", 1),
                   "addresses": {lk: f"10.{j}.0.{i}" for j, lk in enumerate(link_names)}}
                  for i in range(1, nodes + 1)],
        "timing": timing or TIMING,
        "quorum": quorum or {},
    })


class Cluster:
    """Services n1..nN on one FakeNetwork; ``run(seconds)`` moves time in small steps."""

    STEP = 0.05

    def __init__(self, config: ClusterConfig, ping: bool | None = None) -> None:
        self.config = config
        self.clock = ManualClock()
        self.net = FakeNetwork(self.clock, links=len(config.links))
        self.services: dict[str, MembershipService] = {}
        self.probers: dict[str, FakeProber] = {}
        self.app: dict[str, dict[str, Any]] = {}
        for name in config.node_names:
            self.start(name, ping)

    def start(self, name: str, ping: bool | None = None, generation: int | None = None) -> MembershipService:
        """(Re)start node ``name`` with a fresh service (new generation)."""
        transport = self.net.transport(name)
        prober = FakeProber(ping)
        self.probers[name] = prober
        self.app.setdefault(name, {"api_port": 7694, "epoch": 1})
        app: Callable[[], dict[str, Any]] = lambda: self.app[name]  # noqa: E731
        service = MembershipService(self.config, name, KEY, self.clock, transport, app,
                                    prober=prober, generation=generation)
        transport.attach(service.on_datagram)
        self.services[name] = service
        return service

    def kill(self, name: str) -> None:
        """The node stops dead: no LEAVE, no more packets."""
        self.services[name].transport.close()
        del self.services[name]

    def run(self, seconds: float) -> None:
        steps = round(seconds / self.STEP)
        for _ in range(steps):
            self.clock.advance(self.STEP)
            for service in list(self.services.values()):
                service.tick()
            self.net.deliver()

    def view(self, name: str):  # type: ignore[no-untyped-def]
        return self.services[name].snapshot()
