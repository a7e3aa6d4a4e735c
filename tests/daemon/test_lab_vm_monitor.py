"""A real QEMU guest in a lab: kill -9 its QEMU; the monitor notices and havm restarts it in
place (a new boot); after migration_threshold failures it moves to another node."""

from __future__ import annotations

import os
import shutil
import signal
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




def vm1(d: str) -> dict:
    st = Client(socket_path=socket_of(d, "n1"), timeout=10).request("GET", "/v1/status")
    return next(r for r in st["resources"] if r["id"] == "vm1")


def qemu_pid(d: str, node: str) -> int:
    copies = vms.observe(d, guests=False)["vms"]["vm1"]["copies"]
    return next(c["pid"] for c in copies if c["node"] == node)


@pytest.fixture
def vm_lab():
    d = tempfile.mkdtemp(prefix="hlm")
    try:
        lab.up(d, LabSpec(nodes=3, netns=True, vms=1, keepalive=0.2, deadtime=1.0, initdead=3), vm_timeout=240)
        text = Client(socket_path=socket_of(d, "n1"), timeout=10).request("GET", "/v1/config")["text"]
        doc = yaml.safe_load(text)
        for r in doc["resources"]:
            if r.get("id") == "vm1":
                r.setdefault("meta", {})["migration_threshold"] = 2
        Path(d, "t2.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        subprocess.run([sys.executable, "-m", "havm.cli.main", "--lab", d, "config", "apply", str(Path(d, "t2.yaml"))],
                       check=True, capture_output=True, timeout=60)
        yield d
    finally:
        lab.down(d)
        shutil.rmtree(d, ignore_errors=True)


def test_killed_qemu_restarts_in_place_then_moves_after_the_threshold(vm_lab):
    d = vm_lab
    home = wait_until(lambda: (r := vm1(d))["nodes"] and not r["in_flight"] and r["nodes"][0], 120, "vm1 running")
    boot0 = vms.wait_guest_state(d, "vm1", timeout=120).boot_id
    os.kill(qemu_pid(d, home), signal.SIGKILL)  # the guest dies behind havm's back
    wait_until(lambda: (r := vm1(d))["failcounts"].get(home) == 1 and r["nodes"] == [home] and not r["in_flight"],
         120, "vm1 restarted in place with one failure counted")
    boot1 = vms.wait_guest_state(d, "vm1", timeout=120).boot_id
    assert boot1 != boot0  # a restart, not the same guest
    os.kill(qemu_pid(d, home), signal.SIGKILL)  # second failure: reaches migration_threshold 2
    moved = wait_until(lambda: (r := vm1(d))["nodes"] and r["nodes"][0] != home and not r["in_flight"] and r["nodes"][0],
                 120, "vm1 moved away after the threshold")
    assert moved != home
    assert vms.wait_guest_state(d, "vm1", timeout=120).boot_id not in (boot0, boot1)
    assert not vms.observe(d, guests=False)["twice"]
