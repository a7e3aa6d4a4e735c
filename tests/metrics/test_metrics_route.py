"""GET /metrics through the real API app: the read role may scrape, anonymous callers may not."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from havm.alerts.dispatcher import AlertDispatcher
from havm.api.app import make_app
from havm.api.tokens import create_token
from havm.clock import ManualClock
from havm.config.load import load_config, write_key
from havm.events import EventLog
from havm.metrics.recorder import MetricsRecorder
from havm.store import ConfigFileStore, ConfigReplica
from tests.membership.membership_harness import Cluster, make_config

CONFIG = """\
cluster: lab
nodes:
  - {name: n1, addresses: {l0: 10.0.0.1, l1: 10.1.0.1}}
  - {name: n2, addresses: {l0: 10.0.0.2, l1: 10.1.0.2}}
links: [{name: l0, port: 20694}, {name: l1, port: 20694}]
"""


class Local:
    def report(self) -> dict[str, Any]:
        return {"node": "n1", "states": {"vm1": {"rsc": "vm1", "role": "started", "failcount": 0}},
                "in_flight": {}}


class MetricsDaemon:
    """What ``havm.metrics.routes`` and the auth middleware read of a NodeDaemon: real
    config, replica, event log, recorder and dispatcher; a membership view from two
    real membership services over the fake network."""

    def __init__(self, root: Path) -> None:
        (root / "cluster.yaml").write_text(CONFIG)
        write_key(str(root / "authkey"))
        self.config_file = str(root / "cluster.yaml")
        loaded = load_config(self.config_file)
        self.key = (root / "authkey").read_bytes().strip()
        self.node = "n1"
        self.clock = ManualClock()
        self.replica = ConfigReplica(ConfigFileStore(str(root / "state")), loaded, "n1")
        self.config = self.replica.loaded.config
        self.events = EventLog("n1", None, self.clock)
        self.metrics = MetricsRecorder(self.events)
        self.alerts = AlertDispatcher(self.events, self.clock)
        self.local = Local()
        self.started_at = self.clock.wall()
        self.membership = Cluster(make_config(nodes=2, links=2, cluster="lab"))
        self.membership.run(3.0)

    def view(self) -> Any:
        return self.membership.view("n1")


def test_read_token_scrapes_anonymous_is_refused(tmp_path: Path) -> None:
    d = MetricsDaemon(tmp_path)
    reader = create_token(str(tmp_path / "tokens"), "prometheus", "read")
    d.events.emit("node.join", "n2 joined", target="n2")

    async def body() -> None:
        app = make_app(d, trusted=False, route_modules=["havm.api.auth", "havm.metrics.routes"])  # type: ignore[arg-type]
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        try:
            r = await client.get("/metrics")
            assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
            r = await client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
            assert r.status == 401
            r = await client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
            assert r.status == 200, await r.text()
            assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            fams = {f.name: f for f in text_string_to_metric_families(await r.text())}
            up = {s.labels["node"]: s.value for s in fams["havm_node_up"].samples}
            assert up == {"n1": 1, "n2": 1}
            assert [s.value for s in fams["havm_quorum"].samples] == [1]
            assert {(s.labels["kind"], s.value) for s in fams["havm_events"].samples} == {("node.join", 1)}
            started = [s for s in fams["havm_resource_state"].samples if s.value == 1]
            assert [(s.labels["resource"], s.labels["node"], s.labels["role"]) for s in started] == [
                ("vm1", "n1", "started")]
        finally:
            await client.close()
    asyncio.run(body())
