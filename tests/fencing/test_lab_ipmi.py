"""A namespace lab fenced for real: Debian's fence_ipmilan talks IPMI over LAN to one
openipmi ipmi_sim per node, whose chassis control is the node's power.

- a killed node is fenced through its BMC before its resources run elsewhere;
- ``havm node fence`` by hand, idempotent, recorded in the fencing history of status;
- a device that fails (wrong password) keeps the node's resources stopped while the
  controller retries, loudly, shown in status; fixing the device lets recovery happen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from havm.daemon.client import Client
from havm.lab import bmc, control, daemons, lab
from havm.lab.logs import first
from havm.lab.plan import LabSpec
from havm.lab.state import LabState, config_of, socket_of
from tests.daemon.waiting import wait_until
from tests.fencing.lablog import fenced_before_starts

pytestmark = [pytest.mark.lab, pytest.mark.slow]

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root and iproute2 for network namespaces", allow_module_level=True)
if why := bmc.ipmi_sim_available():
    pytest.skip(why, allow_module_level=True)
if shutil.which("fence_ipmilan") is None and not os.path.exists("/usr/sbin/fence_ipmilan"):
    pytest.skip("fence_ipmilan not installed (Debian package fence-agents)", allow_module_level=True)

NAMES = ["n1", "n2", "n3"]
RESOURCES = [f"d{i}" for i in range(1, 7)]


def havm(d: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "havm.cli.main", "--lab", d, *args], capture_output=True,
                          text=True, timeout=timeout)


def status(d: str, nodes: list[str]) -> dict | None:
    for n in nodes:
        try:
            return Client(socket_path=socket_of(d, n), timeout=10).request("GET", "/v1/status")
        except Exception:  # noqa: BLE001 - a node being killed or started does not answer
            continue
    return None


def placement(d: str, nodes: list[str]) -> dict[str, list[str]] | None:
    st = status(d, nodes)
    if st is None or any(r["in_flight"] for r in st["resources"]):
        return None
    return {r["id"]: r["nodes"] for r in st["resources"]}


def settled(d: str) -> dict[str, list[str]] | None:
    """Every resource runs once and nothing moves for a second (a kill must not race a move)."""
    look = placement(d, NAMES)
    if not look or set(look) != set(RESOURCES) or not all(len(v) == 1 for v in look.values()):
        return None
    time.sleep(1.0)
    return look if placement(d, NAMES) == look else None


def apply(d: str, doc: dict) -> None:
    path = Path(d, "with.yaml")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = havm(d, "config", "apply", str(path))
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def lab_dir():
    d = tempfile.mkdtemp(prefix="hli")
    try:
        lab.up(d, LabSpec(nodes=3, links=1, keepalive=0.2, deadtime=1.0, initdead=3, fencing="ipmi"),
               wait=True, timeout=90)
        doc = yaml.safe_load(Path(config_of(d)).read_text())
        assert [dev["agent"] for dev in doc["fencing"]["devices"]] == ["fence_ipmilan"] * 3
        doc.setdefault("properties", {})["fencing_enabled"] = True
        doc["resources"] = [{"id": r, "type": "dummy", "meta": {"stickiness": 100}} for r in RESOURCES]
        apply(d, doc)
        yield d
    finally:
        lab.down(d)
        shutil.rmtree(d, ignore_errors=True)


def power_on(d: str, node: str) -> None:
    """Power the node back on the way an operator would: fence_ipmilan -o on, through its BMC."""
    state = LabState.load(d)
    b = state.bmcs[node]
    out = subprocess.run(["nsenter", f"--net=/run/netns/{state.switch_netns}", "--", "fence_ipmilan",
                          "-a", b.address, "-u", str(b.port), "-l", b.username, "-p", b.password, "-o", "on"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": "/usr/sbin:/usr/bin"})
    assert out.returncode == 0, out.stderr
    control.wait_nodes(d, [node], timeout=60)
    wait_until(lambda: (st := status(d, NAMES)) and sorted(st["members"]) == NAMES, 60, f"{node} a member again")


def bmc_says_on(d: str, node: str) -> bool | None:
    state = LabState.load(d)
    return bmc.power_status_over_ipmi(state.bmcs[node], state.switch_netns)


def test_a_killed_node_is_fenced_through_its_bmc_before_recovery(lab_dir):
    d = lab_dir
    pl = wait_until(lambda: settled(d), 90, "all resources running, nothing moving")
    victim = "n3"
    lost = sorted(r for r, nodes in pl.items() if nodes == [victim])
    if not lost:  # make sure the victim holds something
        victim = pl["d1"][0]
        lost = sorted(r for r, nodes in pl.items() if nodes == [victim])
    survivors = [n for n in NAMES if n != victim]
    t_kill = control.kill_node(d, victim)["at"]  # a power cut behind the cluster's back
    assert bmc_says_on(d, victim) is False  # the BMC sees the truth: nothing of the node runs
    wait_until(lambda: (p := placement(d, survivors)) and all(len(p[r]) == 1 and p[r][0] != victim for r in lost),
               90, f"{lost} recovered")
    fenced_before_starts(d, victim, lost, after=t_kill)
    for n in survivors:  # each member shows the cluster's history: its own attempts and its peers'
        st = status(d, [n])
        ok = [a for a in st["fencing"]["history"] if a["node"] == victim and a["ok"] and a["started"] >= t_kill - 1]
        assert ok and ok[0]["device"] == f"bmc-{victim}" and ok[0]["agent"] == "fence_ipmilan", (n, st["fencing"])
        assert ok[0]["requested_by"].startswith("controller ") and ok[0]["executor"] in survivors
    power_on(d, victim)


def test_fence_by_hand_is_idempotent_and_recorded(lab_dir):
    d = lab_dir
    wait_until(lambda: settled(d), 90, "all resources running, nothing moving")
    target = "n2"
    assert bmc_says_on(d, target) is True
    out = havm(d, "node", "fence", target, "--yes", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["ok"] and res["level"] == 1 and res["executor"] != target and not res["already_off"]
    assert res["attempts"][0]["device"] == f"bmc-{target}"
    assert bmc_says_on(d, target) is False
    assert not daemons.daemon_alive(LabState.load(d).nodes[target])
    again = havm(d, "node", "fence", target, "--yes", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_off"] is True
    st = status(d, [n for n in NAMES if n != target])
    mine = [a for a in st["fencing"]["history"] if "havm node fence" in a["requested_by"]]
    assert len(mine) >= 2 and all(a["node"] == target and a["ok"] for a in mine[:2])
    text = havm(d, "--node", "n1", "status").stdout
    assert "Fencing history" in text and f"bmc-{target}" in text
    # a node never fences itself, and without --yes (no terminal) nothing happens
    refused = havm(d, "--node", "n1", "node", "fence", "n1", "--yes")
    assert refused.returncode != 0 and "will not fence itself" in refused.stderr
    unconfirmed = havm(d, "node", "fence", "n3")
    assert unconfirmed.returncode != 0 and "--yes" in unconfirmed.stderr
    power_on(d, target)
    # fencing the controller itself: another member runs the fence
    controller = wait_until(lambda: (st := status(d, NAMES)) and st["controller"], 30, "a controller")
    asked = next(n for n in NAMES if n != controller)
    out = havm(d, "--node", asked, "node", "fence", controller, "--yes", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["ok"] and res["executor"] == min(n for n in NAMES if n != controller)
    assert bmc_says_on(d, controller) is False
    power_on(d, controller)


def test_a_failing_device_blocks_recovery_and_is_retried_until_fixed(lab_dir):
    d = lab_dir
    pl = wait_until(lambda: settled(d), 90, "all resources running, nothing moving")
    victim = max(NAMES, key=lambda n: sum(1 for v in pl.values() if v == [n]))
    lost = sorted(r for r, nodes in pl.items() if nodes == [victim])
    survivors = [n for n in NAMES if n != victim]
    good = yaml.safe_load(Path(config_of(d)).read_text())
    current = json.loads(havm(d, "config", "show", "--json").stdout)
    doc = yaml.safe_load(current["text"])
    for dev in doc["fencing"]["devices"]:
        if dev["id"] == f"bmc-{victim}":
            dev["params"]["password"] = "wrong"
            dev["timeout"] = "20s"
    apply(d, doc)
    t_kill = control.kill_node(d, victim)["at"]

    def failing_twice() -> dict | None:
        st = status(d, survivors)
        f = [x for x in (st or {}).get("fencing", {}).get("failing", []) if x["node"] == victim]
        return f[0] if f and f[0]["failed_attempts"] >= 2 and f[0]["last_at"] > t_kill else None

    failing = wait_until(failing_twice, 120, f"two failed fences of {victim}")
    assert failing["last_device"] == f"bmc-{victim}"
    # meanwhile nothing the victim ran has been started anywhere
    p = placement(d, survivors) or {}
    assert all(not p.get(r) for r in lost), p
    assert not first(d, rf"havm\.executor \w+: start ({'|'.join(lost)}): rc=0", after=t_kill)
    assert first(d, rf"havm\.controller ERROR: FENCING {victim} FAILED", after=t_kill)
    assert "FENCING " + victim + " FAILING" in havm(d, "--node", survivors[0], "status").stdout
    # the operator fixes the device: the next retry fences, then recovery happens
    doc["fencing"] = good["fencing"]
    apply(d, doc)
    wait_until(lambda: (q := placement(d, survivors)) and all(len(q[r]) == 1 for r in lost), 120,
               f"{lost} recovered once {victim} is fenced")
    fenced_before_starts(d, victim, lost, after=t_kill)
    power_on(d, victim)
