"""Lab lifecycle: ``up``, ``down`` and ``status``.

``up`` records its plan in lab.json before creating anything and records
each process as soon as it starts, so ``down`` can always undo it: after a
clean ``up``, a partial one, a crash, or even with lab.json lost (the lab's
namespaces are found by their name prefix, derived from the lab dir).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

import yaml

from havm.config.load import load_config, write_key
from havm.errors import HavmError, LabError
from havm.lab import bmc, daemons, faults, netns, process, vms
from havm.lab import watchdog as lab_watchdog
from havm.lab.plan import (
    LabSpec,
    cluster_document,
    default_lab_octet,
    fill_timing,
    heartbeat_port,
    network_commands,
    plan_lab,
)
from havm.lab.state import (
    LOCK_FILE,
    STATE_FILE,
    LabState,
    NodeRecord,
    load_optional,
    locked,
    netns_prefix,
)

if TYPE_CHECKING:
    from havm.guest import GuestImage

GENERATED = ("cluster.yaml", "authkey", STATE_FILE, "nodes", vms.DISKS_DIR)
FENCING_NOTE = {
    "lab": "# fencing: the lab's power switch ('havm lab kill NODE') kills every process of\n"
           "# a lost node (daemon, agents, guests) before its resources are recovered\n",
    "ipmi": "# fencing: fence_ipmilan powers a lost node off through its simulated BMC (ipmi_sim),\n"
            "# which kills every process of the node (daemon, agents, guests), before its\n"
            "# resources are recovered\n",
    "none": "# fencing: none configured (a lost node's resources are never recovered)\n",
    "watchdog": "# fencing: no device; each node's lab watchdog resets it (kills every process) when\n"
                "# havmd stops feeding it (no quorum, hung, killed); survivors wait fencing_watchdog_timeout\n",
}
PROBE_TIMEOUT = 2.0  # seconds a daemon gets to answer 'lab status' (probes run in parallel)
STOP_GRACE = 2.0  # seconds daemons get to exit on SIGTERM at 'down' before SIGKILL


def _live_leftovers(lab_dir: str, state: LabState | None) -> list[str]:
    """What of a previous lab in ``lab_dir`` still exists (namespaces, live daemons)."""
    left = [ns for ns in _lab_namespaces(lab_dir, state) if netns.exists(ns)]
    if state is not None:
        left += [f"{n.name} (pid {n.pid})" for n in state.nodes.values() if daemons.daemon_alive(n)]
        # loopback: what a dead daemon started lives on in its process group
        left += [f"{n.name} (processes {pids})" for n in state.nodes.values()
                 if n.netns is None and not daemons.daemon_alive(n) and (pids := daemons.node_pids(n))]
        left += [f"BMC of {n}" for n in bmc.alive(state)]
    return left


def _lab_namespaces(lab_dir: str, state: LabState | None) -> list[str]:
    names = set(state.namespaces()) if state else set()
    if os.geteuid() == 0 and os.path.isdir(netns.NETNS_DIR):
        prefix = netns_prefix(lab_dir)
        names.update(n for n in os.listdir(netns.NETNS_DIR) if n.startswith(prefix))
    return sorted(names)


def _check_ours(lab_dir: str) -> None:
    """Refuse a directory that holds something else than a lab (we would clobber it)."""
    if os.path.isdir(lab_dir):
        entries = [e for e in os.listdir(lab_dir) if e != LOCK_FILE]
        if entries and not os.path.exists(os.path.join(lab_dir, STATE_FILE)):
            raise LabError(f"{lab_dir} exists and is not a lab directory (no {STATE_FILE}); "
                           "give an empty or new --dir")


def _prepare_dir(lab_dir: str) -> None:
    """Make ``lab_dir`` ready for a new lab, removing only files a lab generates."""
    _check_ours(lab_dir)
    if os.path.isdir(lab_dir):
        for name in GENERATED:
            path = os.path.join(lab_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.unlink(path)
    os.makedirs(lab_dir, exist_ok=True)


def _free_octet(lab_dir: str, links: int, port: int) -> int:
    """A loopback octet whose node-1 addresses are not in use on ``port``."""
    first = default_lab_octet(lab_dir)
    for k in range(230):
        octet = 20 + (first - 20 + k) % 230
        if all(_udp_free(f"127.{li}.{octet}.1", port) for li in range(links)):
            return octet
    raise LabError("no free loopback range 127.x.<20..249>.y for a new lab")


def _udp_free(addr: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((addr, port))
        except OSError as e:
            return e.errno != errno.EADDRINUSE
    return True


def _create_network(state: LabState) -> None:
    netns.add_netns(state.namespaces())
    # recorded for 'havm lab kill' run from inside a node (the fence device),
    # where /run/netns is not mounted
    state.netns_inodes = {ns: inode for ns in state.namespaces() if (inode := netns.netns_inode(ns))}
    state.save()
    # no IPv6 on lab wires: its router solicitations and MLD reports would be
    # noise in the traffic figures of heartbeat benches
    netns.parallel(netns.disable_ipv6, state.namespaces())
    root, switch, per_node = network_commands(state)
    assert state.switch_netns is not None
    netns.batch(root)
    netns.batch(switch, state.switch_netns)

    def wire(name: str) -> None:
        netns.batch(per_node[name], state.nodes[name].netns)
        faults.setup_chains(state, name)

    netns.parallel(wire, list(per_node))


def up(lab_dir: str, spec: LabSpec, wait: bool = True, timeout: float = 60.0,
       replace: bool = False, guest_dir: str | None = None, vm_timeout: float = 180.0,
       progress: vms.Progress | None = None) -> dict[str, Any]:
    """Create the lab and start one havmd per node; with ``wait``, until all answer
    (and, with ``spec.vms``, until havm runs every VM: ``vm_timeout``).

    With VMs, the guest image is built first (or taken from its cache in
    ``guest_dir``, default ``havm.guest.default_guest_dir()``) and each VM gets a
    counter disk in LABDIR/disks. ``progress`` receives one line per change of
    the VMs' states while waiting.

    Raises LabError if the lab already runs (unless ``replace``: then it is
    brought down first), and (leaving the lab up for inspection) if some
    daemons do not answer within ``timeout``, naming them with their log's
    tail; Timeout if VMs do not run within ``vm_timeout`` (the lab stays up).
    Any other failure removes what was created.
    """
    if spec.netns and (why := netns.available()):
        raise LabError(f"cannot build a namespace lab: {why} (use --no-netns for a loopback lab)")
    if spec.fencing == "ipmi" and (why := bmc.ipmi_sim_available()):
        raise LabError(f"cannot simulate BMCs for --fencing ipmi: {why}")
    timing = fill_timing(spec.keepalive, spec.warntime, spec.deadtime, spec.initdead)
    lab_dir = os.path.realpath(lab_dir)
    started = time.monotonic()
    image = _guest_image(guest_dir) if spec.vms else None
    vip = spec.vip and vms.ip_agent_available()
    _check_ours(lab_dir)
    with locked(lab_dir):
        old = load_optional(lab_dir)
        if replace and os.path.exists(os.path.join(lab_dir, STATE_FILE)):
            _teardown(lab_dir, old)
        if leftovers := _live_leftovers(lab_dir, old):
            raise LabError(f"a lab already runs in {lab_dir} ({', '.join(leftovers)}); "
                           "run 'havm lab down' first")
        _prepare_dir(lab_dir)
        is_root = os.geteuid() == 0
        octet = 0 if spec.netns else _free_octet(lab_dir, spec.links, heartbeat_port(spec, is_root))
        state = plan_lab(lab_dir, spec, octet, is_root)
        if image is not None:
            state.guest_image = {"vmlinux": str(image.vmlinux), "initramfs": str(image.initramfs),
                                 "kernel_release": image.kernel_release, "key": image.key}
        state.save()  # the plan first: from here on 'down' knows what to remove
        try:
            with open(state.config, "w", encoding="utf-8") as f:
                f.write(f"# havm lab {state.dir}: generated by 'havm lab up'\n")
                f.write(FENCING_NOTE[state.fencing])
                yaml.safe_dump(cluster_document(state, timing, spec.dummies, vip), f, sort_keys=False)
            write_key(state.key_file)
            vms.create_disks(state)
            load_config(state.config)  # the lab must run a config havm accepts
            for rec in state.nodes.values():
                os.makedirs(rec.dir, exist_ok=True)
            if state.netns_mode:
                _create_network(state)
                try:
                    netns.parallel(lambda rec: daemons.start_holder(state, rec), state.nodes.values())
                finally:
                    state.save()
            if state.bmcs:
                try:
                    bmc.start_all(state)
                finally:
                    state.save()
            if state.fencing == "watchdog":
                lab_watchdog.start_all(state)  # the nodes' "hardware": before any daemon can arm it
            for rec in state.nodes.values():
                daemons.spawn_daemon(state, rec)
                state.save()
            state.status = "up"
            state.save()
        except (HavmError, OSError) as e:
            _teardown(lab_dir, state)
            raise LabError(f"lab up failed, the partial lab was removed: {e}") from e
        result = summary(state)
        if wait:
            readiness = daemons.wait_ready(state, state.nodes, timeout)
            result["ready"] = readiness.ready
            if readiness.failed:
                raise LabError(f"{len(readiness.failed)} of {len(state.nodes)} lab nodes did not come up "
                               f"(the lab is left up; 'havm lab down --dir {lab_dir}' removes it):\n"
                               + daemons.describe_failures(readiness.failed))
    result["daemons_ready_after"] = round(time.monotonic() - started, 3)
    if spec.vip and not vip:
        result["skipped"] = ["vip: havm has no 'ip' agent yet"]
    if wait and state.vms:
        # outside the lab lock: 'havm lab kill' (the fence device) must not wait for us
        deadline = time.monotonic() + vm_timeout
        result["vms"] = vms.wait_vms(lab_dir, vm_timeout, progress)["vms"]
        result["vms_started_after"] = round(time.monotonic() - started, 3)
        result["guests"] = {}
        for vm in state.vms:  # havm says started once QEMU runs; the guest boots a few seconds more
            gs = vms.wait_guest_state(lab_dir, vm, timeout=max(1.0, deadline - time.monotonic()))
            result["guests"][vm] = {"boot_id": gs.boot_id, "counter": gs.counter}
            if progress is not None:
                progress(f"{time.monotonic() - started:6.1f}s  {vm} answers: boot_id {gs.boot_id} "
                         f"counter {gs.counter}")
        result["guests_answer_after"] = round(time.monotonic() - started, 3)
    result["elapsed"] = round(time.monotonic() - started, 3)
    return result


def _guest_image(guest_dir: str | None) -> GuestImage:
    """havm's guest image, built once into its cache dir."""
    from havm.guest import GuestBuildError, build_guest

    try:
        return build_guest(guest_dir)
    except (GuestBuildError, OSError) as e:
        raise LabError(f"cannot build the guest image for the lab's VMs: {e}") from e


