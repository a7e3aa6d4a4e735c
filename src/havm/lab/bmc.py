"""Simulated BMCs for the lab: one openipmi ``ipmi_sim`` per node.

A real cluster fences through each host's BMC (IPMI over LAN, port 623, on a
management network of its own); the lab does the same with openipmi's
simulator, so Debian's ``fence_ipmilan`` runs unmodified against it.

- Namespace labs: a management network, bridge ``br-bmc`` in the switch
  namespace; node i reaches it through ``bmc0`` (10.215.0.i) and its BMC
  listens on 10.215.1.i port 623, inside the switch namespace: the BMC is
  the node's hardware, not one of its processes, so a power cut of the node
  leaves it running, and partitions of the cluster links do not cut it.
- Loopback labs: BMC i listens on 127.9.<lab octet>.i port 6230.

Power is the chassis control script ipmi_sim calls (``havm.lab.chassis``,
kept free of imports: it runs several times per fence): ``get power`` answers 1 while any process of the
node runs (daemon, agents, guests: a node whose havmd alone died is still
"on", so a fence still kills its VMs); ``set power 0`` is the lab's power cut
(``control.kill_node``: every process of the node, VMs included);
``set power 1`` starts the node's havmd again (``control.start_node``).

Faults for campaigns (``set_fault``): ``refuse`` (the BMC answers but power
commands fail), ``slow`` (each power command takes ``seconds`` more),
``hang`` (the simulator is frozen: no answer at all), ``none``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from havm.errors import HavmError, LabError, UsageError
from havm.lab import chassis, netns, process
from havm.lab.state import BmcRecord, LabState, NodeRecord

MGMT_NET = "10.215"
MGMT_PREFIX = 16
MGMT_BRIDGE = "br-bmc"
NODE_MGMT_IF = "bmc0"
NETNS_PORT = 623  # IPMI's port, as on real BMCs
LOOPBACK_NET = "127.9"
LOOPBACK_PORT = 6230  # unprivileged: loopback labs may run without root
USERNAME = "admin"
READY_TIMEOUT = 10.0  # seconds for a new BMC to answer
FAULTS = ("none", "refuse", "slow", "hang")

EMU_CMD = """\
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


def ipmi_sim_available() -> str | None:
    """None if BMCs can be simulated here, else what is missing."""
    missing = [t for t in ("ipmi_sim", "ipmitool") if shutil.which(t) is None]
    return f"{' and '.join(missing)} not installed (Debian packages openipmi, ipmitool)" if missing else None


def switch_port(node: str) -> str:
    return f"{node}-bmc"


def plan_bmcs(lab_dir: str, nodes: Sequence[NodeRecord], netns_mode: bool, lab_octet: int) -> dict[str, BmcRecord]:
    """Where each node's BMC listens, its credentials and files (pure, but for the password)."""
    password = secrets.token_hex(8)
    out = {}
    for rec in nodes:
        out[rec.name] = BmcRecord(
            address=f"{MGMT_NET}.1.{rec.index}" if netns_mode else f"{LOOPBACK_NET}.{lab_octet}.{rec.index}",
            port=NETNS_PORT if netns_mode else LOOPBACK_PORT, username=USERNAME, password=password,
            dir=os.path.join(lab_dir, "bmc", rec.name),
            node_address=f"{MGMT_NET}.0.{rec.index}" if netns_mode else None)
    return out


def network_commands(switch_netns: str, nodes: Sequence[NodeRecord], bmcs: dict[str, BmcRecord]
                     ) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """``ip -batch`` lines (root, switch, per node) of the management network."""
    root: list[str] = []
    # lo up: the readiness check asks each BMC from inside the switch namespace itself
    switch = ["link set lo up", f"link add {MGMT_BRIDGE} type bridge", f"link set {MGMT_BRIDGE} up"]
    per_node: dict[str, list[str]] = {}
    for rec in nodes:
        b = bmcs[rec.name]
        port = switch_port(rec.name)
        root.append(f"link add {NODE_MGMT_IF} netns {rec.netns} type veth peer name {port} netns {switch_netns}")
        switch += [f"addr add {b.address}/{MGMT_PREFIX} dev {MGMT_BRIDGE}",
                   f"link set {port} master {MGMT_BRIDGE}", f"link set {port} up"]
        per_node[rec.name] = [f"addr add {b.node_address}/{MGMT_PREFIX} dev {NODE_MGMT_IF}",
                              f"link set {NODE_MGMT_IF} up"]
    return root, switch, per_node


def lan_conf(name: str, b: BmcRecord, chassis: str) -> str:
    """ipmi_sim's configuration: IPMI 1.5 LAN (fence_ipmilan without lanplus), one admin user."""
    auths = "none md2 md5 straight"
    return (f'name "{name}"\n'
            "set_working_mc 0x20\n"
            "  startlan 1\n"
            f"    addr {b.address} {b.port}\n"
            "    priv_limit admin\n"
            + "".join(f"    allowed_auths_{lvl} {auths}\n" for lvl in ("callback", "user", "operator", "admin"))
            + "    guid a123456789abcdefa123456789abcdef\n"
            "  endlan\n"
            f'  chassis_control "{chassis}"\n'
            f'user 2 true "{b.username}" "{b.password}" admin 10 {auths}\n')


