"""The lab's power switch as the cluster's fence device.

A lab's cluster.yaml names ``havm lab kill`` as its fence device, and havmd
runs it from inside a surviving node. So it must kill every process of the
target node even when (a) started in sessions of their own (agent actions,
daemonized QEMU) on a loopback lab, and (b) run from inside another node's
mount namespace, where /run/netns is not mounted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from havm.lab import control, daemons, lab, process
from havm.lab.plan import LabSpec
from havm.lab.state import LabState
from tests.lab.conftest import needs_netns

# A daemon stand-in that starts a child in a session of its own, as havmd's fork
# server does for agent actions (and QEMU's -daemonize does again).
SESSION_SITTER = ("sh", "-c", "setsid sleep 1000 & exec sleep 1001")


def _config(lab_dir: str) -> dict:
    with open(LabState.load(lab_dir).config, encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_loopback_config_names_the_power_switch_and_kill_takes_other_sessions(lab_dir):
    lab.up(lab_dir, LabSpec(nodes=2, netns=False, daemon_command=SESSION_SITTER), wait=False)
    cfg = _config(lab_dir)
    st = LabState.load(lab_dir)
    assert cfg["fencing"]["devices"] == [{"id": "lab-power", "agent": "lab", "params": {"lab_dir": st.dir}}]
    assert cfg.get("properties", {}).get("fencing_enabled", True) is True
    rec = st.nodes["n1"]
    pids = daemons.node_pids(rec)
    child = [p for p in pids if p != rec.pid]
    assert len(child) == 1 and process.proc_info(child[0]).sid != rec.pid  # another session
    killed = control.kill_node(lab_dir, "n1")["killed"]
    assert sorted(killed) == sorted(pids) and not any(process.is_alive(p) for p in pids)
    n2 = daemons.node_pids(st.nodes["n2"])
    assert daemons.daemon_alive(st.nodes["n2"]) and len(n2) == 2
    # the lean entry point a fence device can run: same result, exit 0
    out = subprocess.run([sys.executable, "-m", "havm.lab.power", "n2", "--dir", st.dir],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(json.loads(out.stdout)["killed"]) == sorted(n2) and daemons.node_pids(st.nodes["n2"]) == []


@needs_netns
def test_kill_run_from_inside_another_node_kills_the_target(lab_dir):
    """What the fence device does: 'havm lab kill n2' from n1's namespaces."""
    lab.up(lab_dir, LabSpec(nodes=2, netns=True, daemon_command=SESSION_SITTER), wait=False)
    st = LabState.load(lab_dir)
    assert set(st.netns_inodes) == set(st.namespaces())
    wire = daemons.machinery_pids(st, st.nodes["n2"])  # the namespace holder: not the node's
    target = [p for p in daemons.node_pids(st.nodes["n2"]) if p not in wire]
    assert len(target) == 2
    out = control.run_in(lab_dir, "n1", [sys.executable, "-m", "havm.cli.main", "lab", "kill", "n2",
                                         "--dir", st.dir, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(json.loads(out.stdout)["killed"]) == sorted(target)
    assert not any(process.is_alive(p) for p in target)
    assert daemons.daemon_alive(st.nodes["n1"]) and all(process.is_alive(p) for p in wire)
    # after 'down' the recorded inodes are forgotten (the kernel reuses them)
    lab.down(lab_dir)
    assert LabState.load(lab_dir).netns_inodes == {}
    gone = subprocess.run([sys.executable, "-m", "havm.cli.main", "lab", "kill", "n2", "--dir", st.dir],
                          capture_output=True, text=True, timeout=60)
    assert gone.returncode != 0 and "is down" in gone.stderr