def _teardown(lab_dir: str, state: LabState | None) -> dict[str, Any]:
    """Kill every process and delete every namespace of the lab (idempotent)."""
    namespaces = _lab_namespaces(lab_dir, state)
    recorded = [n for n in state.nodes.values() if daemons.daemon_alive(n)] if state else []
    bmcs_killed = bmc.stop_all(state) if state else []
    bmcs_killed += lab_watchdog.stop_all(state) if state else []  # before the daemons: no reset on the way down
    # a short grace for daemons to clean up, then nothing is spared
    for rec in recorded:
        process.signal_pid(rec.pid, signal.SIGTERM, rec.pid_start)
        process.signal_pid(rec.pid, signal.SIGCONT, rec.pid_start)
    process.wait_gone([r.pid for r in recorded if r.pid], STOP_GRACE)

    def everything() -> list[int]:
        pids: set[int] = set()
        for in_ns in netns.pids_by_netns(namespaces, state.netns_inodes if state else None).values():
            pids.update(in_ns)
        for rec in state.nodes.values() if state else []:
            if rec.netns is None:
                pids.update(daemons.node_pids(rec))
        pids.discard(os.getpid())
        return sorted(pids)

    killed = process.kill_all(everything) + bmcs_killed
    deleted = netns.delete_netns_many(namespaces)
    if remaining := [ns for ns in namespaces if netns.exists(ns)]:
        raise LabError(f"namespaces {remaining} could not be deleted")
    if state is not None:
        state.status = "down"
        state.faults.clear()
        state.netns_inodes = {}  # the kernel may give these numbers to other namespaces now
        for rec in state.nodes.values():
            rec.pid = rec.pid_start = rec.holder_pid = rec.holder_start = None
            rec.groups = []
            if os.path.exists(rec.socket):
                os.unlink(rec.socket)
        state.save()
    return {"dir": lab_dir, "killed": killed, "stopped": [r.name for r in recorded],
            "namespaces_deleted": deleted}