def write_files(name: str, b: BmcRecord, chassis_argv: Sequence[str]) -> tuple[str, str]:
    """lan.conf, emu.cmd and the chassis script in ``b.dir``; returns (lan.conf, emu.cmd)."""
    os.makedirs(os.path.join(b.dir, "state"), exist_ok=True)
    script = os.path.join(b.dir, "chassis")
    with open(script, "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\n# ipmi_sim's chassis control: '<script> get power' / '<script> set power 0|1'\n"
                f"exec {' '.join(_sh_quote(a) for a in chassis_argv)} \"$@\"\n")
    os.chmod(script, 0o755)
    conf, emu = os.path.join(b.dir, "lan.conf"), os.path.join(b.dir, "emu.cmd")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(lan_conf(name, b, script))
    with open(emu, "w", encoding="utf-8") as f:
        f.write(EMU_CMD)
    return conf, emu


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def start(name: str, b: BmcRecord, chassis_argv: Sequence[str], in_netns: str | None = None) -> None:
    """Start one ipmi_sim (recorded in ``b``) and wait until it answers over IPMI."""
    conf, emu = write_files(name, b, chassis_argv)
    log = os.path.join(b.dir, "ipmi_sim.log")
    argv = ["ipmi_sim", "-c", conf, "-f", emu, "-n", "-s", os.path.join(b.dir, "state")]
    b.pid, b.pid_start = process.spawn_detached(argv, log, prefix=netns.in_netns(in_netns, []), cwd=b.dir)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if not process.is_alive(b.pid, b.pid_start):
            raise LabError(f"the BMC of {name} (ipmi_sim) exited; {log}:\n{process.log_tail(log)}")
        if power_status_over_ipmi(b, in_netns) is not None:
            return
        if time.monotonic() >= deadline:
            raise LabError(f"the BMC of {name} does not answer on {b.address}:{b.port} within "
                           f"{READY_TIMEOUT:g}s; {log}:\n{process.log_tail(log)}")
        time.sleep(process.POLL)


def power_status_over_ipmi(b: BmcRecord, in_netns: str | None = None, timeout: float = 5.0) -> bool | None:
    """What the BMC says over IPMI (True = on), or None if it does not answer."""
    argv = ["ipmitool", "-I", "lan", "-H", b.address, "-p", str(b.port), "-U", b.username, "-P", b.password,
            "-N", "1", "-R", "1", "chassis", "power", "status"]
    try:
        out = subprocess.run(netns.in_netns(in_netns, argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    return "is on" in out.stdout


def chassis_argv(state: LabState, node: str) -> list[str]:
    """ipmi_sim's chassis control for ``node``: havm.lab.chassis run by path, without
    site or havm imports (it runs several times per fence)."""
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(chassis.__file__))))
    return [sys.executable, "-I", "-S", os.path.abspath(chassis.__file__), state.dir, node,
            state.bmcs[node].dir, src, sys.executable]


def start_all(state: LabState) -> None:
    """Start every node's BMC (in the switch namespace of a namespace lab)."""
    def one(rec: NodeRecord) -> None:
        start(f"{state.lab_id}-{rec.name}", state.bmcs[rec.name], chassis_argv(state, rec.name),
              state.switch_netns)

    netns.parallel(one, [r for r in state.nodes.values() if r.name in state.bmcs])


def stop_all(state: LabState) -> list[int]:
    """Kill every BMC of the lab (idempotent); returns the pids killed."""
    killed = []
    for b in state.bmcs.values():
        process.signal_pid(b.pid, signal.SIGCONT, b.pid_start)  # a 'hang' fault froze it
        if process.signal_pid(b.pid, signal.SIGKILL, b.pid_start):
            assert b.pid is not None
            killed.append(b.pid)
        b.pid = b.pid_start = None
    process.wait_gone(killed, 5.0)
    return killed


def alive(state: LabState) -> list[str]:
    return [n for n, b in state.bmcs.items() if process.is_alive(b.pid, b.pid_start)]


# -- the node's power, as its BMC sees it --

def node_powered(state: LabState, node: str) -> bool:
    """True while any process of the node runs (the lab's machinery aside)."""
    state.node(node)  # NotFound for an unknown node
    return chassis.node_powered(state.dir, node)


def power(lab_dir: str, node: str, on: bool) -> dict[str, Any]:
    """What the BMC's power button does: off = the lab's power cut (every process
    of the node), on = start the node's havmd again (without waiting for it)."""
    from havm.lab import control

    if on:
        return control.start_node(lab_dir, node, wait=False)
    return control.kill_node(lab_dir, node)


def set_fault(lab_dir: str, node: str, mode: str, seconds: float = 0.0) -> dict[str, Any]:
    """Make the BMC of ``node`` misbehave (``refuse``, ``slow``, ``hang``) or heal it (``none``)."""
    if mode not in FAULTS:
        raise UsageError(f"BMC fault {mode!r}: expected one of {', '.join(FAULTS)}")
    state = LabState.load(lab_dir)
    b = _bmc_of(state, node)
    with open(os.path.join(b.dir, chassis.FAULT_FILE), "w", encoding="utf-8") as f:
        json.dump({"mode": mode, "seconds": seconds}, f)
    sig = signal.SIGSTOP if mode == "hang" else signal.SIGCONT
    process.signal_pid(b.pid, sig, b.pid_start)
    return {"node": node, "bmc_fault": mode, "seconds": seconds, "at": time.time()}


def _bmc_of(state: LabState, node: str) -> BmcRecord:
    state.node(node)  # NotFound for an unknown node
    if node not in state.bmcs:
        raise LabError(f"the lab at {state.dir} has no BMCs (start it with 'havm lab up --fencing ipmi')")
    return state.bmcs[node]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m havm.lab.bmc", description="a lab node's power button")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("power")
    c.add_argument("--dir", required=True)
    c.add_argument("--node", required=True)
    c.add_argument("state", choices=("on", "off"))
    args = p.parse_args(argv)
    try:
        power(args.dir, args.node, args.state == "on")
    except HavmError as e:
        print(f"havm: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
