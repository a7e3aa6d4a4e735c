"""The guest network of a namespace lab, and reading a guest's state over it.

Every node has a bridge ``vmbr0`` in its namespace (QEMU puts each guest's tap
on it), joined by a veth pair (``guest0`` in the node, ``<node>-guest`` in the
switch namespace) to one bridge ``br-guest`` in the switch namespace. It is
one L2 segment, as a real cluster's VM network: a guest keeps its IP address
whichever node runs it, and after a live migration QEMU's ``announce-self``
teaches the bridges the MAC's new port.

Addresses (10.214.0.0/16, private to the lab's bridges like the link ranges):

- the observer (the switch namespace's ``br-guest``): 10.214.0.254;
- node i's ``vmbr0``: 10.214.0.i (so a node's agent can check its guests' health);
- VM k: 10.214.1.k, MAC derived from the lab id and the VM name (stable).

``guest_state`` reads a guest's ``boot_id`` and counter from the switch
namespace, with a socket created there (``setns`` in a short-lived thread:
no process per request).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import socket
import threading
from typing import Any

from havm.errors import LabError
from havm.guest import GUEST_HTTP_PORT, STATE_PATH, GuestState, parse_state

GUEST_NET = "10.214"
GUEST_PREFIX = 16
SWITCH_BRIDGE = "br-guest"
NODE_BRIDGE = "vmbr0"
NODE_UPLINK = "guest0"
OBSERVER_ADDRESS = f"{GUEST_NET}.0.254"
MAX_VMS = 250
CLONE_NEWNET = 0x40000000


def guest_net_document() -> dict[str, Any]:
    """What lab.json records as ``guest_net``."""
    return {"switch_bridge": SWITCH_BRIDGE, "switch_address": OBSERVER_ADDRESS,
            "node_bridge": NODE_BRIDGE, "node_uplink": NODE_UPLINK, "prefix": GUEST_PREFIX,
            "subnet": f"{GUEST_NET}.0.0/{GUEST_PREFIX}"}


def switch_port(node: str) -> str:
    return f"{node}-guest"


def node_address(index: int) -> str:
    return f"{GUEST_NET}.0.{index}"


def vm_address(k: int) -> str:
    if not 1 <= k <= MAX_VMS:
        raise ValueError(f"VM number {k} outside 1..{MAX_VMS}")
    return f"{GUEST_NET}.1.{k}"


def vm_mac(lab_id: str, vm: str) -> str:
    """A stable, locally administered MAC (QEMU's 52:54:00 prefix) per lab and VM."""
    digest = hashlib.sha256(f"havm-lab {lab_id} {vm}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def network_commands(switch_netns: str, nodes: list[tuple[str, str, int]]
                     ) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """``ip -batch`` lines (root, switch, per node) for ``nodes`` = [(name, netns, index)]."""
    root: list[str] = []
    switch = [f"link add {SWITCH_BRIDGE} type bridge",
              f"addr add {OBSERVER_ADDRESS}/{GUEST_PREFIX} dev {SWITCH_BRIDGE}",
              f"link set {SWITCH_BRIDGE} up"]
    per_node: dict[str, list[str]] = {}
    for name, ns, index in nodes:
        port = switch_port(name)
        root.append(f"link add {NODE_UPLINK} netns {ns} type veth peer name {port} netns {switch_netns}")
        switch += [f"link set {port} master {SWITCH_BRIDGE}", f"link set {port} up"]
        per_node[name] = [f"link add {NODE_BRIDGE} type bridge",
                          f"link set {NODE_UPLINK} master {NODE_BRIDGE}",
                          f"link set {NODE_UPLINK} up",
                          f"addr add {node_address(index)}/{GUEST_PREFIX} dev {NODE_BRIDGE}",
                          f"link set {NODE_BRIDGE} up"]
    return root, switch, per_node


_libc = ctypes.CDLL(None, use_errno=True)


def socket_in_netns(netns_path: str, family: int = socket.AF_INET,
                    kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket that lives in the network namespace at ``netns_path``.

    A socket belongs to the namespace of the thread that created it, so a
    throw-away thread enters the namespace (only that thread moves) and
    creates it; the caller then uses it as any socket.
    """
    out: dict[str, Any] = {}

    def make() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns_path}): {os.strerror(err)}")
            finally:
                os.close(fd)
            out["sock"] = socket.socket(family, kind)
        except OSError as e:
            out["error"] = e

    t = threading.Thread(target=make, name="havm-lab-setns", daemon=True)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["sock"]  # type: ignore[no-any-return]


def http_get(netns_path: str, host: str, port: int, path: str, timeout: float) -> bytes:
    """The body of ``GET http://host:port/path`` sent from inside a namespace (OSError on failure)."""
    s = socket_in_netns(netns_path)
    with s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/"):
        raise OSError(errno.EPROTO, f"not an HTTP answer from {host}:{port}: {raw[:80]!r}")
    status = head.split(b" ", 2)[1:2]
    if status != [b"200"]:
        raise OSError(errno.EPROTO, f"HTTP {status[0].decode() if status else '?'} from {host}:{port}{path}")
    return body


def fetch_guest_state(netns_path: str, ip: str, timeout: float = 3.0) -> GuestState:
    """The guest's (boot_id, counter), asked from the namespace at ``netns_path``.

    Raises OSError if it does not answer, ValueError if the answer is not a guest state.
    """
    return parse_state(http_get(netns_path, ip, GUEST_HTTP_PORT, STATE_PATH, timeout).decode())


def observer_path(switch_netns: str | None) -> str:
    if not switch_netns:
        raise LabError("this lab has no guest network (VMs need a namespace lab)")
    return os.path.join("/run/netns", switch_netns)
