"""Guest VMs in a lab: their resources in cluster.yaml, their disks, and an
outside observer of where they run.

``havm lab up --vms K`` builds havm's own guest image once (a cache shared by
every lab), creates one counter disk per VM in ``LABDIR/disks`` (the lab dir
is the cluster's shared storage: every node sees the same path) and writes
one ``type: vm`` resource per VM. Host-side settings (``run_dir``,
``migration_host``) are left out: each node's havmd fills in its own.

The observer (``observe``) never asks havm: it lists the QEMU processes of
every lab namespace through /proc and their QMP status (as ``havm.agents.observe``)
and reads each guest's ``boot_id``/counter over the guest network, so a test
can check that a VM never runs twice and tell a live migration (same boot_id,
counter continues) from a restart (new boot_id, counter restored from disk).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from typing import Any

from havm.commands.cluster import GetStatus
from havm.daemon.client import Client
from havm.errors import HavmError, LabError, Timeout, UsageError
from havm.guest import GuestImage, GuestState
from havm.lab import guestnet, netns, process
from havm.lab.state import LabState

DISKS_DIR = "disks"
DISK_SIZE_MB = 16
# The ops of a lab VM: monitor often (failures are seen within ~2 s); starts
# and migrations get room for a guest booting under TCG on a loaded machine.
VM_OPS: dict[str, dict[str, str]] = {
    "monitor": {"interval": "2s", "timeout": "20s"},
    "start": {"timeout": "60s"},
    "stop": {"timeout": "30s"},
    "migrate_to": {"timeout": "120s"},
    "migrate_from": {"timeout": "60s"},
}
VM_META: dict[str, Any] = {"allow_migrate": True, "stickiness": 100}
VM_STOP_TIMEOUT = 10  # s the guest gets to power off on ACPI powerdown (it takes < 1 s)
# No health_url in a lab VM's params: the agent's start returns once QEMU runs,
# seconds before the guest's service answers, and a monitor that checks the
# service in between fails and restarts the VM in a loop (reported to agents).
# Tests and the demo check the guest from outside instead (guest_state).
DUMMY_OPS: dict[str, dict[str, str]] = {"monitor": {"interval": "10s"}}
VIP_ADDRESS = f"{guestnet.GUEST_NET}.2.1"
Progress = Callable[[str], None]


def vm_names(count: int) -> list[str]:
    return [f"vm{k}" for k in range(1, count + 1)]


def plan_vms(lab_id: str, lab_dir: str, count: int) -> dict[str, dict[str, Any]]:
    """VM name -> {ip, mac, disk} (pure)."""
    if not 0 <= count <= guestnet.MAX_VMS:
        raise UsageError(f"--vms must be between 0 and {guestnet.MAX_VMS}, got {count}")
    return {vm: {"ip": guestnet.vm_address(k), "mac": guestnet.vm_mac(lab_id, vm),
                 "disk": os.path.join(lab_dir, DISKS_DIR, f"{vm}.qcow2")}
            for k, vm in enumerate(vm_names(count), start=1)}


def image_of(state: LabState) -> GuestImage:
    if state.guest_image is None:
        raise LabError(f"the lab at {state.dir} has no guest image recorded")
    g = state.guest_image
    from pathlib import Path

    return GuestImage(Path(g["vmlinux"]), Path(g["initramfs"]), g["kernel_release"], g["key"])


def vm_resource(state: LabState, vm: str) -> dict[str, Any]:
    """The ``type: vm`` resource of one lab VM (pure)."""
    from havm.guest.vmparams import guest_params

    info = state.vms[vm]
    assert state.guest_net is not None
    params = guest_params(image_of(state), vm, info["disk"], run_dir="",
                          ip=f"{info['ip']}/{state.guest_net['prefix']}",
                          bridge=state.guest_net["node_bridge"], stop_timeout=VM_STOP_TIMEOUT)
    params.pop("run_dir")  # node-local: each havmd fills in its own (under its state dir)
    for nic in params["nics"]:
        nic["mac"] = info["mac"]
    params["disks"] = [{"path": info["disk"], "format": "qcow2"}]
    return {"id": vm, "type": "vm", "params": params, "meta": dict(VM_META),
            "ops": {op: dict(v) for op, v in VM_OPS.items()}}


def ip_agent_available() -> bool:
    """Whether havm has an ``ip`` agent yet (``--ip`` is skipped otherwise)."""
    return importlib.util.find_spec("havm.agents.ip") is not None


def resources_document(state: LabState, dummies: int, vip: bool) -> list[dict[str, Any]]:
    """Every resource the lab writes in cluster.yaml: VMs, dummies, a virtual IP (pure)."""
    out = [vm_resource(state, vm) for vm in state.vms]
    out += [{"id": f"dummy{m}", "type": "dummy", "ops": {op: dict(v) for op, v in DUMMY_OPS.items()}}
            for m in range(1, dummies + 1)]
    if vip and state.guest_net is not None:
        out.append({"id": "vip", "type": "ip",
                    "params": {"ip": VIP_ADDRESS, "cidr_netmask": str(state.guest_net["prefix"]),
                               "nic": state.guest_net["node_bridge"]},
                    "ops": {"monitor": {"interval": "5s"}}})
    return out


def create_disks(state: LabState) -> list[str]:
    """Create each VM's counter disk (qcow2, zeros read as counter 0) on the lab dir."""
    from havm.guest.vmparams import create_disk

    made = []
    for info in state.vms.values():
        try:
            made.append(str(create_disk(info["disk"], DISK_SIZE_MB)))
        except (OSError, ValueError) as e:
            raise LabError(f"cannot create the disk {info['disk']}: {e}") from e
        except Exception as e:  # subprocess.CalledProcessError from qemu-img
            raise LabError(f"cannot create the disk {info['disk']}: {e}") from e
    return made


