"""Issue 4's first acceptance in a real lab: 2 VMs + 1 IP + 1 dummy group start where the
constraints say; standby drains a node by live migration (same guest boot) and, with
auto-failback, 'online' brings its VM back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from havm.daemon.client import Client
from havm.lab import lab, vms
from havm.lab.plan import LabSpec
from havm.lab.state import socket_of
from tests.daemon.waiting import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.qemu, pytest.mark.slow]

if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("qemu-system-x86_64") is None:
    pytest.skip("needs root, iproute2 and qemu-system-x86_64", allow_module_level=True)


def placement(d: str) -> dict[str, list[str]]:
    st = Client(socket_path=socket_of(d, "n1"), timeout=10).request("GET", "/v1/status")
    return {r["id"]: r["nodes"] for r in st["resources"] if not r["in_flight"]}




def havm(d: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "havm.cli.main", "--lab", d, *args, "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


WANT = {"vm1": ["n2"], "vm2": ["n3"], "vip": ["n2"], "web-a": ["n1"], "web-b": ["n1"]}


@pytest.fixture
def vm_lab():
    d = tempfile.mkdtemp(prefix="hlp")
    try:
        lab.up(d, LabSpec(nodes=3, netns=True, vms=2, vip=True, keepalive=0.2, deadtime=1.0, initdead=3),
               vm_timeout=240)
        doc = yaml.safe_load(Client(socket_path=socket_of(d, "n1"), timeout=10).request("GET", "/v1/config")["text"])
        assert any(r.get("id") == "vip" for r in doc["resources"]), "the lab wrote no IP resource"
        doc["resources"].append({"group": "web", "resources": [{"id": "web-a", "type": "dummy"},
                                                              {"id": "web-b", "type": "dummy"}]})
        doc["constraints"] = [
            {"location": "vm1", "node": "n2", "score": 200},
            {"location": "vm2", "node": "n3", "score": 200},
            {"location": "web", "node": "n1", "score": 200},
            {"colocation": "vip", "with": "vm1", "score": "INFINITY"},
        ]
        doc.setdefault("properties", {})["auto_failback"] = True
        Path(d, "placed.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        havm(d, "config", "apply", str(Path(d, "placed.yaml")))
        yield d
    finally:
        lab.down(d)
        shutil.rmtree(d, ignore_errors=True)


def test_constraints_standby_drain_and_failback(vm_lab):
    d = vm_lab
    wait_until(lambda: all(placement(d).get(r) == n for r, n in WANT.items()), 240, "placement as constrained")
    boot = vms.wait_guest_state(d, "vm1", timeout=120).boot_id
    havm(d, "node", "standby", "n2")
    assert all("n2" not in r["nodes"] for r in Client(socket_path=socket_of(d, "n1"), timeout=10)
               .request("GET", "/v1/status")["resources"])
    state = vms.wait_guest_state(d, "vm1", timeout=60)
    assert state.boot_id == boot  # drained by live migration, not a restart
    assert placement(d)["vip"] == placement(d)["vm1"]  # the IP follows its VM
    havm(d, "node", "online", "n2")
    wait_until(lambda: placement(d).get("vm1") == ["n2"], 120, "vm1 back on n2 (auto-failback)")
    assert vms.wait_guest_state(d, "vm1", timeout=60).boot_id == boot  # back by live migration too
    assert not vms.observe(d, guests=False)["twice"]
