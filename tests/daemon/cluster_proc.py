"""Run real havmd processes on loopback addresses (no root, no namespaces) for tests.

Each node gets its own 127.X.Y.i address, so every daemon binds the real
ports (694 for heartbeats, 7694 for the API) without colliding with others.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from havm.config.load import write_key
from havm.daemon.client import Client
from havm.errors import HavmError
from tests.daemon.waiting import wait_until


@dataclass
class LoopbackCluster:
    root: Path
    n: int
    keepalive: float = 0.1
    deadtime: float = 0.6
    initdead: float = 2.0
    extra: str = ""  # more YAML appended to the config (resources, properties, ...)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a, b = random.randint(100, 250), random.randint(1, 250)
        self.names = [f"n{i}" for i in range(1, self.n + 1)]
        self.addr = {name: f"127.{a}.{b}.{i}" for i, name in enumerate(self.names, 1)}
        lines = [f"cluster: t{a}x{b}", "nodes:"]
        for nm, ad in self.addr.items():
            lines += [f"  - name: {nm}", f"    addresses: {{ring0: {ad}}}"]
        lines += ["links:", "  - name: ring0", "timing:", f"  keepalive: {self.keepalive}",
                  f"  warntime: {self.keepalive * 2}", f"  deadtime: {self.deadtime}",
                  f"  initdead: {self.initdead}"]
        self.config_text = "\n".join(lines) + "\n" + self.extra
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path = self.root / "cluster.yaml"
        self.config_path.write_text(self.config_text)
        write_key(str(self.root / "authkey"))

    def sock(self, name: str) -> str:
        return str(self.root / name / "havmd.sock")

    def client(self, name: str) -> Client:
        return Client(socket_path=self.sock(name), timeout=10)

    def start(self, name: str) -> None:
        d = self.root / name
        d.mkdir(exist_ok=True)
        log = open(d / "havmd.log", "ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "havm.daemon.main", "--config", str(self.config_path), "--node", name,
             "--state-dir", str(d / "state"), "--socket", self.sock(name), "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Signal the daemon and wait for it to exit; one that does not within ``timeout``
        is SIGKILLed with its process group (ours, by pid) and the TimeoutExpired raised."""
        p = self.procs.pop(name, None)
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
                raise

    def stop_all(self) -> None:
        """SIGTERM every daemon; each is waited for (and SIGKILLed if it lingers) even when
        an earlier one raised."""
        errors = []
        for name in list(self.procs):
            try:
                self.kill(name, signal.SIGTERM)
            except subprocess.TimeoutExpired as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def status(self, name: str) -> dict[str, Any]:
        return self.client(name).request("GET", "/v1/status", timeout=5)  # type: ignore[no-any-return]

    def wait(self, cond: Any, timeout: float = 20.0, what: str = "condition") -> Any:
        """Poll ``cond()`` until truthy (bounded). Errors from unreachable daemons count as not yet."""
        return wait_until(cond, timeout, what, transient=(HavmError, KeyError), detail=self.logs)

    def logs(self) -> str:
        out = []
        for name in self.names:
            p = self.root / name / "havmd.log"
            if p.exists():
                out.append(f"--- {name} ---\n" + "\n".join(p.read_text().splitlines()[-15:]))
        return "\n".join(out)

    def converged(self, names: list[str] | None = None) -> bool:
        names = names or list(self.procs)
        sts = [self.status(n) for n in names]
        return all(sorted(s["members"]) == sorted(names) and s["quorum"]["quorate"] and s["view_agreed"]
                   for s in sts) and len({s["controller"] for s in sts}) == 1


def kill_leftovers(cluster: LoopbackCluster) -> None:
    """SIGKILL the process group of any daemon that did not stop (ours, by pid)."""
    for p in cluster.procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)


@contextlib.contextmanager
def loopback_cluster(root: Path, n: int = 3, **kwargs: Any) -> Iterator[LoopbackCluster]:
    """A LoopbackCluster that is stopped (and its leftovers killed) however the test ends."""
    c = LoopbackCluster(root, n, **kwargs)
    try:
        yield c
    finally:
        try:
            c.stop_all()
        finally:
            kill_leftovers(c)
