"""Gather the cluster's history (``GetHistory``): every member's events, merged by time."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from havm.commands.history import GetHistory
from havm.events.log import Event, merge

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

log = logging.getLogger("havm.daemon")

TIMEOUT = 3.0


async def gather_history(d: NodeDaemon, q: GetHistory) -> dict[str, Any]:
    """``{"events": [...oldest first, at most q.limit], "nodes": {member: "ok" | why not}}``."""
    members = list(d.view().members) or [d.node]

    async def one(n: str) -> tuple[str, list[Event] | str]:
        if n == d.node:
            return n, d.events.recent(since=q.since, kinds=q.kinds or (), resource=q.resource, node=q.node,
                                      limit=q.limit)
        try:
            r = await asyncio.wait_for(d.ask_peer(n, "POST", "/internal/events", q.to_json()["params"]), TIMEOUT)
            return n, [Event.from_json(e) for e in r.get("events", [])]
        except Exception as e:  # noqa: BLE001 - a silent member leaves a named gap, not an error
            log.warning("history: no events from %s: %s", n, e)
            return n, f"no answer: {e}"

    answers = await asyncio.gather(*(one(n) for n in members))
    logs = [a for _, a in answers if not isinstance(a, str)]
    events = merge(*logs)[-q.limit:]
    return {"events": [e.to_json() for e in events],
            "nodes": {n: ("ok" if not isinstance(a, str) else a) for n, a in answers}}