# ------------------------------------------------------------------ observer

def guest_state(lab_dir: str, vm: str, timeout: float = 3.0) -> GuestState:
    """``vm``'s (boot_id, counter), read over the guest network from the switch namespace.

    Raises NotFound-like LabError for an unknown VM, OSError if the guest does not answer.
    """
    state = LabState.load(lab_dir)
    info = state.vms.get(vm)
    if info is None:
        raise LabError(f"no VM {vm!r} in the lab at {state.dir}; VMs are {', '.join(state.vms) or 'none'}")
    return guestnet.fetch_guest_state(guestnet.observer_path(state.switch_netns), info["ip"], timeout)


def wait_guest_state(lab_dir: str, vm: str, timeout: float = 30.0,
                     newer_than: int | None = None) -> GuestState:
    """Poll ``guest_state`` until the guest answers (with a counter above ``newer_than``)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            st = guest_state(lab_dir, vm, timeout=max(0.5, min(3.0, deadline - time.monotonic())))
            if newer_than is None or st.counter > newer_than:
                return st
            last = None
        except (OSError, ValueError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise Timeout(f"guest {vm} gave no {'newer ' if newer_than is not None else ''}state "
                          f"within {timeout:g}s" + (f": {last}" if last else ""))
        time.sleep(0.2)


def _owner_of(state: LabState) -> Callable[[int], str | None]:
    """pid -> the lab node it belongs to (by network namespace, or loopback marker), or None."""
    if state.netns_mode:
        by_inode = {}
        for rec in state.nodes.values():
            assert rec.netns is not None
            inode = netns.netns_inode(rec.netns) or state.netns_inodes.get(rec.netns)
            if inode is not None:
                by_inode[inode] = rec.name
        return lambda pid: by_inode.get(netns.pid_netns_inode(pid) or -1)
    from havm.lab.daemons import MARKER

    markers = {f"{MARKER}={rec.dir}".encode(): rec.name for rec in state.nodes.values()}

    def owner(pid: int) -> str | None:
        return next((markers[e] for e in process.environ(pid) if e in markers), None)

    return owner


def _qemu_guest(pid: int) -> tuple[str, str | None] | None:
    """(VM name, observers' QMP socket) if ``pid`` is a QEMU guest started with
    ``-name guest=...`` (as havm's agent starts them), else None."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    if not args or "qemu-system" not in os.path.basename(args[0]):
        return None
    pairs = list(zip(args, args[1:], strict=False))
    name = next((v.split(",")[0].removeprefix("guest=") for k, v in pairs
                 if k == "-name" and v.startswith("guest=")), None)
    if name is None:
        return None
    sockets = [v.removeprefix("unix:").split(",")[0] for k, v in pairs if k == "-qmp" and v.startswith("unix:")]
    # the observers' monitor first: QMP serves one client per socket, the other is the agent's
    sockets.sort(key=lambda path: not path.endswith("observe.sock"))
    return name, (sockets[0] if sockets else None)


def qemu_processes(state: LabState, qmp_timeout: float = 2.0) -> list[dict[str, Any]]:
    """Every QEMU guest process of the lab: {vm, node, pid, status} (status from QMP:
    running, inmigrate, postmigrate, paused, ... or unknown).

    Only this lab's processes are asked over QMP (QEMUs of other labs and
    tests on the machine are left alone), as ``havm.agents.observe`` does for all.
    """
    owner = _owner_of(state)
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        node = owner(pid)
        guest = _qemu_guest(pid) if node is not None else None
        if guest is None or not process.is_alive(pid):
            continue
        out.append({"vm": guest[0], "node": node, "pid": pid, "status": qmp_status(guest[1], qmp_timeout)})
    return sorted(out, key=lambda p: (p["vm"], p["pid"]))


def qmp_status(socket: str | None, timeout: float = 2.0) -> str:
    """The run state QEMU reports on the QMP ``socket`` (running, inmigrate, paused...),
    or ``unknown`` if it does not answer within ``timeout``."""
    from havm.agents.qmp import Qmp, QmpError

    if socket:
        try:
            with Qmp(socket, timeout) as client:
                return client.status()
        except QmpError:
            pass
    return "unknown"


def _recheck_doubles(state: LabState, procs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask again about VMs seen running on two nodes.

    One scan asks each QEMU in turn: during a live migration's switchover the
    source can answer 'running' just before it pauses and the target 'running'
    just after it resumes. A real double run stays so; a switchover does not
    (a paused source never runs again without a resume). The second answers win.
    """
    counts: dict[str, int] = {}
    for p in procs:
        if p["status"] == "running":
            counts[p["vm"]] = counts.get(p["vm"], 0) + 1
    doubles = {vm for vm, n in counts.items() if n > 1}
    if not doubles:
        return procs
    again = {p["pid"]: p for p in qemu_processes(state) if p["vm"] in doubles}
    return [again.get(p["pid"], {**p, "status": "gone"}) if p["vm"] in doubles else p for p in procs]


def observe(lab_dir: str, guests: bool = True, guest_timeout: float = 2.0) -> dict[str, Any]:
    """The outside view of the lab's VMs.

    ``nodes``: node -> its QEMU processes; ``vms``: VM -> {running_on (nodes
    whose copy QMP says runs the guest), copies, ip, guest ({boot_id,
    counter} or {error})}; ``twice``: VMs running on more than one node
    (must stay empty; confirmed by a second look, see ``_recheck_doubles``);
    ``at``: UNIX time of the observation.
    """
    state = LabState.load(lab_dir)
    at = time.time()
    procs = qemu_processes(state)
    procs = _recheck_doubles(state, procs)
    nodes: dict[str, list[dict[str, Any]]] = {n: [] for n in state.nodes}
    for p in procs:
        nodes[p["node"]].append({k: p[k] for k in ("vm", "pid", "status")})
    vms: dict[str, dict[str, Any]] = {}
    for vm in sorted(set(state.vms) | {p["vm"] for p in procs}):
        copies = [{k: p[k] for k in ("node", "pid", "status")} for p in procs if p["vm"] == vm]
        entry: dict[str, Any] = {"running_on": sorted(c["node"] for c in copies if c["status"] == "running"),
                                 "copies": copies, "ip": state.vms.get(vm, {}).get("ip")}
        if guests and vm in state.vms and state.guest_net is not None:
            try:
                gs = guest_state(lab_dir, vm, guest_timeout)
                entry["guest"] = {"boot_id": gs.boot_id, "counter": gs.counter}
            except (OSError, ValueError) as e:
                entry["guest"] = {"error": str(e)}
        vms[vm] = entry
    return {"dir": state.dir, "at": at, "nodes": nodes, "vms": vms,
            "twice": sorted(vm for vm, e in vms.items() if len(e["running_on"]) > 1)}


# ------------------------------------------------------------- waiting for havm

def _status(state: LabState) -> dict[str, Any] | None:
    """The cluster status from the first daemon that answers, or None."""
    for rec in state.nodes.values():
        try:
            st: dict[str, Any] = Client(socket_path=rec.socket, timeout=5.0).run(GetStatus(), timeout=5.0)
            return st
        except HavmError:
            continue
    return None


def running_vms(st: dict[str, Any], names: list[str]) -> dict[str, str | None]:
    """VM -> the node havm says runs it (None unless started on exactly one node)."""
    out: dict[str, str | None] = {vm: None for vm in names}
    for r in st.get("resources", []):
        if r["id"] in out and r.get("state") == "started" and len(r.get("nodes") or []) == 1:
            out[r["id"]] = r["nodes"][0]
    return out


def wait_vms(lab_dir: str, timeout: float = 180.0, progress: Progress | None = None) -> dict[str, Any]:
    """Wait until havm reports every lab VM started; return {vms: vm -> node, elapsed}.

    Prints (through ``progress``) each change of the VMs' states. Raises
    Timeout naming the VMs still not running and what havm says of them.
    """
    state = LabState.load(lab_dir)
    names = list(state.vms)
    t0 = time.monotonic()
    last = ""
    placed: dict[str, str | None] = {vm: None for vm in names}
    st: dict[str, Any] | None = None
    while names:
        st = _status(state)
        if st is not None:
            placed = running_vms(st, names)
            by_id = {r["id"]: r for r in st.get("resources", [])}
            line = "  ".join(
                f"{vm}: {by_id[vm]['state'] if vm in by_id else 'unknown'}"
                + (f" on {','.join(by_id[vm].get('nodes') or [])}" if by_id.get(vm, {}).get("nodes") else "")
                + "".join(f" ({a} on {n})" for n, a in (by_id.get(vm, {}).get("in_flight") or {}).items())
                for vm in names)
        else:
            line = "(no daemon answers yet)"
        if line != last and progress is not None:
            progress(f"{time.monotonic() - t0:6.1f}s  {line}")
            last = line
        if all(placed.values()):
            break
        if time.monotonic() - t0 > timeout:
            late = [vm for vm, n in placed.items() if n is None]
            raise Timeout(f"VMs {', '.join(late)} not running within {timeout:g}s; havm says: {line}")
        time.sleep(0.5)
    return {"vms": placed, "elapsed": round(time.monotonic() - t0, 3)}
