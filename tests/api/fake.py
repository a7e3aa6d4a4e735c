"""A fake NodeDaemon for the API's unit tests: real command handlers, real config
replica and event log in a temp dir, a one-node quorate view, no network.

Writes go through the real ``CommandHandlers`` (so a stale base epoch is
refused by the real ``ConfigReplica.propose``); status is a fixed document.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from havm.api.app import make_app
from havm.api.tokens import create_token
from havm.clock import ManualClock
from havm.commands.base import Command
from havm.config.load import load_config, write_key
from havm.daemon.handlers import CommandHandlers
from havm.daemon.term import ControllerTerm
from havm.events import EventLog
from havm.membership.view import MembershipView
from havm.store import ConfigFileStore, ConfigReplica

CONFIG = """\
cluster: apitest
nodes:
  - name: n1
    addresses: {ring0: 127.0.0.1}
  - name: n2
    addresses: {ring0: 127.0.0.2}
links:
  - name: ring0
resources:
  - id: vm1
    type: dummy
  - group: web
    resources:
      - id: ip1
        type: dummy
      - id: site
        type: dummy
"""


@dataclass
class _View:
    quorate: bool = True
    controller: str | None = "n1"
    members: tuple[str, ...] = ("n1",)
    stale: str = ""
    node: str = "n1"

    not_current = MembershipView.not_current  # the real sentence, from node and stale


@dataclass
class _Controller:
    pokes: list[str] = field(default_factory=list)

    def poke(self, reason: str, abort: bool = False) -> None:
        self.pokes.append(reason)


class _Local:
    def cleanup(self, rsc: str) -> bool:
        return True

    def report(self) -> dict[str, Any]:
        return {"states": {}, "in_flight": {}}


class FakeDaemon:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "cluster.yaml"
        self.config_path.write_text(CONFIG)
        write_key(str(root / "authkey"))
        loaded = load_config(str(self.config_path))
        self.key = (root / "authkey").read_bytes().strip()
        self.node = "n1"
        self.config_file = str(self.config_path)
        self.clock = ManualClock()
        self.state_dir = str(root / "state")
        self.replica = ConfigReplica(ConfigFileStore(self.state_dir), loaded, "n1")
        self.config = self.replica.loaded.config
        self.events = EventLog("n1", str(root / "events.jsonl"), self.clock)
        self.controller = _Controller()
        self.local = _Local()
        self.handlers = CommandHandlers(self)  # type: ignore[arg-type]
        self.term = ControllerTerm(self)  # type: ignore[arg-type]  # a one-member view: claims alone
        self.executed: list[tuple[Command, str]] = []
        self.tokens_path = str(root / "tokens")
        self.stale = ""  # MembershipView.stale, as a test sets it

    # -- what the handlers and routes use --
    def view(self) -> _View:
        return _View(stale=self.stale)

    async def sync_config(self) -> None:
        return None

    def adopted(self) -> None:
        self.config = self.replica.loaded.config

    def refresh_app_info(self) -> None:
        return None

    async def push(self, stored: Any) -> tuple[list[str], list[str]]:
        return ["n1", "n2"], []

    async def status_async(self) -> dict[str, Any]:
        return {"schema": 1, "cluster": "apitest", "node": "n1", "quorum": {"quorate": True}, "controller": "n1",
                "members": ["n1", "n2"], "config": {"version": self.replica.version.short()},
                "nodes": [{"name": "n1", "state": "online"}, {"name": "n2", "state": "online"}],
                "resources": [{"id": "vm1", "agent": "dummy", "state": "started", "node": "n1"},
                              {"id": "ip1", "agent": "dummy", "state": "started", "node": "n2"},
                              {"id": "site", "agent": "dummy", "state": "stopped", "node": None}]}

    async def execute(self, cmd: Command, forwarded: bool = False, sender: str = "local") -> Any:
        self.executed.append((cmd, sender))
        if cmd.name == "node-fence":  # the fencing itself is tested with the fencing work
            return {"node": getattr(cmd, "node", None), "ok": True}
        return await self.handlers.execute(cmd, forwarded, sender)

    def offer_config(self, data: Any, sender: str, push: bool = False) -> dict[str, Any]:
        return {"adopted": False}

    def token(self, name: str, role: str) -> str:
        return create_token(self.tokens_path, name, role)


@contextlib.asynccontextmanager
async def api_client(daemon: FakeDaemon, trusted: bool = False) -> AsyncIterator[TestClient[Any, Any]]:
    client: TestClient[Any, Any] = TestClient(TestServer(make_app(daemon, trusted)))  # type: ignore[arg-type]
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
