"""Node control and fault commands of a running lab.

Each ``havm lab`` subcommand is one function here, called alike by the CLI,
the tests and fault campaigns. Every function takes the lab dir first,
returns a JSON-ready dict describing what it did, and raises ``LabError``,
``NotFound`` (unknown node), ``UsageError`` or ``Timeout``. Fault results
carry ``at``, the wall-clock time (UNIX seconds) the fault took effect: just
before the first signal for process faults, once the rules are in place on
every node for network faults; detection latencies are measured from it.

Process faults:
- ``kill_node``: power cut. SIGKILL to every process of the node: with
  namespaces every process in its network namespace (except the lab's own
  machinery there: the namespace holder and packet delayers, the node's
  hardware and wire), else the daemon's process groups.
- ``kill_daemon``: only havmd dies; what it started keeps running (the case
  fencing exists for).
- ``stop_node`` (SIGTERM, wait, SIGKILL after ``timeout``), ``start_node``.
- ``freeze_node``/``thaw_node``: SIGSTOP/SIGCONT to every process of the node
  (a hung host), or to havmd alone with ``daemon_only``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from havm.errors import LabError, Timeout, UsageError
from havm.lab import daemons, faults, netns, process
from havm.lab.state import LabState, NodeRecord, locked


def _load(lab_dir: str) -> LabState:
    state = LabState.load(lab_dir)
    if state.status != "up":
        raise LabError(f"the lab at {state.dir} is {state.status}; start it with 'havm lab up'")
    return state


def _node_ref(rec: NodeRecord) -> dict[str, Any]:
    return {"node": rec.name, "pid": rec.pid}


def start_node(lab_dir: str, node: str, wait: bool = True, timeout: float = 30.0) -> dict[str, Any]:
    """Start the node's havmd again (same state dir). Already running: nothing to do."""
    with locked(lab_dir):
        state = _load(lab_dir)
        rec = state.node(node)
        if daemons.daemon_alive(rec):
            return {**_node_ref(rec), "started": False, "reason": "already running"}
        if rec.netns and not netns.exists(rec.netns):
            raise LabError(f"namespace {rec.netns} of {node} is gone; recreate the lab")
        daemons.spawn_daemon(state, rec)
        state.save()
    result = {**_node_ref(rec), "started": True}
    if wait:
        readiness = daemons.wait_ready(state, [node], timeout)
        if readiness.failed:
            raise LabError(daemons.describe_failures(readiness.failed))
        result["answers"] = True
    return result


def wait_nodes(lab_dir: str, nodes: Sequence[str] = (), timeout: float = 60.0) -> dict[str, Any]:
    """Wait until the daemons of ``nodes`` (default: all) answer on their sockets.

    A dead daemon fails at once; every failure is named, with its log's tail.
    """
    state = _load(lab_dir)
    names = [state.node(n).name for n in nodes] or list(state.nodes)
    readiness = daemons.wait_ready(state, names, timeout)
    if readiness.failed:
        raise LabError(f"{len(readiness.failed)} of {len(names)} nodes do not answer:\n"
                       + daemons.describe_failures(readiness.failed))
    return {"ready": readiness.ready, "at": time.time()}


def stop_node(lab_dir: str, node: str, timeout: float = 10.0) -> dict[str, Any]:
    """SIGTERM havmd and wait for it to exit; SIGKILL it after ``timeout``."""
    state = _load(lab_dir)
    rec = state.node(node)
    if not daemons.daemon_alive(rec):
        return {**_node_ref(rec), "stopped": False, "reason": "not running"}
    assert rec.pid is not None
    process.signal_pid(rec.pid, signal.SIGTERM, rec.pid_start)
    process.signal_pid(rec.pid, signal.SIGCONT, rec.pid_start)  # a frozen daemon cannot exit
    forced = False
    if process.wait_gone([rec.pid], timeout):
        forced = process.signal_pid(rec.pid, signal.SIGKILL, rec.pid_start)
        if process.wait_gone([rec.pid], 5.0):
            raise Timeout(f"havmd of {node} (pid {rec.pid}) survives SIGKILL")
    return {**_node_ref(rec), "stopped": True, "forced": forced}


def kill_node(lab_dir: str, node: str) -> dict[str, Any]:
    """Power cut: SIGKILL every process of the node, the daemon and all it started."""
    state = _load(lab_dir)
    rec = state.node(node)
    wire = daemons.machinery_pids(state, rec)
    at = time.time()
    known = state.netns_inodes
    killed = process.kill_all(lambda: [p for p in daemons.node_pids(rec, known) if p not in wire])
    # what a host keeps in /run does not survive a power cut: neither does the node's
    # run dir (a dummy's state file, QEMU pidfiles), so after power-on nothing "still runs"
    shutil.rmtree(os.path.join(rec.state_dir, "run"), ignore_errors=True)
    return {**_node_ref(rec), "killed": killed, "at": at}


def kill_daemon(lab_dir: str, node: str) -> dict[str, Any]:
    """SIGKILL havmd only; the processes it started keep running."""
    state = _load(lab_dir)
    rec = state.node(node)
    at = time.time()
    sent = process.signal_pid(rec.pid, signal.SIGKILL, rec.pid_start)
    if sent and rec.pid and process.wait_gone([rec.pid], 5.0):
        raise Timeout(f"havmd of {node} (pid {rec.pid}) survives SIGKILL")
    return {**_node_ref(rec), "killed": [rec.pid] if sent else [], "at": at}


