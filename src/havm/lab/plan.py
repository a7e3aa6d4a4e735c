"""The shape of a lab, decided before anything is created (pure: no I/O).

``plan_lab`` turns the ``havm lab up`` parameters into a ``LabState`` (names,
addresses, paths; no pids yet) and ``cluster_document`` into the cluster.yaml
it runs. Names come from the lab id so two labs never collide:

- namespaces ``havm-<id>-<node>`` and ``havm-<id>-sw`` (the switch);
- inside a node's namespace its interface on link L is named L (``ring0``);
- inside the switch namespace, bridge ``br-<L>`` and node ports ``<node>-<L>``
  (at most 15 characters, checked);
- the guest network (``havm.lab.guestnet``): ``vmbr0`` + ``guest0`` in each node,
  ``br-guest`` + ``<node>-guest`` in the switch namespace.

Addresses: with namespaces ``10.213.<link index>.<node index>/24`` (private
to the lab's own bridges, so every lab can use the same range); on loopback
``127.<link index>.<lab octet>.<node index>`` where the lab octet is chosen
per lab so that two loopback labs differ.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from pydantic import ValidationError

from havm.config.cluster import DEFAULT_PORT, Timing
from havm.errors import UsageError
from havm.lab import bmc, guestnet
from havm.lab.state import Interface, LabState, NodeRecord, lab_id, netns_prefix
from havm.lab.vms import plan_vms, resources_document

MAX_NODES = 250
MAX_LINKS = 2
IFNAMSIZ = 15  # longest Linux interface name
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL
LAB_NET = "10.213"
LAB_GROUP = "239.0.213"  # multicast group of link i: 239.0.213.i
LINK_MODES = ("unicast", "multicast", "broadcast")
FENCE_DEVICE = "lab-power"  # the fence device of a lab with --fencing lab: its power switch
# lab power switch, fence_ipmilan against the BMCs, no fencing, watchdog self-fencing (havm.lab.watchdog)
FENCING_MODES = ("lab", "ipmi", "none", "watchdog")
UNPRIVILEGED_PORT = 20694  # heartbeat port on loopback labs without root (694 needs root)

# How havmd is started; placeholders are filled per node. Tests may record
# another command in the lab (``LabSpec.daemon_command``) to run a stand-in.
DEFAULT_DAEMON_COMMAND = (
    sys.executable, "-m", "havm.daemon.main",
    "--config", "{config}", "--node", "{node}",
    "--state-dir", "{state_dir}", "--socket", "{socket}",
)


@dataclass(frozen=True)
class LabSpec:
    """What ``havm lab up`` was asked for."""

    nodes: int
    links: int = 1
    netns: bool = True
    keepalive: float | None = None
    warntime: float | None = None
    deadtime: float | None = None
    initdead: float | None = None
    port: int | None = None
    link_mode: str = "unicast"  # unicast | multicast | broadcast (the last two need namespaces)
    daemon_command: tuple[str, ...] = DEFAULT_DAEMON_COMMAND
    daemon_env: dict[str, str] = field(default_factory=dict)  # added to the daemons' environment
    vms: int = 0  # guest VMs (havm's own image; namespace labs only)
    dummies: int = 0  # dummy resources
    vip: bool = False  # a virtual IP resource on the guest network (if an 'ip' agent exists)
    fencing: str = "lab"  # FENCING_MODES: the fence device of the generated cluster.yaml


def fill_timing(keepalive: float | None = None, warntime: float | None = None,
                deadtime: float | None = None, initdead: float | None = None) -> dict[str, float]:
    """Complete partial timing overrides consistently, then validate them.

    Missing values follow the given ones (deadtime 1 alone gives keepalive
    1/6, warntime 0.5) so that one override never makes the rest invalid.
    """
    defaults = Timing()
    k = keepalive if keepalive is not None else (
        deadtime / 6 if deadtime is not None else defaults.keepalive)
    d = deadtime if deadtime is not None else max(defaults.deadtime, 6 * k)
    w = warntime if warntime is not None else max(k, d / 2)
    i = initdead if initdead is not None else max(defaults.initdead, d)
    try:
        t = Timing(keepalive=round(k, 4), warntime=round(w, 4), deadtime=d, initdead=i)
    except ValidationError as e:
        msgs = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in e.errors())
        raise UsageError(f"impossible lab timing: {msgs}") from None
    return {"keepalive": t.keepalive, "warntime": t.warntime, "deadtime": t.deadtime, "initdead": t.initdead}


def link_names(count: int) -> list[str]:
    return [f"ring{i}" for i in range(count)]


def node_names(count: int) -> list[str]:
    return [f"n{i}" for i in range(1, count + 1)]


def address_of(netns: bool, link_index: int, node_index: int, lab_octet: int) -> str:
    if netns:
        return f"{LAB_NET}.{link_index}.{node_index}"
    return f"127.{link_index}.{lab_octet}.{node_index}"


def default_lab_octet(lab_dir: str) -> int:
    """A loopback octet derived from the lab id, in 20..249 (the caller checks it is free)."""
    return 20 + int(lab_id(lab_dir), 16) % 230


def heartbeat_port(spec: LabSpec, is_root: bool) -> int:
    """694 (Heartbeat's port) unless a loopback lab runs without root."""
    return spec.port or (DEFAULT_PORT if (is_root or spec.netns) else UNPRIVILEGED_PORT)


def plan_lab(lab_dir: str, spec: LabSpec, lab_octet: int, is_root: bool) -> LabState:
    """The lab's state before anything exists (status 'creating', no pids)."""
    if not 1 <= spec.nodes <= MAX_NODES:
        raise UsageError(f"--nodes must be between 1 and {MAX_NODES}, got {spec.nodes}")
    if not 1 <= spec.links <= MAX_LINKS:
        raise UsageError(f"--links must be 1 or 2, got {spec.links}")
    if spec.link_mode not in LINK_MODES:
        raise UsageError(f"--link-mode must be one of {', '.join(LINK_MODES)}, got {spec.link_mode!r}")
    if (spec.vms or spec.vip) and not spec.netns:
        raise UsageError("VMs and a virtual IP need a namespace lab (as root, without --no-netns): "
                         "guests are reached over the lab's guest network")
    if spec.dummies < 0:
        raise UsageError(f"--dummies must be 0 or more, got {spec.dummies}")
    if spec.fencing not in FENCING_MODES:
        raise UsageError(f"--fencing must be one of {', '.join(FENCING_MODES)}, got {spec.fencing!r}")
    if spec.link_mode != "unicast" and not spec.netns:
        raise UsageError(f"{spec.link_mode} links need network namespaces (a lab without --no-netns, as root)")
    d = os.path.realpath(lab_dir)
    ident = lab_id(d)
    prefix = netns_prefix(d)
    links = link_names(spec.links)
    port = heartbeat_port(spec, is_root)
    nodes: dict[str, NodeRecord] = {}
    for index, name in enumerate(node_names(spec.nodes), start=1):
        node_dir = os.path.join(d, "nodes", name)
        rec = NodeRecord(
            name=name, index=index,
            addresses={lk: address_of(spec.netns, li, index, lab_octet) for li, lk in enumerate(links)},
            dir=node_dir, state_dir=os.path.join(node_dir, "state"),
            socket=os.path.join(node_dir, "havmd.sock"), log=os.path.join(node_dir, "havmd.log"),
            netns=f"{prefix}{name}" if spec.netns else None,
        )
        if spec.netns:
            rec.interfaces = {lk: Interface(node_if=lk, switch_if=f"{name}-{lk}") for lk in links}
            for itf in rec.interfaces.values():
                if len(itf.switch_if) > IFNAMSIZ:
                    raise UsageError(f"interface name {itf.switch_if!r} is longer than {IFNAMSIZ} characters")
        if len(rec.socket.encode()) > UNIX_PATH_MAX:
            raise UsageError(f"the lab dir {d} is too deep: socket path {rec.socket} is "
                             f"{len(rec.socket.encode())} bytes, unix sockets allow {UNIX_PATH_MAX}; "
                             "use a shorter --dir")
        nodes[name] = rec
    state = LabState(
        lab_id=ident, dir=d, mode="netns" if spec.netns else "loopback", cluster=f"lab-{ident}",
        links=links, port=port, config=os.path.join(d, "cluster.yaml"),
        key_file=os.path.join(d, "authkey"), nodes=nodes,
        switch_netns=f"{prefix}sw" if spec.netns else None,
        bridges={lk: f"br-{lk}" for lk in links} if spec.netns else {},
        daemon_command=list(spec.daemon_command), lab_octet=None if spec.netns else lab_octet,
        link_mode=spec.link_mode, daemon_env=dict(spec.daemon_env),
        guest_net=guestnet.guest_net_document() if spec.netns else None,
        vms=plan_vms(ident, d, spec.vms), fencing=spec.fencing,
    )
    if spec.fencing == "ipmi":
        state.bmcs = bmc.plan_bmcs(d, list(nodes.values()), spec.netns, lab_octet)
    return state


def cluster_document(state: LabState, timing: dict[str, float], dummies: int = 0,
                     vip: bool = False) -> dict[str, object]:
    """The cluster.yaml of the lab, as a plain mapping.

    The fence device (``state.fencing``): the lab's power switch (``havm lab
    kill``), or each node's BMC through ``fence_ipmilan`` (``ipmi``): a node
    that dies or drops out is killed whole (daemon, agents, guests) before its
    resources are recovered elsewhere, so a VM never runs twice. ``none``: no
    device (nothing of a lost node is ever recovered, unless fencing is disabled).
    """
    doc: dict[str, object] = {
        "version": 1,
        "cluster": state.cluster,
        "nodes": [{"name": n.name, "addresses": dict(n.addresses)} for n in state.nodes.values()],
        "links": [link_document(state, li, lk) for li, lk in enumerate(state.links)],
        "timing": dict(timing),
        "auth": {"key_file": os.path.basename(state.key_file)},
        "fencing": {"devices": fence_devices(state)},
    }
    if state.fencing == "watchdog":
        from havm.lab.watchdog import cluster_settings  # no device: each node's watchdog fences it

        doc.update(cluster_settings(state, timing["deadtime"]))
    resources = resources_document(state, dummies, vip)
    if resources:
        doc["resources"] = resources
    return doc


def fence_devices(state: LabState) -> list[dict[str, object]]:
    """The fencing.devices of the lab's cluster.yaml for its fencing mode."""
    if state.fencing == "ipmi":
        # one device per node, as for real BMCs; IPMI 1.5 LAN (ipmi_sim has no lanplus cipher suites)
        return [{"id": f"bmc-{name}", "agent": "fence_ipmilan", "nodes": [name],
                 "params": {"ip": b.address, "ipport": b.port, "username": b.username, "password": b.password,
                            "lanplus": 0}}
                for name, b in state.bmcs.items()]
    if state.fencing == "lab":
        return [{"id": FENCE_DEVICE, "agent": "lab", "params": {"lab_dir": state.dir}}]
    return []


def link_document(state: LabState, index: int, name: str) -> dict[str, object]:
    doc: dict[str, object] = {"name": name, "mode": state.link_mode, "port": state.port}
    if state.link_mode == "multicast":
        doc["group"] = f"{LAB_GROUP}.{index}"
    elif state.link_mode == "broadcast":
        doc["broadcast"] = f"{LAB_NET}.{index}.255"
    return doc


def daemon_argv(state: LabState, node: NodeRecord) -> list[str]:
    """The command line that starts ``node``'s daemon."""
    values = {"config": state.config, "node": node.name, "state_dir": node.state_dir,
              "socket": node.socket, "python": sys.executable}
    return [part.format(**values) for part in state.daemon_command]


def network_commands(state: LabState) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """``ip -batch`` lines: (root namespace: veth pairs), (switch), (per node)."""
    assert state.switch_netns is not None
    sw = state.switch_netns
    root = []
    switch = [f"link add {br} type bridge" for br in state.bridges.values()]
    switch += [f"link set {br} up" for br in state.bridges.values()]
    per_node: dict[str, list[str]] = {}
    for n in state.nodes.values():
        cmds = ["link set lo up"]
        for lk, itf in n.interfaces.items():
            root.append(f"link add {itf.node_if} netns {n.netns} type veth peer name {itf.switch_if} netns {sw}")
            switch.append(f"link set {itf.switch_if} master {state.bridges[lk]}")
            switch.append(f"link set {itf.switch_if} up")
            cmds.append(f"addr add {n.addresses[lk]}/{itf.prefix} dev {itf.node_if}")
            cmds.append(f"link set {itf.node_if} up")
            if state.link_mode == "multicast":
                # a namespace has no default route: say where each link's group goes
                cmds.append(f"route add {LAB_GROUP}.{state.links.index(lk)}/32 dev {itf.node_if}")
        per_node[n.name] = cmds
    if state.guest_net is not None:
        g_root, g_switch, g_node = guestnet.network_commands(
            sw, [(n.name, n.netns or "", n.index) for n in state.nodes.values()])
        root += g_root
        switch += g_switch
        for name, cmds in g_node.items():
            per_node[name] += cmds
    if state.bmcs:
        b_root, b_switch, b_node = bmc.network_commands(sw, list(state.nodes.values()), state.bmcs)
        root += b_root
        switch += b_switch
        for name, cmds in b_node.items():
            per_node[name] += cmds
    return root, switch, per_node
