"""What a lab is made of, recorded in ``LABDIR/lab.json``.

``lab.json`` is the lab's memory: every namespace, interface, address and
process a lab command creates is written there *before* the next step runs,
so that ``havm lab down`` can undo a partial ``up`` or the leftovers of a crash.
The rest of the CLI resolves ``havm --lab DIR`` through ``nodes_of`` and
``socket_of``.

Names are derived from the lab directory alone (``lab_id``), so even with
``lab.json`` lost, ``down`` can still find the lab's namespaces by prefix.

Schema (``schema: 1``; fields are only ever added):

- ``lab_id``: 6 hex digits, sha1 of the lab dir's real path.
- ``dir``, ``config``, ``key_file``: absolute paths.
- ``mode``: ``"netns"`` (one network namespace per node) or ``"loopback"``.
- ``status``: ``"creating"`` (an ``up`` is under way or crashed), ``"up"``, ``"down"``.
- ``cluster``: cluster name in cluster.yaml; ``links``: link names; ``port``: heartbeat port;
  ``link_mode``: unicast, multicast (group 239.0.213.<link index>) or broadcast
  (10.213.<link index>.255).
- ``switch_netns``: namespace holding the bridges (netns mode) or null;
  ``bridges``: link name -> bridge name inside ``switch_netns``.
- ``nodes``: node name -> {name, index, addresses (link -> IPv4), dir,
  state_dir, socket, log, netns (or null), interfaces (link -> {node_if,
  switch_if, prefix}), pid, pid_start, groups, holder_pid, holder_start}, in
  node order (NodeRecord).
- ``daemon_command``: the daemon's argv template ({config}, {node},
  {state_dir}, {socket} filled per node); ``daemon_env``: added to its
  environment; ``lab_octet``: third octet of loopback addresses, or null.
- ``faults``: ``partition`` (list of node-name groups, or null), ``links_down``
  (node -> [link]), ``loss`` (node -> link -> {percent, delay_ms, method,
  delayer: {pid, start} or null}), ``blocks`` (one-way cuts: [{src, dst, link
  or null for all links}]).
- ``netns_inodes``: namespace name -> inode of its nsfs file, recorded when
  created. Inside a node's own mount namespace /run/netns is not mounted (the
  holder drops it), so ``havm lab kill`` run from a node (the power switch
  used as fence device by another node's havmd) identifies namespaces by these.
- ``guest_net`` (netns labs with VMs, else null): the guest network,
  {switch_bridge, switch_address, node_bridge, node_uplink, prefix, subnet}:
  one bridge ``node_bridge`` per node (address 10.214.0.<node index>) joined by
  a veth ``node_uplink`` <-> ``<node>-guest`` to ``switch_bridge`` in the
  switch namespace, where the observer's address is ``switch_address``.
- ``vms``: VM name -> {ip, mac, disk} (the VM resources the lab wrote in
  cluster.yaml; guests answer on http://IP/cgi-bin/state on the guest network);
  ``guest_image``: {vmlinux, initramfs, kernel_release, key} or null.
- ``fencing``: the fence device of the generated cluster.yaml: ``lab`` (the
  power switch), ``ipmi`` (fence_ipmilan against the BMCs) or ``none``.
- ``bmcs``: node -> {address, port, username, password, dir, node_address,
  pid, pid_start}: the node's simulated BMC (``havm.lab.bmc``; ipmi labs only).
- ``created_at``, ``updated_at``: UNIX times.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from havm.errors import LabError, NotFound

SCHEMA = 1
STATE_FILE = "lab.json"
LOCK_FILE = ".lab.lock"
NETNS_PREFIX = "havm-"


def lab_id(lab_dir: str) -> str:
    """A short id unique to the lab directory: 6 hex digits of sha1(realpath)."""
    real = os.path.realpath(lab_dir)
    return hashlib.sha1(real.encode()).hexdigest()[:6]


def netns_prefix(lab_dir: str) -> str:
    """Every namespace of the lab in ``lab_dir`` starts with this."""
    return f"{NETNS_PREFIX}{lab_id(lab_dir)}-"


@dataclass
class Interface:
    """One veth pair of a node: ``node_if`` inside the node's namespace,
    ``switch_if`` inside the switch namespace, enslaved to the link's bridge."""

    node_if: str
    switch_if: str
    prefix: int = 24


@dataclass
class NodeRecord:
    """One lab node.

    ``pid`` and ``pid_start`` identify the havmd process (``pid_start`` is the
    process start time in clock ticks since boot, from /proc/PID/stat), so a
    reused pid is never mistaken for our daemon. Null when not started.
    ``groups`` (loopback labs) lists the process group of every daemon started
    for the node: what an earlier, killed daemon started still belongs to the node.
    ``holder_pid``/``holder_start`` (namespace labs) identify the process that
    holds the node's own UTS (hostname = node name) and mount (its own /sys)
    namespaces; the node's processes are started inside them.
    """

    name: str
    index: int
    addresses: dict[str, str]
    dir: str
    state_dir: str
    socket: str
    log: str
    netns: str | None = None
    interfaces: dict[str, Interface] = field(default_factory=dict)
    pid: int | None = None
    pid_start: int | None = None
    groups: list[int] = field(default_factory=list)
    holder_pid: int | None = None
    holder_start: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeRecord:
        data = dict(data)
        data["interfaces"] = {k: Interface(**v) for k, v in data.get("interfaces", {}).items()}
        return cls(**data)