def _signal_node(lab_dir: str, node: str, sig: int, daemon_only: bool) -> list[int]:
    state = _load(lab_dir)
    rec = state.node(node)
    if daemon_only:
        sent = [rec.pid] if rec.pid and process.signal_pid(rec.pid, sig, rec.pid_start) else []
    else:
        sent = []
        wire = daemons.machinery_pids(state, rec)
        # twice: a process forked while we were signalling is caught the second time
        for _ in range(2):
            pids = [p for p in daemons.node_pids(rec, state.netns_inodes) if p not in sent and p not in wire]
            sent += process.signal_many(pids, sig)
    # return once the signal has taken effect, not merely been sent
    if laggards := process.wait_stopped(sent, stopped=sig == signal.SIGSTOP):
        raise Timeout(f"processes {laggards} of {node} did not {'stop' if sig == signal.SIGSTOP else 'continue'}")
    return sent


def freeze_node(lab_dir: str, node: str, daemon_only: bool = False) -> dict[str, Any]:
    """SIGSTOP every process of the node (or only havmd)."""
    at = time.time()
    return {"node": node, "frozen": _signal_node(lab_dir, node, signal.SIGSTOP, daemon_only), "at": at}


def thaw_node(lab_dir: str, node: str, daemon_only: bool = False) -> dict[str, Any]:
    """SIGCONT every process of the node (or only havmd)."""
    at = time.time()
    return {"node": node, "thawed": _signal_node(lab_dir, node, signal.SIGCONT, daemon_only), "at": at}


def partition(lab_dir: str, groups: Sequence[str] | Sequence[Sequence[str]]) -> dict[str, Any]:
    """Split the lab: nodes talk only within their group (on every link).

    ``groups`` are either strings ``"n1,n2"`` or lists of names; nodes named
    in no group form one more group. Replaces any previous partition.
    """
    with locked(lab_dir):
        state = _load(lab_dir)
        specs = [g if isinstance(g, str) else ",".join(g) for g in groups]
        parsed = faults.parse_groups(specs, list(state.nodes))
        faults.set_partition(state, parsed)
        state.save()
    return {"partition": parsed, "at": time.time()}


def heal(lab_dir: str) -> dict[str, Any]:
    """Remove all partitions, loss and link-downs."""
    with locked(lab_dir):
        state = _load(lab_dir)
        faults.heal(state)
        state.save()
    return {"healed": True, "at": time.time()}


def block(lab_dir: str, src: str, dst: str, link: str | None = None) -> dict[str, Any]:
    """One-way cut: drop what ``src`` sends to ``dst`` (on ``link``, or every link)."""
    return _set_block(lab_dir, src, dst, link, True)


def unblock(lab_dir: str, src: str, dst: str, link: str | None = None) -> dict[str, Any]:
    """Undo ``block`` with the same arguments."""
    return _set_block(lab_dir, src, dst, link, False)


def _set_block(lab_dir: str, src: str, dst: str, link: str | None, blocked: bool) -> dict[str, Any]:
    with locked(lab_dir):
        state = _load(lab_dir)
        faults.set_block(state, src, dst, link, blocked)
        state.save()
        return {"blocks": state.faults.blocks, "at": time.time()}


def _set_link(lab_dir: str, node: str, link: str, up: bool) -> dict[str, Any]:
    with locked(lab_dir):
        state = _load(lab_dir)
        faults.set_link(state, node, link, up)
        state.save()
        return {"node": node, "link": link, "up": up, "links_down": state.faults.links_down.get(node, []),
                "at": time.time()}


def link_down(lab_dir: str, node: str, link: str) -> dict[str, Any]:
    """Pull the node's cable on ``link`` (its port on the link's bridge goes down)."""
    return _set_link(lab_dir, node, link, False)


def link_up(lab_dir: str, node: str, link: str) -> dict[str, Any]:
    return _set_link(lab_dir, node, link, True)


def loss(lab_dir: str, node: str, percent: float, link: str | None = None,
         delay_ms: float = 0.0) -> dict[str, Any]:
    """Drop ``percent`` % of what ``node`` sends (``node`` may be ``all``); 0 removes it."""
    with locked(lab_dir):
        state = _load(lab_dir)
        names = list(state.nodes) if node == "all" else [state.node(node).name]
        try:
            applied = faults.set_loss(state, names, percent, link, delay_ms)
        finally:
            state.save()  # even half-applied: what was applied (delayers too) is recorded
    return {"loss": applied, "at": time.time()}


def exec_argv(lab_dir: str, node: str, argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped to run inside ``node``'s network namespace."""
    if not argv:
        raise UsageError("no command given (havm lab exec NODE -- CMD ...)")
    state = LabState.load(lab_dir)
    rec = state.node(node)
    if rec.netns and not netns.exists(rec.netns):
        raise LabError(f"namespace {rec.netns} of {node} does not exist (is the lab up?)")
    return daemons.node_prefix(state, rec) + list(argv)


def run_in(lab_dir: str, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` inside ``node``'s namespace (kwargs go to subprocess.run)."""
    return subprocess.run(exec_argv(lab_dir, node, argv), **kwargs)
