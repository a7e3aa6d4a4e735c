"""Live migration between two network namespaces ("hosts") joined by a veth pair.

Each host namespace has a bridge ``br0`` holding its end of the veth and the
guest's tap; the guest (10.77.x.50) keeps its IP and MAC across the move.
QEMU is launched inside the host's namespace (``ip netns exec``); its QMP
socket is a path, reachable from here. Migration runs over the veth.
The guest's service is queried from host a's namespace before and after.
Namespaces and QEMU processes are removed at the end (by name / by pid).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from havm.agents.base import OCF, AgentResult
from havm.agents.migrate import live_migrate
from havm.agents.process import kill_and_wait, scan_for
from havm.agents.qemu import QemuAgent
from havm.guest import build_guest, parse_state
from havm.guest.build import STATE_PATH
from havm.guest.vmparams import create_disk, guest_params

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                       reason="qemu-system-x86_64 not installed (Debian package qemu-system-x86)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

SUBNET = f"10.{77 + os.getpid() % 100}.{os.getpid() % 250}"


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


class NsAgent(QemuAgent):
    """Runs the actions that launch QEMU inside the host's network namespace."""

    netns = ""

    def _in_ns(self, action: str, **kwargs: Any) -> AgentResult:
        code = ("import json,sys;from havm.agents.qemu import QemuAgent;"
                "a=QemuAgent(sys.argv[1],json.loads(sys.argv[2]));"
                f"r=a.{action}(**json.loads(sys.argv[3]));"
                "print(json.dumps({'rc':int(r.rc),'output':r.output,'data':dict(r.data)}))")
        out = subprocess.run(["ip", "netns", "exec", self.netns, sys.executable, "-c", code,
                              self.resource_id, json.dumps(self.params), json.dumps(kwargs)],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            return AgentResult(OCF.ERR_GENERIC, out.stderr[-2000:])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        return AgentResult(OCF(r["rc"]), r["output"], 0.0, r["data"])

    def start(self, progress=None) -> AgentResult:
        return self._in_ns("start")

    def migrate_prepare(self, source: str, progress=None) -> AgentResult:
        return self._in_ns("migrate_prepare", source=source)


def guest_state(netns: str, ip: str, timeout: float = 40, newer_than: int | None = None):
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c",
                              "import sys,urllib.request as u;"
                              "print(u.urlopen(sys.argv[1],timeout=1).read().decode())",
                              f"http://{ip}{STATE_PATH}"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            state = parse_state(out.stdout)
            if newer_than is None or state.counter > newer_than:
                return state
        last = out.stderr.strip().splitlines()[-1:]
        time.sleep(0.2)
    raise TimeoutError(f"guest {ip} not answering from {netns}: {last}")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tag = f"hv{os.getpid() % 100000}"
    ns = {"a": f"{tag}a", "b": f"{tag}b"}
    created: list[str] = []
    agents: dict[str, NsAgent] = {}
    try:
        for h, addr in (("a", 1), ("b", 2)):
            sh("ip", "netns", "add", ns[h])
            created.append(ns[h])
            sh("ip", "-n", ns[h], "link", "set", "lo", "up")
            sh("ip", "-n", ns[h], "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", ns[h], "addr", "add", f"{SUBNET}.{addr}/24", "dev", "br0")
            sh("ip", "-n", ns[h], "link", "set", "br0", "up")
        sh("ip", "-n", ns["a"], "link", "add", "up0", "type", "veth", "peer", "name", "up0",
           "netns", ns["b"])
        for h in ("a", "b"):
            sh("ip", "-n", ns[h], "link", "set", "up0", "master", "br0")
            sh("ip", "-n", ns[h], "link", "set", "up0", "up")
        image = build_guest()
        root = tmp_path_factory.mktemp("qemu-netns")
        disk = create_disk(root / "disk.qcow2")
        name = f"{tag}vm"
        for h, addr in (("a", 1), ("b", 2)):
            agent = NsAgent(name, guest_params(
                image, name, disk, root / h, bridge="br0", ip=f"{SUBNET}.50/24",
                migration_address=f"{SUBNET}.{addr}", stop_timeout=20))
            agent.netns = ns[h]
            agents[h] = agent
        yield {"ns": ns, "agents": agents, "ip": f"{SUBNET}.50"}
    finally:
        for agent in agents.values():
            for pid in scan_for(agent.spec.pidfile):
                kill_and_wait(pid)
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def test_live_migration_between_namespaces_over_a_bridge(hosts: dict[str, Any]) -> None:
    a, b = hosts["agents"]["a"], hosts["agents"]["b"]
    ns_a, ip = hosts["ns"]["a"], hosts["ip"]
    started = a.start()
    assert started.rc == OCF.SUCCESS, started.output
    tap = a.spec.nics[0].tap
    assert tap and "master br0" in sh("ip", "-n", ns_a, "link", "show", tap)
    before = guest_state(ns_a, ip)
    report = live_migrate(a, b, "a", "b")
    assert report.ok, report.details()
    assert a.monitor().rc == OCF.NOT_RUNNING and b.monitor().rc == OCF.SUCCESS
    # the guest answers from host a's namespace, now through the veth to b's bridge
    after = guest_state(ns_a, ip, newer_than=before.counter)
    assert after.boot_id == before.boot_id and after.counter > before.counter
    assert "master br0" in sh("ip", "-n", hosts["ns"]["b"], "link", "show", tap)
    assert b.stop().rc == OCF.SUCCESS
    assert scan_for(a.spec.pidfile) == [] and scan_for(b.spec.pidfile) == []
    gone = subprocess.run(["ip", "-n", hosts["ns"]["b"], "link", "show", tap], capture_output=True)
    assert gone.returncode != 0  # QEMU's tap went away with it