@dataclass
class BmcRecord:
    """A node's simulated BMC (``havm.lab.bmc``): where it listens, its
    credentials, its files, its ipmi_sim process; ``node_address`` is the node's
    own address on the management network (namespace labs)."""

    address: str
    port: int
    username: str
    password: str
    dir: str
    node_address: str | None = None
    pid: int | None = None
    pid_start: int | None = None


@dataclass
class Faults:
    partition: list[list[str]] | None = None
    links_down: dict[str, list[str]] = field(default_factory=dict)
    loss: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    blocks: list[dict[str, str | None]] = field(default_factory=list)

    def clear(self) -> None:
        self.partition = None
        self.links_down = {}
        self.loss = {}
        self.blocks = []

    def of_node(self, node: str) -> dict[str, Any]:
        group = None
        if self.partition is not None:
            group = next((g for g in self.partition if node in g), None)
        return {"partition_group": group, "links_down": list(self.links_down.get(node, [])),
                "loss": dict(self.loss.get(node, {})),
                "blocks": [b for b in self.blocks if node in (b["src"], b["dst"])]}


@dataclass
class LabState:
    lab_id: str
    dir: str
    mode: str
    cluster: str
    links: list[str]
    port: int
    config: str
    key_file: str
    nodes: dict[str, NodeRecord]
    status: str = "creating"
    switch_netns: str | None = None
    bridges: dict[str, str] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    daemon_command: list[str] = field(default_factory=list)
    lab_octet: int | None = None
    link_mode: str = "unicast"
    daemon_env: dict[str, str] = field(default_factory=dict)
    netns_inodes: dict[str, int] = field(default_factory=dict)
    guest_net: dict[str, Any] | None = None
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)
    guest_image: dict[str, str] | None = None
    fencing: str = "lab"
    bmcs: dict[str, BmcRecord] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    schema: int = SCHEMA

    @property
    def netns_mode(self) -> bool:
        return self.mode == "netns"

    def node(self, name: str) -> NodeRecord:
        try:
            return self.nodes[name]
        except KeyError:
            raise NotFound(f"no node {name!r} in the lab at {self.dir}; nodes are "
                           f"{', '.join(self.nodes)}") from None

    def namespaces(self) -> list[str]:
        names = [n.netns for n in self.nodes.values() if n.netns]
        if self.switch_netns:
            names.append(self.switch_netns)
        return names

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        data = dict(data)
        if data.get("schema", 0) > SCHEMA:
            raise LabError(f"lab.json has schema {data['schema']}, newer than this havm ({SCHEMA})")
        data["nodes"] = {k: NodeRecord.from_json(v) for k, v in data["nodes"].items()}
        data["faults"] = Faults(**data.get("faults", {}))
        data["bmcs"] = {k: BmcRecord(**v) for k, v in data.get("bmcs", {}).items()}
        return cls(**data)

    def save(self) -> None:
        """Write lab.json atomically (temp file, fsync, rename)."""
        self.updated_at = time.time()
        path = os.path.join(self.dir, STATE_FILE)
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, lab_dir: str) -> LabState:
        path = os.path.join(lab_dir, STATE_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise LabError(f"no lab at {lab_dir} ({path} not found); create one with 'havm lab up'") from None
        except (OSError, ValueError) as e:
            raise LabError(f"cannot read {path}: {e}") from None
        try:
            return cls.from_json(data)
        except (TypeError, KeyError, AttributeError) as e:
            raise LabError(f"{path} is not a lab state file havm understands: {e}") from None


def load_optional(lab_dir: str) -> LabState | None:
    """The lab's state, or None when there is no lab.json (or it is unreadable)."""
    if not os.path.exists(os.path.join(lab_dir, STATE_FILE)):
        return None
    try:
        return LabState.load(lab_dir)
    except LabError:
        return None


@contextlib.contextmanager
def locked(lab_dir: str) -> Iterator[None]:
    """Serialize lab commands that change the lab (two ``havm lab`` at once)."""
    os.makedirs(lab_dir, exist_ok=True)
    fd = os.open(os.path.join(lab_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def nodes_of(lab_dir: str) -> list[str]:
    """Names of the lab's nodes, in order (raises LabError if there is no lab)."""
    return list(LabState.load(lab_dir).nodes)


def socket_of(lab_dir: str, node: str) -> str:
    """The unix socket of ``node``'s havmd (raises LabError / NotFound)."""
    return LabState.load(lab_dir).node(node).socket


def config_of(lab_dir: str) -> str:
    """The lab's cluster.yaml."""
    return LabState.load(lab_dir).config
