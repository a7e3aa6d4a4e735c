"""Network faults of a lab: partitions, lost packets, pulled cables.

The lab's ``Faults`` record is the single source of truth. Each change
updates the record, then renders every affected node's rules from it
(``node_rules``, pure) and loads them whole, so applying twice is harmless
and ``heal`` is simply "render with no faults".

Mechanics, all inside the lab's own namespaces:

- partition: iptables DROP in chain ``HAVM-PART`` (hooked from INPUT and
  OUTPUT) of each node, for every address of every node outside its group,
  on all links, both directions;
- block (one-way cut): DROP in the receiver's ``HAVM-PART`` of the sender's
  address(es), so only that direction is lost;
- loss and delay: tc netem on the node's interface when the kernel has it;
  else iptables ``statistic`` random DROP in chain ``HAVM-LOSS`` (hooked from
  OUTPUT) for loss, and for delay an NFQUEUE rule served by a user-space
  delayer process (``havm.lab.delayer``) in the node's namespace. Both apply
  to what the node sends;
- link down: the node's port on the link's bridge is set down in the switch
  namespace, as if its cable were pulled (the node sees NO-CARRIER).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from havm.errors import LabError, UsageError
from havm.lab import netns, process
from havm.lab.state import Faults, LabState, NodeRecord

DELAYER_START_TIMEOUT = 10.0  # seconds
PART_CHAIN = "HAVM-PART"
LOSS_CHAIN = "HAVM-LOSS"

CHAIN_SETUP = f"""*filter
:{PART_CHAIN} - [0:0]
:{LOSS_CHAIN} - [0:0]
-A INPUT -j {PART_CHAIN}
-A OUTPUT -j {PART_CHAIN}
-A OUTPUT -j {LOSS_CHAIN}
COMMIT
"""


def parse_groups(specs: Sequence[str], nodes: Sequence[str]) -> list[list[str]]:
    """``["n1,n2", "n3"]`` -> groups; nodes not named form one more group together."""
    groups: list[list[str]] = []
    seen: set[str] = set()
    for spec in specs:
        group = [n.strip() for n in spec.split(",") if n.strip()]
        if not group:
            raise UsageError(f"empty partition group {spec!r}")
        for n in group:
            if n not in nodes:
                raise UsageError(f"unknown node {n!r} in partition; nodes are {', '.join(nodes)}")
            if n in seen:
                raise UsageError(f"node {n!r} is in two partition groups")
            seen.add(n)
        groups.append(group)
    rest = [n for n in nodes if n not in seen]
    if rest:
        groups.append(rest)
    if len(groups) < 2:
        raise UsageError("a partition needs at least two groups (e.g. 'n1,n2 n3')")
    return groups


def node_rules(state: LabState, node: str) -> str:
    """The full content of the lab chains of ``node`` (iptables-restore input)."""
    faults = state.faults
    lines = ["*filter", f":{PART_CHAIN} - [0:0]", f":{LOSS_CHAIN} - [0:0]",
             f"-F {PART_CHAIN}", f"-F {LOSS_CHAIN}"]
    if faults.partition is not None:
        mine = next((g for g in faults.partition if node in g), [node])
        for other in state.nodes.values():
            if other.name in mine:
                continue
            for addr in other.addresses.values():
                lines.append(f"-A {PART_CHAIN} -s {addr}/32 -j DROP")
                lines.append(f"-A {PART_CHAIN} -d {addr}/32 -j DROP")
    for block in faults.blocks:
        if block["dst"] == node:
            src = state.nodes[str(block["src"])]
            for link in [block["link"]] if block["link"] else state.links:
                lines.append(f"-A {PART_CHAIN} -s {src.addresses[str(link)]}/32 -j DROP")
    rec = state.nodes[node]
    for link, loss in sorted(faults.loss.get(node, {}).items()):
        if loss.get("method") != "iptables":
            continue
        ifname = rec.interfaces[link].node_if
        if loss["percent"] > 0:
            probability = min(1.0, loss["percent"] / 100.0)
            lines.append(f"-A {LOSS_CHAIN} -o {ifname} -m statistic "
                         f"--mode random --probability {probability:.6f} -j DROP")
        if loss["delay_ms"] > 0:
            lines.append(f"-A {LOSS_CHAIN} -o {ifname} -j NFQUEUE "
                         f"--queue-num {delay_queue(state, link)} --queue-bypass")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def require_netns(state: LabState, what: str) -> None:
    if not state.netns_mode:
        raise LabError(f"{what} needs network namespaces; this lab runs on loopback addresses "
                       "(start it as root without --no-netns)")


def setup_chains(state: LabState, node: str) -> None:
    ns = state.nodes[node].netns
    assert ns is not None
    netns.iptables_restore(ns, CHAIN_SETUP)


def apply_rules(state: LabState, nodes: Iterable[str]) -> None:
    def apply(node: str) -> None:
        ns = state.nodes[node].netns
        assert ns is not None
        netns.iptables_restore(ns, node_rules(state, node))

    netns.parallel(apply, list(nodes))


def set_partition(state: LabState, groups: list[list[str]] | None) -> None:
    require_netns(state, "partition")
    state.faults.partition = groups
    apply_rules(state, state.nodes)


def set_block(state: LabState, src: str, dst: str, link: str | None, blocked: bool) -> None:
    """Cut (or restore) one direction: what ``src`` sends to ``dst`` on ``link``
    (every link if None) is dropped on arrival; ``dst`` to ``src`` still flows."""
    require_netns(state, "block/unblock")
    for name in (src, dst):
        state.node(name)  # NotFound for an unknown node
    if src == dst:
        raise UsageError("a node cannot be cut from itself")
    if link is not None and link not in state.links:
        raise UsageError(f"unknown link {link!r}; links are {', '.join(state.links)}")
    block: dict[str, str | None] = {"src": src, "dst": dst, "link": link}
    others = [b for b in state.faults.blocks if b != block]
    state.faults.blocks = others + [block] if blocked else others
    apply_rules(state, [dst])


def set_link(state: LabState, node: str, link: str, up: bool) -> None:
    require_netns(state, "link-down/link-up")
    rec = state.node(node)
    if link not in rec.interfaces:
        raise UsageError(f"unknown link {link!r}; links are {', '.join(state.links)}")
    assert state.switch_netns is not None
    netns.set_link(state.switch_netns, rec.interfaces[link].switch_if, up)
    if up:
        assert rec.netns is not None
        netns.wait_oper_up(rec.netns, [rec.interfaces[link].node_if])
        _forget_neighbours(state, [link])
    down = [lk for lk in state.faults.links_down.get(node, []) if lk != link]
    if not up:
        down.append(link)
    if down:
        state.faults.links_down[node] = sorted(down)
    else:
        state.faults.links_down.pop(node, None)


def set_loss(state: LabState, nodes: Sequence[str], percent: float, link: str | None = None,
             delay_ms: float = 0.0) -> dict[str, dict[str, dict[str, Any]]]:
    """Lose ``percent`` % of what each node sends on ``link`` (all links if None),
    and delay it by ``delay_ms``; 0 and 0 remove it. Returns node -> link -> entry."""
    require_netns(state, "loss")
    if not 0 <= percent <= 100:
        raise UsageError(f"loss must be a percentage between 0 and 100, got {percent:g}")
    if delay_ms < 0:
        raise UsageError(f"delay must not be negative, got {delay_ms:g}")
    if link is not None and link not in state.links:
        raise UsageError(f"unknown link {link!r}; links are {', '.join(state.links)}")
    recs = [state.node(n) for n in nodes]
    if not recs:
        return {}
    assert recs[0].netns is not None
    netem = netns.netem_available(recs[0].netns)  # a property of the kernel: asked once
    links = [link] if link else list(state.links)

    def set_node(rec: NodeRecord) -> None:
        assert rec.netns is not None
        current = state.faults.loss.setdefault(rec.name, {})
        for lk in links:
            ifname = rec.interfaces[lk].node_if
            if netem:
                netns.clear_qdisc(rec.netns, ifname)
            old = current.pop(lk, None)
            if old and old.get("delayer"):
                _stop_delayer(old["delayer"])
            if percent == 0 and delay_ms == 0:
                continue
            entry: dict[str, Any] = {"percent": percent, "delay_ms": delay_ms, "delayer": None}
            if netem:
                netns.set_netem(rec.netns, ifname, percent, delay_ms)
                entry["method"] = "netem"
            else:
                entry["method"] = "iptables"
                if delay_ms > 0:
                    entry["delayer"] = _start_delayer(state, rec.name, lk, delay_ms)
            current[lk] = entry
        netns.iptables_restore(rec.netns, node_rules(state, rec.name))

    try:
        netns.parallel(set_node, recs)
    finally:
        for rec in recs:
            if not state.faults.loss.get(rec.name):
                state.faults.loss.pop(rec.name, None)
    return {rec.name: dict(state.faults.loss.get(rec.name, {})) for rec in recs}


def delay_queue(state: LabState, link: str) -> int:
    """The netfilter queue number of a link's delayer (queues are per namespace)."""
    return state.links.index(link)


