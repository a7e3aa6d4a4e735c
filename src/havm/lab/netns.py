"""Network namespaces, veth pairs, bridges, iptables and tc, through their tools.

Thin wrappers over ``ip``, ``iptables-restore`` and ``tc`` run as subprocesses:
every failure raises ``LabError`` naming the command, its exit status and
what the tool said. Nothing here decides anything; ``lab.py`` and
``faults.py`` choose what to create, these functions create it.

Everything a lab creates lives inside its own namespaces: veth pairs are
created directly in the target namespaces (``ip link add NAME netns A type
veth peer name PEER netns B``), so the root namespace never holds a lab
interface and deleting the namespaces removes every interface and rule.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from havm.errors import LabError

NETNS_DIR = "/run/netns"
TOOL_TIMEOUT = 30.0  # seconds; a tool that hangs this long is broken
PARALLEL = 8  # tools run at once when a command touches every node
T = TypeVar("T")
R = TypeVar("R")


def parallel(fn: Callable[[T], R], items: Iterable[T], workers: int = PARALLEL) -> list[R]:
    """``fn`` over ``items`` in threads (they mostly wait on tools); results in order.

    Every item is tried; the errors of all failures are raised together.
    """
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(fn, i) for i in items]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        if len(errors) == 1:
            raise errors[0]  # type: ignore[misc]
        raise LabError("; ".join(str(e) for e in errors))
    return [f.result() for f in futures]


def run(argv: Sequence[str], input: str | None = None, check: bool = True,
        timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a tool; raise LabError (with the command and its stderr) if it fails."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: command not found (install iproute2 / iptables)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)}: no answer within {timeout:g}s") from None
    if check and proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip()
        raise LabError(f"{' '.join(argv)} failed (exit {proc.returncode}): {said}")
    return proc


def available() -> str | None:
    """None if network namespaces can be used here, else the reason why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nsenter", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed so that it runs inside ``netns`` (network namespace only:
    the process keeps the host's filesystem view, so lab paths stay valid)."""
    if netns is None:
        return list(argv)
    return ["nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", "--", *argv]


def list_netns() -> list[str]:
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def exists(netns: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, netns))


def batch(commands: Sequence[str], netns: str | None = None) -> None:
    """Run ``ip`` commands in one process (``ip -batch``); the error names the failing line."""
    if not commands:
        return
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    proc = run(argv, input="\n".join(commands) + "\n", check=False)
    if proc.returncode != 0:
        said = proc.stderr.strip()
        failing = ""
        for line in said.splitlines():
            # ip says "Command failed -:N"
            if "Command failed -:" in line:
                try:
                    n = int(line.rsplit(":", 1)[1])
                    failing = f" at 'ip {commands[n - 1]}'"
                except (ValueError, IndexError):
                    pass
        where = f" in {netns}" if netns else ""
        raise LabError(f"ip -batch{where} failed{failing}: {said}")


def add_netns(names: Sequence[str]) -> None:
    batch([f"netns add {n}" for n in names])


def disable_ipv6(netns: str) -> None:
    """Turn IPv6 off in ``netns`` for interfaces created from now on (and existing ones)."""
    run(in_netns(netns, ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                         "net.ipv6.conf.default.disable_ipv6=1"]))


def delete_netns_many(names: Sequence[str]) -> list[str]:
    """Delete the namespaces that exist among ``names`` (one ``ip`` process); return those deleted."""
    present = [n for n in names if exists(n)]
    batch([f"netns delete {n}" for n in present])
    return present


def delete_netns(name: str) -> bool:
    """Delete a namespace by name; False if it did not exist (idempotent)."""
    if not exists(name):
        return False
    run(["ip", "netns", "delete", name])
    return True


def _nsfs_dev() -> int | None:
    try:
        return os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return None


def netns_inode(name: str) -> int | None:
    """The inode of namespace ``name`` (as in /proc/PID/ns/net), or None if
    /run/netns/NAME is not a namespace here.

    Inside a lab node's own mount namespace /run/netns is not mounted: the
    file exists but is an empty mount point, not the namespace; it must not
    be taken for one (a power switch run from a node would kill nothing).
    """
    try:
        st = os.stat(os.path.join(NETNS_DIR, name))
    except OSError:
        return None
    return st.st_ino if st.st_dev == _nsfs_dev() else None