def down(lab_dir: str) -> dict[str, Any]:
    """Remove every process, namespace, interface and rule of the lab.

    Safe to run twice, after a partial ``up``, after a crash, and without
    lab.json. The lab dir (config, keys, logs) is kept.
    """
    lab_dir = os.path.realpath(lab_dir)
    if not os.path.exists(os.path.join(lab_dir, STATE_FILE)):
        # no lab.json (or no dir any more): the namespaces named after the dir
        return _teardown(lab_dir, None)
    with locked(lab_dir):
        return _teardown(lab_dir, load_optional(lab_dir))


def summary(state: LabState) -> dict[str, Any]:
    return {
        "dir": state.dir, "lab_id": state.lab_id, "mode": state.mode, "status": state.status,
        "cluster": state.cluster, "config": state.config, "links": state.links, "port": state.port,
        "nodes": {n.name: {"pid": n.pid, "netns": n.netns, "addresses": n.addresses, "socket": n.socket}
                  for n in state.nodes.values()},
        "fencing": state.fencing,
        "bmcs": {n: {"address": b.address, "port": b.port, "pid": b.pid} for n, b in state.bmcs.items()},
    }


def status(lab_dir: str, probe: bool = True) -> dict[str, Any]:
    """Per node: process state, namespace, addresses, interfaces, applied faults."""
    state = LabState.load(lab_dir)
    result = summary(state)
    result["switch_netns"] = state.switch_netns
    result["faults"] = {"partition": state.faults.partition, "links_down": state.faults.links_down,
                        "loss": state.faults.loss, "blocks": state.faults.blocks}
    switch_ports = {}
    if state.netns_mode and state.switch_netns and netns.exists(state.switch_netns):
        switch_ports = netns.link_states(state.switch_netns)

    def node_status(rec: NodeRecord) -> dict[str, Any]:
        alive = daemons.daemon_alive(rec)
        frozen = process.is_frozen(rec.pid, rec.pid_start)
        present = rec.netns is None or netns.exists(rec.netns)
        node_ifs = netns.link_info(rec.netns) if rec.netns and present else {}
        pids = sorted(set(daemons.node_pids(rec)) - daemons.machinery_pids(state, rec)) if present else []
        return {
            "pid": rec.pid, "alive": alive, "frozen": frozen,
            "state": ("down" if state.status == "down" else "not-started") if rec.pid is None else
                     "frozen" if frozen else "running" if alive else "dead",
            "processes": len(pids), **process.usage(pids),
            "answers": (daemons.socket_answers(rec.socket, PROBE_TIMEOUT) if alive and not frozen else False)
                       if probe else None,
            "netns": rec.netns, "addresses": rec.addresses,
            "interfaces": {lk: {"node_if": i.node_if, "switch_if": i.switch_if,
                                "switch_port": switch_ports.get(i.switch_if),
                                **node_ifs.get(i.node_if, {"state": None})}
                           for lk, i in rec.interfaces.items()},
            "socket": rec.socket, "log": rec.log, "state_dir": rec.state_dir,
            "faults": state.faults.of_node(rec.name),
        }

    recs = list(state.nodes.values())
    result["nodes"] = dict(zip(state.nodes, netns.parallel(node_status, recs, workers=16), strict=True))
    return result
