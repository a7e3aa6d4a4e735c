"""Broadcast and multicast heartbeats between real network namespaces (root only).

Three node namespaces joined by two bridges (in a switch namespace): link
``a`` and link ``b``; each node runs ``python -m havm.membership`` in its
namespace. Checks that the nodes converge over broadcast and multicast, that a
SIGKILLed node is declared dead and a SIGTERMed one leaves at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="needs root and iproute2 for network namespaces"),
]

NODES = ["n1", "n2", "n3"]


def ip(*args: str, ns: str | None = None) -> None:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def namespaces() -> Iterator[dict[str, str]]:
    prefix = f"hvm{os.getpid() % 100000}"
    names = {n: f"{prefix}{n}" for n in NODES}
    switch = f"{prefix}sw"
    created: list[str] = []
    try:
        for ns in [switch, *names.values()]:
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True, timeout=30)
            created.append(ns)
            ip("link", "set", "lo", "up", ns=ns)
        for link, subnet in (("a", 201), ("b", 202)):
            ip("link", "add", f"br{link}", "type", "bridge", "mcast_snooping", "0", ns=switch)
            ip("link", "set", f"br{link}", "up", ns=switch)
            for i, node in enumerate(NODES, 1):
                ns = names[node]
                ip("link", "add", f"e{link}", "netns", ns, "type", "veth", "peer", "name", f"{node}{link}",
                   "netns", switch)
                ip("link", "set", f"{node}{link}", "master", f"br{link}", "up", ns=switch)
                ip("addr", "add", f"10.{subnet}.0.{i}/24", "brd", "+", "dev", f"e{link}", ns=ns)
                ip("link", "set", f"e{link}", "up", ns=ns)
        yield names
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def write_cluster(tmp: Path, links: list[dict[str, Any]]) -> Path:
    key = tmp / "authkey"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    key.chmod(0o600)
    config = {
        "cluster": "netns",
        "links": links,
        "nodes": [{"name": n, "addresses": {"a": f"10.201.0.{i}", "b": f"10.202.0.{i}"}}
                  for i, n in enumerate(NODES, 1)],
        "timing": {"keepalive": 0.2, "warntime": 0.8, "deadtime": 2.0, "initdead": 4.0},
    }
    path = tmp / "cluster.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def status(tmp: Path, node: str) -> dict[str, Any] | None:
    try:
        return json.loads((tmp / f"{node}.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


def converged(tmp: Path, nodes: list[str]) -> bool:
    views = [status(tmp, n) for n in nodes]
    return all(v is not None and v["members"] == nodes and v["agreed"] and v["controller"] == nodes[0]
               and all(lk["state"] == "up" for lk in v["links"]) for v in views)


@pytest.mark.parametrize("links", [
    [{"name": "a", "mode": "broadcast", "port": 7001, "broadcast": "10.201.0.255"},
     {"name": "b", "mode": "multicast", "port": 7002, "group": "239.1.2.3"}],
    [{"name": "a", "mode": "broadcast", "port": 7001},  # the limited broadcast 255.255.255.255
     {"name": "b", "mode": "unicast", "port": 7002}],
], ids=["subnet-broadcast+multicast", "limited-broadcast+unicast"])
def test_heartbeats_between_namespaces(namespaces, tmp_path, links) -> None:  # type: ignore[no-untyped-def]
    config = write_cluster(tmp_path, links)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {}
    try:
        for node in NODES:
            logs[node] = open(tmp_path / f"{node}.log", "wb")
            procs[node] = subprocess.Popen(
                ["ip", "netns", "exec", namespaces[node], sys.executable, "-m", "havm.membership",
                 "--config", str(config), "--node", node, "--interval", "0.1",
                 "--status-file", str(tmp_path / f"{node}.json")],
                stdout=logs[node], stderr=subprocess.STDOUT)
        ok = wait_until(lambda: converged(tmp_path, NODES))
        assert ok, {n: (status(tmp_path, n), (tmp_path / f"{n}.log").read_text()[-2000:]) for n in NODES}
        v = status(tmp_path, "n2")
        assert v is not None and v["traffic"]["drops"] == {}
        assert v["traffic"]["own_packets"] > 0  # our broadcasts come back to us, ignored
        assert all(lk["peers_up"] == 2 for lk in v["links"])

        procs["n1"].send_signal(signal.SIGKILL)  # the controller crashes
        procs["n1"].wait(10)
        assert wait_until(lambda: converged(tmp_path, ["n2", "n3"]))
        n1 = [p for p in status(tmp_path, "n3")["peers"] if p["name"] == "n1"][0]  # type: ignore[index]
        assert n1["state"] == "dead" and not n1["left"] and n1["last_heard_age"] >= 2.0

        procs["n3"].send_signal(signal.SIGTERM)  # stops on purpose: LEAVE
        assert procs["n3"].wait(10) == 0

        def n3_left() -> bool:
            v = status(tmp_path, "n2")
            return v is not None and any(p["name"] == "n3" and p["left"] for p in v["peers"])
        assert wait_until(n3_left, 5.0)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for f in logs.values():
            f.close()
