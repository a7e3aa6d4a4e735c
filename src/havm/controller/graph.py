"""Execute a transition: every action once its dependencies succeeded,
independent actions in parallel.

On the first failure (or when ``abort`` is set, e.g. membership changed) no
new action starts; actions already running finish; the result says what ran.
The controller then re-plans from the new state: a transition is a plan,
never a promise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from havm.scheduler.transition import Action, Transition

log = logging.getLogger("havm.controller")


@dataclass
class GraphResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    aborted: bool = False

    @property
    def complete(self) -> bool:
        return not self.failed and not self.skipped and not self.aborted


async def run_graph(tr: Transition, do: Callable[[Action], Awaitable[bool]],
                    abort: asyncio.Event | None = None, limit: int = 16) -> GraphResult:
    """Run ``tr`` calling ``do(action) -> succeeded`` for each real action."""
    abort = abort or asyncio.Event()
    result = GraphResult()
    by_id = {a.id: a for a in tr.actions}
    waits = {a.id: set(tr.after.get(a.id, ())) & set(by_id) for a in tr.actions}
    pending = [a.id for a in tr.actions]  # topological order
    finished: set[str] = set()
    running: dict[asyncio.Task[bool], str] = {}
    sem = asyncio.Semaphore(limit)

    async def one(a: Action) -> bool:
        async with sem:
            try:
                return await do(a)
            except Exception:  # noqa: BLE001 - one broken action must not kill the controller
                log.exception("action %s crashed", a.id)
                return False

    stop_launching = False
    while pending or running:
        if not stop_launching and (abort.is_set() or result.failed):
            stop_launching = True
            result.aborted = abort.is_set()
        if not stop_launching:
            launched = True
            while launched:
                launched = False
                for aid in list(pending):
                    if waits[aid] <= finished:
                        pending.remove(aid)
                        a = by_id[aid]
                        if a.pseudo:
                            finished.add(aid)
                            result.done.append(aid)
                            launched = True
                        else:
                            running[asyncio.get_running_loop().create_task(one(a))] = aid
        if not running:
            break
        done, _ = await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            aid = running.pop(task)
            if task.result():
                finished.add(aid)
                result.done.append(aid)
            else:
                result.failed.append(aid)
    result.skipped = [aid for aid in pending]
    return result
