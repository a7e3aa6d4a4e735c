"""A lab cluster running real QEMU guests: ``havm lab up --nodes 3 --vms 2``.

One lab for the module (guest boots are the slow part: ~3-5 s each under
TCG), driven in order: up, live migration, power cut of a VM's node (fenced
by the lab's power switch, then the VM restarts elsewhere), down. An
observer thread outside havm samples the QEMU processes of every lab
namespace the whole time and must never see one VM running twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from havm.guest import GuestState
from havm.lab import daemons, lab, netns, vms
from havm.lab.plan import LabSpec
from havm.lab.state import LabState, netns_prefix
from tests.lab.conftest import NETNS_REASON

pytestmark = [
    pytest.mark.lab, pytest.mark.qemu, pytest.mark.slow,
    pytest.mark.skipif(NETNS_REASON is not None, reason=f"lab tests: {NETNS_REASON}"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                       reason="qemu-system-x86_64 is not installed (Debian: qemu-system-x86)"),
]


class Observer(threading.Thread):
    """Samples ``vms.observe`` (QEMU processes and their QMP state) until stopped."""

    def __init__(self, lab_dir: str) -> None:
        super().__init__(daemon=True, name="lab-vm-observer")
        self.lab_dir = lab_dir
        self.samples = 0
        self.twice: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                seen = vms.observe(self.lab_dir, guests=False)
                self.samples += 1
                if seen["twice"]:
                    self.twice.append(seen)
            except Exception as e:  # noqa: BLE001 - recorded, asserted by the test
                self.errors.append(repr(e))
            self._halt.wait(0.2)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


def havm(lab_dir: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "havm.cli.main", "--lab", lab_dir, *args],
                          capture_output=True, text=True, timeout=timeout)


def where(lab_dir: str) -> dict[str, list[str]]:
    """VM -> nodes whose QEMU runs the guest (the observer's view, not havm's)."""
    return {vm: v["running_on"] for vm, v in vms.observe(lab_dir, guests=False)["vms"].items()}


def all_nodes_alive(lab_dir: str) -> None:
    """Every node survived so far: a controller that takes office before the
    membership includes every node it heard fences that node (reported)."""
    state = LabState.load(lab_dir)
    dead = [n for n, rec in state.nodes.items() if not daemons.daemon_alive(rec)]
    assert dead == [], f"nodes {dead} were killed; see their peers' havmd.log (fencing)"


def advancing(lab_dir: str, vm: str, after: GuestState, timeout: float = 30) -> GuestState:
    return vms.wait_guest_state(lab_dir, vm, timeout=timeout, newer_than=after.counter)


@pytest.fixture(scope="module")
def vm_lab() -> Iterator[dict[str, Any]]:
    d = tempfile.mkdtemp(prefix="hv", dir="/tmp")
    observer = Observer(d)
    try:
        t0 = time.monotonic()
        res = lab.up(d, LabSpec(nodes=3, netns=True, vms=2, dummies=1), vm_timeout=240)
        up_s = time.monotonic() - t0
        observer.start()
        yield {"dir": d, "up": res, "up_s": up_s, "observer": observer}
    finally:
        if observer.is_alive():
            observer.stop()
        try:
            lab.down(d)
        finally:
            # the daemons' logs outlive the lab, for a failure's story
            keep = os.path.join(tempfile.gettempdir(), "havm-lab-vm-logs", os.path.basename(d))
            shutil.copytree(os.path.join(d, "nodes"), keep, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.sock", "*.qcow2"))
            shutil.rmtree(d, ignore_errors=True)


def test_up_runs_both_vms_and_their_counters_advance(vm_lab):
    d, res = vm_lab["dir"], vm_lab["up"]
    state = LabState.load(d)
    all_nodes_alive(d)
    assert set(res["vms"]) == {"vm1", "vm2"} and all(res["vms"][vm] in state.nodes for vm in res["vms"])
    with open(state.config, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    rsc = {r["id"]: r for r in cfg["resources"]}
    assert set(rsc) == {"vm1", "vm2", "dummy1"}
    vm1 = rsc["vm1"]
    assert vm1["type"] == "vm" and vm1["meta"] == {"allow_migrate": True, "stickiness": 100}
    assert "run_dir" not in vm1["params"] and "migration_host" not in vm1["params"]  # node-local
    assert vm1["params"]["disks"] == [{"path": os.path.join(state.dir, "disks", "vm1.qcow2"), "format": "qcow2"}]
    assert vm1["params"]["nics"] == [{"bridge": "vmbr0", "mac": state.vms["vm1"]["mac"]}]
    assert state.vms["vm1"]["ip"] != state.vms["vm2"]["ip"]
    assert cfg["fencing"]["devices"][0]["agent"] == "lab"
    # the observer agrees with havm, and each guest counts on its own
    assert where(d) == {vm: [node] for vm, node in res["vms"].items()}
    for vm, first in res["guests"].items():
        later = advancing(d, vm, GuestState(first["boot_id"], first["counter"]))
        assert later.boot_id == first["boot_id"]
    print(f"\nlab up with 2 VMs: {vm_lab['up_s']:.1f}s (havm says started after "
          f"{res['vms_started_after']:.1f}s, guests answer after {res['guests_answer_after']:.1f}s)")


def test_live_migration_keeps_the_guest_running(vm_lab):
    d = vm_lab["dir"]
    all_nodes_alive(d)
    placed = {vm: nodes[0] for vm, nodes in where(d).items()}
    # away from vm1's node and from vm2's: the next test cuts vm2's node
    target = next(n for n in LabState.load(d).nodes if n not in placed.values())
    before = vms.wait_guest_state(d, "vm1")
    t0 = time.monotonic()
    out = havm(d, "resource", "migrate", "vm1", target, "--timeout", "120")
    took = time.monotonic() - t0
    assert out.returncode == 0, out.stdout + out.stderr
    assert where(d)["vm1"] == [target]
    after = advancing(d, "vm1", before)
    assert after.boot_id == before.boot_id  # the same boot: a live migration, not a restart
    print(f"\nmigrate vm1 {placed['vm1']} -> {target}: 'havm resource migrate' took {took:.1f}s; "
          f"counter {before.counter} -> {after.counter}")


def test_power_cut_fences_and_restarts_the_vm_elsewhere(vm_lab):
    d = vm_lab["dir"]
    all_nodes_alive(d)
    placed = {vm: nodes[0] for vm, nodes in where(d).items()}
    victim = placed["vm2"]
    assert placed["vm1"] != victim
    before = vms.wait_guest_state(d, "vm2")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "havm.cli.main", "lab", "kill", victim, "--dir", d, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 120
    restarted_on: list[str] = []
    while time.monotonic() < deadline:
        restarted_on = where(d)["vm2"]
        if restarted_on:
            break
        time.sleep(0.2)
    running_s = time.monotonic() - t0
    assert restarted_on and restarted_on[0] != victim
    after = vms.wait_guest_state(d, "vm2", timeout=60)
    answers_s = time.monotonic() - t0
    assert after.boot_id != before.boot_id  # a cold restart ...
    assert after.counter >= before.counter - 1  # ... that read its counter back from the shared disk
    # the lab's power switch fenced the node before the recovery
    logs = "".join(open(r.log, encoding="utf-8", errors="replace").read()
                   for r in LabState.load(d).nodes.values() if r.name != victim)
    assert f"fenced {victim}: confirmed off" in logs
    # vm1 was not touched
    assert where(d)["vm1"] == [placed["vm1"]]
    print(f"\npower cut of {victim}: vm2 running on {restarted_on[0]} after {running_s:.1f}s, "
          f"guest answers after {answers_s:.1f}s (counter {before.counter} -> {after.counter})")


def test_no_vm_ever_ran_twice_and_down_leaves_nothing(vm_lab):
    d = vm_lab["dir"]
    observer: Observer = vm_lab["observer"]
    observer.stop()
    assert observer.samples >= 10, observer.errors
    assert observer.twice == [], [(t["at"], {vm: v["copies"] for vm, v in t["vms"].items()}) for t in observer.twice]
    lab.down(d)
    prefix = netns_prefix(d)
    assert [n for n in netns.list_netns() if n.startswith(prefix)] == []
    # no QEMU of this lab anywhere: every guest's command line names a file under the lab dir
    left = subprocess.run(["pgrep", "-f", f"qemu-system.*{d}/"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