def _start_delayer(state: LabState, node: str, link: str, delay_ms: float) -> dict[str, int]:
    """Start the user-space delayer of ``node``'s ``link``; return once it holds its queue."""
    rec = state.nodes[node]
    log = os.path.join(rec.dir, f"delayer-{link}.log")
    argv = [sys.executable, "-m", "havm.lab.delayer", "--queue", str(delay_queue(state, link)),
            "--delay-ms", f"{delay_ms:g}"]
    with open(log, "w"):
        pass
    pid, start = process.spawn_detached(argv, log, prefix=netns.in_netns(rec.netns, []), cwd=state.dir)
    deadline = time.monotonic() + DELAYER_START_TIMEOUT
    while "delayer: bound queue" not in process.log_tail(log):
        if not process.is_alive(pid, start) or time.monotonic() >= deadline:
            process.signal_pid(pid, signal.SIGKILL, start)
            raise LabError(f"the packet delayer of {node} {link} did not start; {log}:\n{process.log_tail(log)}")
        time.sleep(process.POLL)
    return {"pid": pid, "start": start}


def _stop_delayer(delayer: dict[str, int]) -> None:
    if process.signal_pid(delayer["pid"], signal.SIGKILL, delayer["start"]):
        process.wait_gone([delayer["pid"]], 5.0)