def pids_by_netns(names: Iterable[str], known: Mapping[str, int] | None = None) -> dict[str, list[int]]:
    """Pids of every process in each named namespace (as ``ip netns pids``, one /proc scan).

    ``known`` maps names to the inodes recorded when the namespaces were
    created; they are used where /run/netns does not show the namespace (from
    inside a node's mount namespace).
    """
    by_inode: dict[int, str] = {}
    result: dict[str, list[int]] = {}
    nsfs = _nsfs_dev()
    for name in names:
        result[name] = []
        try:
            st = os.stat(os.path.join(NETNS_DIR, name))
        except OSError:
            continue  # no such namespace (a recorded inode may belong to another one by now)
        # the name exists but is not mounted here: a node's own mount namespace
        inode = st.st_ino if st.st_dev == nsfs else (known or {}).get(name)
        if inode is not None:
            by_inode[inode] = name
    if not by_inode:
        return result
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            link = os.readlink(f"/proc/{entry}/ns/net")  # "net:[4026532281]"
        except OSError:
            continue  # exited meanwhile, or a kernel thread
        owner = by_inode.get(int(link[5:-1])) if link.startswith("net:[") else None
        if owner is not None:
            result[owner].append(int(entry))
    return result


def netns_pids(netns: str, known: Mapping[str, int] | None = None) -> list[int]:
    """Pids of every process whose network namespace is ``netns``."""
    return pids_by_netns([netns], known)[netns]


def pid_netns_inode(pid: int) -> int | None:
    """The inode of ``pid``'s network namespace, or None if it is gone."""
    try:
        link = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return int(link[5:-1]) if link.startswith("net:[") else None


def set_link(netns: str, ifname: str, up: bool) -> None:
    run(["ip", "-n", netns, "link", "set", "dev", ifname, "up" if up else "down"])


def link_info(netns: str) -> dict[str, dict[str, Any]]:
    """Interface name -> {state, qdisc, rx_bytes, tx_bytes, rx_packets, tx_packets, rx_dropped,
    tx_dropped} in ``netns``; state is the operational state (UP, DOWN, LOWERLAYERDOWN, ...)."""
    out = run(["ip", "-n", netns, "-j", "-s", "link"]).stdout
    info: dict[str, dict[str, Any]] = {}
    for itf in json.loads(out or "[]"):
        stats = itf.get("stats64", {})
        rx, tx = stats.get("rx", {}), stats.get("tx", {})
        info[itf["ifname"]] = {
            "state": itf.get("operstate"), "qdisc": itf.get("qdisc"),
            "rx_bytes": rx.get("bytes"), "tx_bytes": tx.get("bytes"),
            "rx_packets": rx.get("packets"), "tx_packets": tx.get("packets"),
            "rx_dropped": rx.get("dropped"), "tx_dropped": tx.get("dropped"),
        }
    return info


def link_states(netns: str) -> dict[str, str]:
    """Interface name -> operational state (UP, DOWN, LOWERLAYERDOWN, ...) in ``netns``."""
    return {name: i["state"] for name, i in link_info(netns).items()}


def wait_oper_up(netns: str, ifnames: Sequence[str], timeout: float = 5.0) -> None:
    """Wait until every interface is operationally UP again.

    After a carrier comes back the kernel needs up to a second (linkwatch)
    before the interface sends again; a 'link-up' returns once it does.
    """
    deadline = time.monotonic() + timeout
    while True:
        states = link_states(netns)
        late = [i for i in ifnames if states.get(i) != "UP"]
        if not late:
            return
        if time.monotonic() >= deadline:
            raise LabError(f"interfaces {late} in {netns} still not UP after {timeout:g}s: "
                           + ", ".join(f"{i}={states.get(i)}" for i in late))
        time.sleep(0.02)


def iptables_restore(netns: str, rules: str) -> None:
    """Load ``rules`` (iptables-restore format) without flushing other chains."""
    run(in_netns(netns, ["iptables-restore", "--noflush"]), input=rules)


def iptables_save(netns: str) -> str:
    return run(in_netns(netns, ["iptables-save"])).stdout


def netem_available(netns: str) -> bool:
    """Whether this kernel has the netem qdisc (probed on the loopback of a lab
    namespace, which no fault ever touches; left as it was)."""
    proc = run(in_netns(netns, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "0%"]),
               check=False)
    if proc.returncode != 0:
        return False
    run(in_netns(netns, ["tc", "qdisc", "del", "dev", "lo", "root"]), check=False)
    return True


def set_netem(netns: str, ifname: str, percent: float, delay_ms: float) -> None:
    argv = ["tc", "qdisc", "replace", "dev", ifname, "root", "netem"]
    if percent > 0:
        argv += ["loss", f"{percent:g}%"]
    if delay_ms > 0:
        argv += ["delay", f"{delay_ms:g}ms"]
    run(in_netns(netns, argv))


def clear_qdisc(netns: str, ifname: str) -> None:
    """Remove a root qdisc if any (idempotent)."""
    run(in_netns(netns, ["tc", "qdisc", "del", "dev", ifname, "root"]), check=False)
