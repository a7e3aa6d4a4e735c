"""The daemon's side of fencing: ``havm node fence`` and the fencing part of status.

Who runs a fence by hand: the controller of a quorate partition, as for every
change (a node cut off from the majority must not shoot the majority's
nodes); when the node to fence *is* the controller, the lowest-named other
member runs it. The node that receives the command never fences itself (its
answer could never arrive): the operator asks another node. On success the
controller takes the node as fenced at once, so its resources are recovered
without a second fence.

A node no device can fence, in a cluster with a watchdog, is fenced by its
own watchdog (``havm.fencing.watchdog``): the fencer asks it, over
``POST /internal/fence-self``, to stop feeding its watchdog (``fence_self``
here, on the target), then waits ``fencing_watchdog_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from havm.commands.fence import FenceNode, GetFenceHistory
from havm.config.schema import ClusterConfig
from havm.config.watchdog import effective_fencing_watchdog_timeout, self_fencing_nodes
from havm.errors import Conflict, HavmError, NoQuorum, NotFound, UsageError
from havm.fencing.history import summarize
from havm.fencing.policy import RETRY_PAUSE
from havm.fencing.records import FenceAttempt
from havm.fencing.watchdog import ASK_TIMEOUT, Ack, WatchdogFence, WatchdogFenceConfig

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

log = logging.getLogger("havm.fencing")

HISTORY_TIMEOUT = 2.0  # seconds a member gets to send its history for status


def watchdog_fence_config(config: ClusterConfig, node: str) -> WatchdogFenceConfig | None:
    """How ``node`` is fenced by its watchdog; None if a device fences it, or no watchdog."""
    if node not in self_fencing_nodes(config.node_names, list(config.fencing.devices), config.watchdog):
        return None
    return WatchdogFenceConfig(timeout=effective_fencing_watchdog_timeout(
        config.properties.fencing_watchdog_timeout, config.watchdog, config.timing), grace=config.timing.deadtime)


def fence_budget(config: ClusterConfig, node: str) -> float:
    """The longest a fence of ``node`` can take (delay, every level, every retry; or
    asking it to fence itself, then fencing_watchdog_timeout and the deadtime)."""
    fencing = config.fencing
    levels = fencing.levels_for(node)
    if not levels:
        wd = watchdog_fence_config(config, node)
        return 0.0 if wd is None else ASK_TIMEOUT + wd.timeout + wd.grace
    delay = max(d.delay_for(node) for d in levels[0])
    return delay + sum(d.timeout * (d.retries + 1) + RETRY_PAUSE * d.retries for lvl in levels for d in lvl)


async def handle(d: NodeDaemon, cmd: FenceNode | GetFenceHistory, forwarded: bool, sender: str) -> Any:
    if isinstance(cmd, GetFenceHistory):
        return {"node": d.node, "attempts": [a.to_json() for a in d.fencer.history.attempts()]}
    if cmd.node not in d.config.node_names:
        raise NotFound(f"no node {cmd.node!r} in the cluster; nodes are {', '.join(d.config.node_names)}")
    if cmd.node == d.node:
        raise UsageError(f"{d.node} will not fence itself: its answer could never reach you. "
                         f"Ask another node (havm --node OTHER node fence {cmd.node})")
    view = d.view()
    if forwarded:
        if not view.quorate:  # lost quorum since the sender forwarded it
            raise NoQuorum(f"node {d.node} is not in a quorate partition any more: fencing refused")
        return await _run_here(d, cmd, sender)
    if not view.quorate or view.controller is None:
        raise NoQuorum(f"node {d.node} is not in a quorate partition: fencing by hand is refused "
                       "(a node cut off from the majority must not shoot the majority's nodes)")
    executor = view.controller
    if executor == cmd.node:
        executor = min(m for m in view.members if m != cmd.node)
    if executor == d.node:
        return await _run_here(d, cmd, "local")
    return await d.forward(executor, cmd, timeout=fence_budget(d.config, cmd.node) + 15)


async def _run_here(d: NodeDaemon, cmd: FenceNode, sender: str) -> dict[str, Any]:
    via = f" via {sender}" if sender != "local" else ""
    outcome = await d.fence_node(cmd.node, f"{cmd.by or 'operator'} (havm node fence{via})")
    if outcome.ok and d.view().controller == d.node:
        d.controller.node_fenced(cmd.node)
    return outcome.to_json()


def watchdog_fence(d: NodeDaemon) -> WatchdogFence:
    """The fencer's side of watchdog fencing, wired to this daemon (its view, the
    controller's loss clock, the peer API)."""
    async def ask(node: str, requested_by: str) -> Ack:
        r = await d.ask_peer(node, "POST", "/internal/fence-self", {"requested_by": requested_by},
                             timeout=ASK_TIMEOUT)
        if not isinstance(r, dict) or r.get("node") != node or not isinstance(r.get("reset_in"), int | float):
            raise Conflict(f"{node} answered the request to fence itself with {r!r}")
        return Ack(node, float(r["reset_in"]))

    return WatchdogFence(lambda n: watchdog_fence_config(d.config, n), lambda n: n in d.view().members,
                         lambda n: d.controller.losses.waited(n, d.clock.monotonic()), ask, d.clock)


def fence_self(d: NodeDaemon, requested_by: str, sender: str) -> dict[str, Any]:
    """This node is asked to fence itself (``havm node fence`` of it, by its watchdog):
    stop feeding the watchdog for good, stop everything here (best effort: the
    watchdog resets the node regardless), then acknowledge. Only a member of
    this node's partition may ask (a node cut off from us must not shoot us)."""
    if d.watchdog is None:
        raise Conflict(f"{d.node} has no watchdog: it cannot fence itself")
    if sender != "local" and sender not in d.view().members:
        raise Conflict(f"{sender} is not a member of {d.node}'s partition: {d.node} does not fence itself for it")
    first = not d.watchdog.self_fenced
    why = f"asked by {requested_by} via {sender}"
    reset_in = d.watchdog.fence_self(why)  # raises if the watchdog is not armed: no acknowledgement
    d.local.fence_self(why)
    if first:
        log.error("FENCING MYSELF (%s): watchdog no longer fed, reset within %.1fs; stopping everything",
                  why, reset_in)
        d.events.emit("fence.self", f"{d.node} fences itself ({why}): its watchdog resets it within "
                      f"{reset_in:.1f}s", target=d.node, reset_in=round(reset_in, 3), requested_by=requested_by)
    return {"node": d.node, "reset_in": round(reset_in, 3)}


async def gather(d: NodeDaemon) -> dict[str, Any]:
    """The status document's ``fencing``: every answering member's attempts, merged."""
    attempts = list(d.fencer.history.attempts())

    async def one(n: str) -> list[dict[str, Any]]:
        try:
            r = await asyncio.wait_for(d.forward(n, GetFenceHistory()), HISTORY_TIMEOUT)
            return list(r.get("attempts", []))
        except (HavmError, TimeoutError, AttributeError):
            return []  # a silent member's history is missing, shown when it answers again

    others = [n for n in d.view().members if n != d.node]
    for found in await asyncio.gather(*(one(n) for n in others)):
        for a in found:
            try:
                attempts.append(FenceAttempt.from_json(a))
            except TypeError:
                continue
    return summarize(attempts)
