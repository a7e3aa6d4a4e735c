"""The faults of the campaign: each an ``inject`` and an ``undo`` function over the lab.

Injecting resolves the fault's target (a node, or a role: ``vm-host:VM`` is
where the observer last saw VM running, ``controller`` what the nodes say),
acts through ``havm.lab.control`` (the same functions as ``havm lab kill``,
``freeze``, ``partition``...), and returns an ``Injected`` that its undo
takes back. Undo brings the fault's own part back (thaw, heal, start the
daemon it killed); the campaign then powers on every node that is still off
(a fenced node reboots), so undo never has to guess what fencing did.

Fence device faults depend on the lab's fencing: with the power switch
(``lab``) they go through ``fencehook``; with ``ipmi`` through the simulated
BMC's own faults (``havm.lab.bmc.set_fault``: refuse, hang, slow); with
``watchdog`` there is no device to break, so those kinds are not scheduled.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from havm.commands.cluster import ApplyConfig, GetConfig, GetStatus
from havm.commands.resource import ChangeResource
from havm.daemon.client import Client
from havm.errors import Conflict, HavmError, NoQuorum, NotReachable
from havm.lab import control, daemons
from havm.lab.chaos import fencehook
from havm.lab.chaos.invariants import ConfigChange
from havm.lab.chaos.observer import Observer
from havm.lab.chaos.schedule import MIGRATE_KINDS, FaultSpec
from havm.lab.state import LabState

CHANGE_MARK = "# chaos change "
CLIENT_TIMEOUT = 8.0  # seconds a daemon gets to answer the campaign
SETTLE = 1.0  # seconds, beyond deadtime, for membership to settle before a change in a partition


@dataclass
class Lab:
    """What faults act on: the lab dir, its shape, the observer, the fencing mode."""

    dir: str
    nodes: list[str]
    vms: list[str]
    links: list[str]
    fencing: str  # lab | ipmi | watchdog
    deadtime: float
    observer: Observer
    changes: list[ConfigChange] = field(default_factory=list)
    change_seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    off_since: dict[str, float] = field(default_factory=dict)  # node -> monotonic time first seen off

    def next_change_id(self, node: str) -> str:
        self.change_seq += 1
        return f"c{self.change_seq:04d}-{node}"

    def state(self) -> LabState:
        return LabState.load(self.dir)

    def client(self, node: str, timeout: float = CLIENT_TIMEOUT) -> Client:
        return Client(socket_path=self.state().node(node).socket, timeout=timeout)

    def status(self, node: str, timeout: float = CLIENT_TIMEOUT) -> dict[str, Any] | None:
        try:
            st: dict[str, Any] = self.client(node, timeout).run(GetStatus(), timeout=timeout)
            return st
        except HavmError:
            return None


@dataclass
class Injected:
    spec: FaultSpec
    node: str | None  # the resolved target node, if any
    at: float
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        target = self.spec.target
        if self.node and self.node != target:
            target = f"{target}={self.node}" if target else self.node
        extra = " ".join(f"{k}={v}" for k, v in sorted(self.spec.params.items()))
        if "migrate_to" in self.info:  # migrate-kill/-freeze: where the migration went, or why not asked
            extra += f" to={self.info['migrate_to']}"
            if "migrate_error" in self.info:
                extra += f" (not asked: {self.info['migrate_error']})"
        return " ".join(p for p in (self.spec.kind, target, extra) if p)


def resolve(lab: Lab, target: str) -> str | None:
    """The node a target names now (None for cluster-wide faults)."""
    if target in lab.nodes:
        return target
    if target.startswith("vm-host:"):
        vm = target.split(":", 1)[1]
        latest = lab.observer.latest
        running = latest.running_nodes(vm) if latest is not None else []
        return running[0] if running else lab.nodes[0]
    if target == "controller":
        for n in lab.nodes:
            st = lab.status(n, timeout=3.0)
            if st and st.get("controller") in lab.nodes:
                return str(st["controller"])
        return lab.nodes[0]
    return None


# --------------------------------------------------------------- node faults

def _power_on(lab: Lab, node: str) -> None:
    if lab.fencing == "ipmi":
        return  # the campaign powers it on once off for a while (campaign.IPMI_POWER_ON_DELAY)
    rec = lab.state().node(node)
    if not daemons.daemon_alive(rec):
        control.start_node(lab.dir, node, wait=False)


def _thaw(lab: Lab, node: str, daemon_only: bool) -> None:
    if daemons.daemon_alive(lab.state().node(node)):
        control.thaw_node(lab.dir, node, daemon_only=daemon_only)
    else:  # fenced meanwhile: what is left of it (nothing, with a power switch) must not stay stopped
        control.thaw_node(lab.dir, node)
        _power_on(lab, node)


def inject(lab: Lab, spec: FaultSpec) -> Injected:
    node = resolve(lab, spec.target)
    p = spec.params
    at = time.time()
    info: dict[str, Any] = {}
    k = spec.kind
    if k == "kill":
        at = control.kill_node(lab.dir, _need(node))["at"]
    elif k == "freeze":
        at = control.freeze_node(lab.dir, _need(node))["at"]
    elif k in ("freeze-daemon", "controller-kill") or k in ("fence-fail", "fence-slow"):
        if k in ("fence-fail", "fence-slow"):
            info["device"] = _break_fence_device(lab, _need(node), spec)
        if k == "controller-kill":
            at = control.kill_daemon(lab.dir, _need(node))["at"]
        else:
            at = control.freeze_node(lab.dir, _need(node), daemon_only=True)["at"]
    elif k in ("partition", "config-partition"):
        groups = [list(map(str, g)) for g in p["groups"]]  # type: ignore[attr-defined]
        at = control.partition(lab.dir, [",".join(g) for g in groups])["at"]
        if k == "config-partition":
            # through each side at once (before anyone noticed the split: a minority that
            # still believes it has quorum), then again once membership has settled
            info["changes"] = [c.to_json() for c in attempt_changes(lab, [g[0] for g in groups])]
            time.sleep(lab.deadtime + SETTLE)
            info["changes"] += [c.to_json() for c in attempt_changes(lab, [g[-1] for g in groups])]
    elif k == "block":
        at = control.block(lab.dir, str(p["src"]), str(p["dst"]))["at"]
    elif k == "loss":
        at = control.loss(lab.dir, _need(node), float(str(p["percent"])),
                          delay_ms=float(str(p.get("delay_ms", 0))))["at"]
    elif k == "delay":
        at = control.loss(lab.dir, _need(node), 0.0, delay_ms=float(str(p["delay_ms"])))["at"]
    elif k == "link-down":
        for link in lab.links:
            at = control.link_down(lab.dir, _need(node), link)["at"]
    elif k == "vm-kill":
        info["killed"] = _kill_vm(lab, spec.target.split(":", 1)[1], node)
    elif k == "restart-all":
        at = time.time()
        for n in lab.nodes:
            control.kill_node(lab.dir, n)
    elif k in MIGRATE_KINDS:
        info.update(_ask_migration(lab, str(p["vm"]), _need(node)))
        time.sleep(float(str(p["delay"])))
        cut = control.kill_node if k == "migrate-kill" else control.freeze_node
        at = cut(lab.dir, _need(node))["at"]
    else:
        raise ValueError(f"unknown fault kind {k!r}")
    return Injected(spec, node, at, info)


def undo(lab: Lab, inj: Injected) -> None:
    k = inj.spec.kind
    node = inj.node
    if k in ("kill", "controller-kill"):
        _power_on(lab, _need(node))
    elif k == "freeze":
        _thaw(lab, _need(node), daemon_only=False)
    elif k in ("freeze-daemon", "fence-fail", "fence-slow"):
        if k != "freeze-daemon":
            _repair_fence_device(lab, _need(node))
        _thaw(lab, _need(node), daemon_only=True)
    elif k in ("partition", "config-partition"):
        control.heal(lab.dir)
    elif k == "block":
        control.unblock(lab.dir, str(inj.spec.params["src"]), str(inj.spec.params["dst"]))
    elif k in ("loss", "delay"):
        control.loss(lab.dir, _need(node), 0.0)
    elif k == "link-down":
        for link in lab.links:
            control.link_up(lab.dir, _need(node), link)
    elif k == "restart-all":
        for n in lab.nodes:
            _power_on(lab, n)
    elif k in MIGRATE_KINDS:
        if k == "migrate-kill":
            _power_on(lab, _need(node))
        else:
            _thaw(lab, _need(node), daemon_only=False)
        _clear_preference(lab, str(inj.spec.params["vm"]), _need(node))


def _need(node: str | None) -> str:
    if node is None:
        raise ValueError("this fault needs a target node")
    return node


def _kill_vm(lab: Lab, vm: str, node: str | None) -> list[int]:
    latest = lab.observer.latest
    pids = [c.pid for c in (latest.copies if latest else ()) if c.vm == vm and c.status == "running"
            and (node is None or c.node == node)]
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed


def _ask_migration(lab: Lab, vm: str, controller: str) -> dict[str, Any]:
    """Ask (through the controller) a live migration of ``vm`` away from where the observer
    last saw it, to a node other than the controller where there is one (so that the power
    cut that follows hits the node driving the phases, not their source or target)."""
    latest = lab.observer.latest
    hosts = latest.running_nodes(vm) if latest is not None else []
    others = [n for n in lab.nodes if n not in hosts]
    to = next((n for n in others if n != controller), others[0] if others else lab.nodes[0])
    try:
        lab.client(controller).run(ChangeResource(op="migrate", resource=vm, node=to, by="chaos"),
                                   timeout=CLIENT_TIMEOUT)
    except HavmError as e:
        return {"migrate_to": to, "migrate_error": f"{e.code}: {e}"}
    return {"migrate_to": to}


def _clear_preference(lab: Lab, vm: str, killed: str) -> None:
    """Remove the preference the migration left (through a node that was not cut); an
    error leaves it (a VM that prefers a node is no fault), the next migrate-* fault replaces it."""
    for n in [x for x in lab.nodes if x != killed]:
        try:
            lab.client(n).run(ChangeResource(op="clear", resource=vm, by="chaos"), timeout=CLIENT_TIMEOUT)
            return
        except HavmError:
            continue


# ---------------------------------------------------------- fence device faults

def _break_fence_device(lab: Lab, node: str, spec: FaultSpec) -> str:
    """Make fencing ``node`` fail (or slow) until ``_repair_fence_device``."""
    how = str(spec.params.get("how", "refuse"))
    delay = float(str(spec.params.get("delay", 0)))
    if lab.fencing == "lab":
        if spec.kind == "fence-fail":
            fencehook.set_override(lab.dir, "fail", nodes=[node])
        else:
            fencehook.set_override(lab.dir, "slow", delay=delay, nodes=[node])
        return f"lab power switch: {spec.kind[6:]}"
    if lab.fencing == "ipmi":
        from havm.lab import bmc

        if spec.kind == "fence-fail":
            bmc.set_fault(lab.dir, node, how)
        else:
            bmc.set_fault(lab.dir, node, "slow", delay)
        return f"BMC of {node}: {how if spec.kind == 'fence-fail' else f'slow {delay:g}s'}"
    raise HavmError(f"fence device faults need a fence device; fencing is {lab.fencing}")


def _repair_fence_device(lab: Lab, node: str) -> None:
    if lab.fencing == "lab":
        fencehook.set_override(lab.dir, None)
    elif lab.fencing == "ipmi":
        from havm.lab import bmc

        bmc.set_fault(lab.dir, node, "none")


# -------------------------------------------------------------- config changes

def attempt_changes(lab: Lab, nodes: list[str]) -> list[ConfigChange]:
    """``attempt_change`` through each of ``nodes`` at the same time."""
    ids = [lab.next_change_id(n) for n in nodes]
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        return list(pool.map(lambda pair: attempt_change(lab, *pair), zip(nodes, ids, strict=True)))


def attempt_change(lab: Lab, node: str, change_id: str) -> ConfigChange:
    """Append a marker comment to the configuration through ``node`` (compare-and-swap on
    the version read from it) and record whether havm acknowledged it as committed."""
    at = time.time()
    try:
        cli = lab.client(node)
        cur = cli.run(GetConfig(), timeout=CLIENT_TIMEOUT)
        text = str(cur["text"]).rstrip("\n") + f"\n{CHANGE_MARK}{change_id}\n"
        cli.run(ApplyConfig(text=text, base_epoch=[int(cur["admin_epoch"]), int(cur["epoch"])],
                            by="chaos", comment=f"chaos change {change_id}"), timeout=CLIENT_TIMEOUT)
        change = ConfigChange(change_id, node, at, "committed")
    except (NoQuorum, Conflict) as e:
        # "stored on n2 only (...): not committed on a majority; it will spread": kept by a
        # minority, it may yet take effect, so it is not a refusal
        kept = " is stored on " in str(e)
        change = ConfigChange(change_id, node, at, "unknown" if kept else "refused", f"{e.code}: {e}")
    except NotReachable as e:
        # our socket refused (the daemon is down): nothing was sent, certainly not in; the
        # same error in a daemon's answer (peers unreachable) leaves it open
        sent = not str(e).startswith("no havmd answers")
        change = ConfigChange(change_id, node, at, "unknown" if sent else "unreachable", f"{e.code}: {e}")
    except HavmError as e:  # no answer, timeout, lost controller: it may or may not be in
        change = ConfigChange(change_id, node, at, "unknown", f"{e.code}: {e}")
    with lab.lock:
        lab.changes.append(change)
    lab.observer.note("config-change", **change.to_json())
    return change


def markers(text: str) -> frozenset[str]:
    """The change ids present in a configuration text."""
    return frozenset(line[len(CHANGE_MARK):].strip() for line in text.splitlines() if line.startswith(CHANGE_MARK))
