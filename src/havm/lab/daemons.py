"""The processes of lab nodes: start a node's havmd, list a node's processes,
wait until daemons answer on their sockets."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from havm.errors import LabError
from havm.lab import faults, netns, process
from havm.lab.state import LabState, NodeRecord

READY_POLL = 0.1  # seconds between readiness rounds
# Set in the environment of every daemon (inherited by what it starts): the node's dir.
MARKER = "HAVM_LAB_NODE"
HOLDER_READY = "havm-lab-holder-ready"
HOLDER_TIMEOUT = 10.0  # seconds


def daemon_alive(rec: NodeRecord) -> bool:
    return process.is_alive(rec.pid, rec.pid_start)


def holder_alive(rec: NodeRecord) -> bool:
    return process.is_alive(rec.holder_pid, rec.holder_start)


def start_holder(state: LabState, rec: NodeRecord) -> None:
    """Start the node's holder (namespace labs): a process sitting in the node's
    network namespace and in its own UTS and mount namespaces, with hostname =
    node name and a /sys that shows the node's interfaces (as ``ip netns exec``
    gives, but stable: every process of the node enters the same namespaces)."""
    assert rec.netns is not None
    log = os.path.join(rec.dir, "holder.log")
    # The holder's mount namespace starts as a copy of ours, /run/netns mounts
    # included: each would pin that network namespace (this lab's and any
    # other's) alive after 'ip netns delete'. Drop them all first.
    script = (f"(umount --recursive --lazy {netns.NETNS_DIR} 2>/dev/null || true) && "
              f"hostname {shlex.quote(rec.name)} && mount -t sysfs sysfs /sys && "
              f"echo {HOLDER_READY} && exec sleep infinity")
    argv = ["unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c", script]
    with open(log, "w"):
        pass
    rec.holder_pid, rec.holder_start = process.spawn_detached(
        argv, log, prefix=netns.in_netns(rec.netns, []), cwd=state.dir)
    deadline = time.monotonic() + HOLDER_TIMEOUT
    while HOLDER_READY not in process.log_tail(log):
        if not holder_alive(rec) or time.monotonic() >= deadline:
            process.signal_pid(rec.holder_pid, signal.SIGKILL, rec.holder_start)
            raise LabError(f"the namespace holder of {rec.name} did not start; {log}:\n{process.log_tail(log)}")
        time.sleep(process.POLL)


def node_prefix(state: LabState, rec: NodeRecord) -> list[str]:
    """What runs a command as one of the node's processes: inside its holder's
    namespaces (network, UTS, mount), or its network namespace alone if it has
    no holder, or nothing special on loopback labs."""
    if rec.netns and holder_alive(rec):
        return ["nsenter", f"--target={rec.holder_pid}", "--net", "--uts", "--mount", f"--wd={state.dir}", "--"]
    return netns.in_netns(rec.netns, [])


def machinery_pids(state: LabState, rec: NodeRecord) -> set[int]:
    """Lab machinery in the node's namespace (holder, packet delayers): the
    node's hardware and wire, not its processes; node faults spare them."""
    pids = faults.helper_pids(state, rec.name)
    if rec.holder_pid and holder_alive(rec):
        pids.add(rec.holder_pid)
    return pids


def spawn_daemon(state: LabState, rec: NodeRecord) -> None:
    """Start ``rec``'s daemon inside its namespace and record its pid in ``rec``.

    The caller saves the state right after, so a crash never loses a pid.
    """
    os.makedirs(rec.state_dir, exist_ok=True)
    if os.path.exists(rec.socket):
        os.unlink(rec.socket)  # stale: no daemon of ours is alive (checked by callers)
    # imported here: the power switch (havm.lab.power) must load fast, without pydantic
    from havm.lab.plan import daemon_argv

    argv = daemon_argv(state, rec)
    full_env = dict(os.environ)
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env[MARKER] = rec.dir
    full_env.update(state.daemon_env)
    with open(rec.log, "a", encoding="utf-8") as log:
        log.write(f"=== havm lab: starting {rec.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}: "
                  f"{' '.join(argv)}\n")
    if rec.netns and not holder_alive(rec):
        start_holder(state, rec)
    rec.pid, rec.pid_start = process.spawn_detached(
        argv, rec.log, prefix=node_prefix(state, rec), cwd=state.dir, env=full_env)
    if rec.netns is None:
        rec.groups.append(rec.pid)  # its own session and process group (setsid)


def node_pids(rec: NodeRecord, known: Mapping[str, int] | None = None) -> list[int]:
    """Every live process of the node: all of its namespace (``known``: the
    namespace inodes recorded in lab.json, for callers inside a node's mount
    namespace), or (loopback) every process carrying the node's marker.

    Loopback: the daemon's process groups are not enough. Agent actions run in
    sessions of their own (havmd's fork server setsid()s each child) and QEMU
    daemonizes into yet another; all of them inherit the environment, so the
    marker is what identifies them (a power cut must take them all).
    """
    if rec.netns:
        return [p for p in netns.netns_pids(rec.netns, known) if p != os.getpid()]
    marker = f"{MARKER}={rec.dir}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        if marker in process.environ(pid) and process.is_alive(pid):
            found.append(pid)
    return found


def socket_answers(path: str, timeout: float = 0.5) -> bool:
    """True if a daemon answers an HTTP request on the unix socket ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"GET /v1/status HTTP/1.0\r\nHost: lab\r\n\r\n")
            return s.recv(5) == b"HTTP/"
    except OSError:
        return False


@dataclass(frozen=True)
class Readiness:
    ready: list[str]
    failed: dict[str, str]  # node -> why (with the log's tail)


def wait_ready(state: LabState, names: Iterable[str], timeout: float) -> Readiness:
    """Wait (at most ``timeout``) until every named node's daemon answers.

    A daemon that exits is reported at once, not after the timeout.
    """
    pending = list(names)
    ready: list[str] = []
    failed: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for name in list(pending):
            rec = state.nodes[name]
            if not daemon_alive(rec):
                failed[name] = f"havmd exited; last lines of {rec.log}:\n{process.log_tail(rec.log)}"
                pending.remove(name)
            elif socket_answers(rec.socket):
                ready.append(name)
                pending.remove(name)
        if not pending:
            break
        if time.monotonic() >= deadline:
            for name in pending:
                rec = state.nodes[name]
                failed[name] = (f"no answer on {rec.socket} within {timeout:g}s; last lines of {rec.log}:\n"
                                f"{process.log_tail(rec.log)}")
            break
        time.sleep(READY_POLL)
    order = list(state.nodes)
    return Readiness(ready=sorted(ready, key=order.index), failed=failed)


def describe_failures(failed: dict[str, str]) -> str:
    return "\n".join(f"{name}: {why}" for name, why in failed.items())
