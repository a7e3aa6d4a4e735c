"""The daemon's side of fencing: ``havm node fence`` and the fencing part of status.

Who runs a fence by hand: the controller of a quorate partition, as for every
change (a node cut off from the majority must not shoot the majority's
nodes); when the node to fence *is* the controller, the lowest-named other
member runs it. The node that receives the command never fences itself (its
answer could never arrive): the operator asks another node. On success the
controller takes the node as fenced at once, so its resources are recovered
without a second fence.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from havm.commands.fence import FenceNode, GetFenceHistory
from havm.config.fencing import Fencing
from havm.errors import HavmError, NoQuorum, NotFound, UsageError
from havm.fencing.history import summarize
from havm.fencing.policy import RETRY_PAUSE
from havm.fencing.records import FenceAttempt

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

HISTORY_TIMEOUT = 2.0  # seconds a member gets to send its history for status


def fence_budget(fencing: Fencing, node: str) -> float:
    """The longest a fence of ``node`` can take (delay, every level, every retry)."""
    levels = fencing.levels_for(node)
    if not levels:
        return 0.0
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
    return await d.peers.request(d.peer_addresses(executor), d.config.daemon.api.port, "POST",
                                 f"/internal/commands/{cmd.name}", cmd.to_json(),
                                 timeout=fence_budget(d.config.fencing, cmd.node) + 15)


async def _run_here(d: NodeDaemon, cmd: FenceNode, sender: str) -> dict[str, Any]:
    via = f" via {sender}" if sender != "local" else ""
    outcome = await d.fence_node(cmd.node, f"{cmd.by or 'operator'} (havm node fence{via})")
    if outcome.ok and d.view().controller == d.node:
        d.controller.node_fenced(cmd.node)
    return outcome.to_json()


async def gather(d: NodeDaemon) -> dict[str, Any]:
    """The status document's ``fencing``: every answering member's attempts, merged."""
    attempts = list(d.fencer.history.attempts())

    async def one(n: str) -> list[dict[str, Any]]:
        try:
            r = await asyncio.wait_for(d.peers.request(
                d.peer_addresses(n), d.config.daemon.api.port, "POST",
                f"/internal/commands/{GetFenceHistory.name}", GetFenceHistory().to_json()), HISTORY_TIMEOUT)
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