def helper_pids(state: LabState, node: str) -> set[int]:
    """Pids of lab machinery living in ``node``'s namespace (delayers): part of
    the wire, not of the node, so node faults (kill, freeze) spare them."""
    return {loss["delayer"]["pid"] for loss in state.faults.loss.get(node, {}).values() if loss.get("delayer")}


def _forget_neighbours(state: LabState, links: Sequence[str]) -> None:
    """Flush the nodes' ARP caches on ``links``.

    While a link was cut, peers' ARP requests failed; the kernel retries them
    only once a second, holding packets meanwhile. Forgetting them makes the
    traffic flow the moment a link comes back.
    """
    def flush(rec: NodeRecord) -> None:
        assert rec.netns is not None
        netns.batch([f"neigh flush dev {rec.interfaces[lk].node_if}" for lk in links], rec.netns)

    netns.parallel(flush, state.nodes.values())


def heal(state: LabState) -> None:
    """Remove every partition, loss and link-down (idempotent; nothing to do on loopback)."""
    for per_link in state.faults.loss.values():
        for loss in per_link.values():
            if loss.get("delayer"):
                _stop_delayer(loss["delayer"])
    state.faults = Faults()
    if not state.netns_mode:
        return
    assert state.switch_netns is not None
    ports = netns.link_states(state.switch_netns)
    netns.batch([f"link set {itf.switch_if} up" for rec in state.nodes.values()
                 for itf in rec.interfaces.values() if ports.get(itf.switch_if) != "UP"], state.switch_netns)

    def heal_node(rec: NodeRecord) -> None:
        assert rec.netns is not None
        info = netns.link_info(rec.netns)
        for itf in rec.interfaces.values():
            if info.get(itf.node_if, {}).get("qdisc") == "netem":
                netns.clear_qdisc(rec.netns, itf.node_if)
        netns.wait_oper_up(rec.netns, [i.node_if for i in rec.interfaces.values()])
        netns.batch([f"neigh flush dev {i.node_if}" for i in rec.interfaces.values()], rec.netns)
        netns.iptables_restore(rec.netns, node_rules(state, rec.name))

    netns.parallel(heal_node, state.nodes.values())
