"""A real lab with the lab's power switch as fence device: whatever node dies (the
controller included), its resources start elsewhere only after it is fenced."""

from __future__ import annotations

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
from havm.errors import HavmError
from havm.lab import control, lab
from havm.lab.plan import LabSpec
from havm.lab.state import config_of, socket_of
from tests.daemon.waiting import wait_until
from tests.fencing.lablog import fenced_before_starts

pytestmark = [pytest.mark.lab]

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root and iproute2 for network namespaces", allow_module_level=True)

def placement(d: str, nodes: list[str]) -> dict[str, list[str]] | None:
    """Where each resource runs, or None while anything is still in flight."""
    for n in nodes:
        try:
            st = Client(socket_path=socket_of(d, n), timeout=5).request("GET", "/v1/status")
        except HavmError:
            continue
        if any(r["in_flight"] for r in st["resources"]):
            return None
        return {r["id"]: r["nodes"] for r in st["resources"]}
    return None


def settled(d: str, nodes: list[str]) -> dict[str, list[str]] | None:
    """A placement that holds for a second: no transition is moving anything (a kill must
    not race a move that was already under way, which would start things legitimately)."""
    first_look = placement(d, nodes)
    if not first_look or len(first_look) != 6 or not all(len(v) == 1 for v in first_look.values()):
        return None
    time.sleep(1.0)
    return first_look if placement(d, nodes) == first_look else None




@pytest.fixture
def lab_dir():
    d = tempfile.mkdtemp(prefix="hlf")
    try:
        lab.up(d, LabSpec(nodes=3, links=2, keepalive=0.2, deadtime=1.0, initdead=3), wait=True, timeout=90)
        doc = yaml.safe_load(Path(config_of(d)).read_text())
        doc.setdefault("properties", {})["fencing_enabled"] = True
        doc["resources"] = [{"id": f"d{i}", "type": "dummy", "meta": {"stickiness": 100}} for i in range(1, 7)]
        if not doc.get("fencing", {}).get("devices"):
            doc["fencing"] = {"devices": [{"id": "lab-power", "agent": "lab", "params": {"lab_dir": d}}]}
        Path(d, "with.yaml").write_text(yaml.safe_dump(doc))
        subprocess.run([sys.executable, "-m", "havm.cli.main", "--lab", d, "config", "apply", str(Path(d, "with.yaml"))],
                       check=True, capture_output=True, timeout=60)
        yield d
    finally:
        lab.down(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("victim", ["n1", "n3"], ids=["controller-dies", "member-dies"])
def test_recovery_waits_for_the_fence(lab_dir, victim):
    d = lab_dir
    names = ["n1", "n2", "n3"]
    pl = wait_until(lambda: settled(d, names), 90, "all resources running, nothing moving")
    lost = sorted(r for r, nodes in pl.items() if nodes == [victim])
    assert lost, pl
    t_kill = time.time()
    control.kill_node(d, victim)
    survivors = [n for n in names if n != victim]
    wait_until(lambda: (p := placement(d, survivors)) and all(len(p[r]) == 1 and p[r][0] != victim for r in lost),
         60, f"{lost} recovered")
    fenced_before_starts(d, victim, lost, after=t_kill)
