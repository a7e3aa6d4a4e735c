"""Execute a transition: every action once its dependencies succeeded,
independent actions in parallel, as many at once as the limits allow.

On the first failure (or when ``abort`` is set, e.g. membership changed) no
new action starts, including those waiting for a slot; actions already
running finish; the result says what ran. The controller then re-plans from
the new state: a transition is a plan, never a promise.

Launching is O(actions + edges): each action keeps a count of its unmet
dependencies and becomes ready when it drops to zero (a 10,000-action
transition must not re-scan every pending action whenever one finishes).
Ready actions are taken in transition order; those that need a slot wait in
the :class:`~havm.controller.throttle.Gate` (batch_limit, node_action_limit,
migration_limit; fences never wait).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from havm.controller.throttle import Gate, Limits, SlotKey, slot_key
from havm.scheduler.transition import Action, Transition

log = logging.getLogger("havm.controller")


@dataclass
class GraphResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    aborted: bool = False
    throttled: list[str] = field(default_factory=list)  # had to wait for a free slot (then ran or was skipped)

    @property
    def complete(self) -> bool:
        return not self.failed and not self.skipped and not self.aborted


def _dependents(tr: Transition) -> tuple[list[int], list[list[int]]]:
    """Per action (by index in ``tr.actions``): how many of its dependencies are
    unmet, and which actions wait for it. Dependencies on ids that are not in the
    transition are ignored, as they always were."""
    index = {a.id: i for i, a in enumerate(tr.actions)}
    unmet = [0] * len(tr.actions)
    dependents: list[list[int]] = [[] for _ in tr.actions]
    for i, a in enumerate(tr.actions):
        deps = {index[d] for d in tr.after.get(a.id, ()) if d in index}
        unmet[i] = len(deps)
        for d in deps:
            dependents[d].append(i)
    return unmet, dependents


async def run_graph(tr: Transition, do: Callable[[Action], Awaitable[bool]],
                    abort: asyncio.Event | None = None, limits: Limits | None = None) -> GraphResult:
    """Run ``tr`` calling ``do(action) -> succeeded`` for each real action, at most
    ``limits`` (default: 16 in the cluster, no per-node limit) at once."""
    abort = abort or asyncio.Event()
    actions = tr.actions
    result = GraphResult()
    unmet, dependents = _dependents(tr)
    ready = [i for i, n in enumerate(unmet) if n == 0]  # ascending: already a heap
    started = [False] * len(actions)
    gate = Gate(limits or Limits())
    running: dict[asyncio.Task[bool], tuple[int, SlotKey | None]] = {}
    # tasks report their end here: waiting costs O(1) per action, where asyncio.wait
    # on every running task would cost O(running) each time one ends
    ended: asyncio.Queue[asyncio.Task[bool]] = asyncio.Queue()

    async def one(a: Action) -> bool:
        try:
            return await do(a)
        except Exception:  # noqa: BLE001 - one broken action must not kill the controller
            log.exception("action %s crashed", a.id)
            return False

    def succeeded(i: int) -> None:
        result.done.append(actions[i].id)
        for j in dependents[i]:
            unmet[j] -= 1
            if unmet[j] == 0:
                heapq.heappush(ready, j)

    def launch(i: int, key: SlotKey | None) -> None:
        started[i] = True
        task = asyncio.get_running_loop().create_task(one(actions[i]))
        running[task] = (i, key)
        task.add_done_callback(ended.put_nowait)

    stop_launching = False
    while True:
        if not stop_launching and (abort.is_set() or result.failed):
            stop_launching = True
            result.aborted = abort.is_set()
        if not stop_launching:
            queued: list[int] = []
            while ready:
                i = heapq.heappop(ready)
                a = actions[i]
                key = slot_key(a)
                if a.pseudo:
                    started[i] = True
                    succeeded(i)
                elif key is None:
                    launch(i, None)  # a fence: never waits for a slot
                else:
                    gate.queue(i, key)
                    queued.append(i)
            for i in gate.admit():
                launch(i, slot_key(actions[i]))
            result.throttled.extend(actions[i].id for i in queued if not started[i])
        if not running:
            break
        done = [await ended.get()]
        while not ended.empty():
            done.append(ended.get_nowait())
        for task in sorted(done, key=lambda t: running[t][0]):  # transition order, not the end order
            i, key = running.pop(task)
            if key is not None:
                gate.release(key)
            if task.result():
                succeeded(i)
            else:
                result.failed.append(actions[i].id)
    result.skipped = [a.id for i, a in enumerate(actions) if not started[i]]
    return result
