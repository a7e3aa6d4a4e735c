"""The executor: runs agent actions on this node and keeps resources watched.

Guarantees:
- never two actions at once for one resource (a lock per resource);
- an action that may change a resource (anything but a look, ``OBSERVING``)
  runs to its end and is accounted even if its caller is cancelled, and is
  listed by ``changing()`` from the call (queued included) until it ends;
- every action has a timeout; on timeout its process group is killed and the
  action counts as failed (a stop that times out is a failed stop);
- a resource that runs here is monitored at its configured interval; a
  monitor that finds it broken records a failure (failcount, time) and tells
  the controller at once (``on_change``);
- probes (a one-shot monitor) at start and on request tell the cluster what
  already runs here, so it never starts a second copy.

Everything it learns is in ``states()`` (per resource) and ``history``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from havm.agents.base import OCF
from havm.clock import Clock
from havm.errors import HavmError
from havm.executor.invoke import ForkServer, Progress, invoke
from havm.executor.records import ActionRecord, ActionRequest, History, LocalState
from havm.executor.registry import resolve

log = logging.getLogger("havm.executor")

INFINITY = 1_000_000
# actions that only look: they never change whether or where a resource runs
OBSERVING = frozenset(("monitor", "meta_data", "validate", "migrate_check"))
MONITOR_RCS_RUNNING = {OCF.SUCCESS: "started", OCF.RUNNING_PROMOTED: "promoted"}
# havm's own migration phases: OCF agents answer "unimplemented" (rc 3), which is no failure
NOT_EVERY_AGENT = frozenset(("migrate_prepare", "migrate_abort", "migrate_recover"))


def role_after(action: str, rc: int, before: str) -> tuple[str, bool]:
    """The resource's role here after ``action`` returned ``rc``, and whether it is a failure."""
    if action in ("monitor",):
        if rc in MONITOR_RCS_RUNNING:
            return MONITOR_RCS_RUNNING[OCF(rc)], False
        if rc == OCF.NOT_RUNNING:
            # a probe finding it stopped is news, not a failure; a recurring monitor
            # of a running resource finding it stopped is a failure
            return "stopped", before in ("started", "promoted")
        return "failed", True
    if rc == OCF.ERR_UNIMPLEMENTED and action in NOT_EVERY_AGENT:
        return before, False  # an OCF agent has no such phase: the controller does without it
    if rc != OCF.SUCCESS:
        if action == "stop":
            return "stop-failed", True
        if action in ("migrate_to", "migrate_check", "migrate_prepare"):
            return before, True
        return "failed", True
    # after migrate_to the source holds a paused, stale copy until its stop:
    # "migrated" (not monitored, still counted as present until stopped).
    # After migrate_prepare the target holds an incoming copy that runs the guest as
    # soon as the source's stream ends: "incoming" (not monitored, present) until
    # migrate_from, migrate_abort or a stop says which. A controller that took office
    # between the phases (the one driving them died) must not read it as stopped.
    return {"start": "started", "stop": "stopped", "promote": "promoted", "demote": "started",
            "migrate_prepare": "incoming", "migrate_to": "migrated", "migrate_from": "started",
            "migrate_abort": "stopped", "migrate_recover": "started"}.get(action, before), False


def _log_unawaited_failure(task: asyncio.Task[ActionRecord]) -> None:
    """A shielded action whose caller was cancelled: nobody else sees its crash."""
    if not task.cancelled() and task.exception() is not None:
        log.error("an action crashed: %r", task.exception())


class Executor:
    def __init__(self, node: str, clock: Clock, on_change: Callable[[LocalState], None] | None = None,
                 default_params: Callable[[str, str], dict[str, Any]] | None = None) -> None:
        """``default_params(rsc, agent)`` adds node-local defaults (e.g. a dummy's state dir)."""
        self.node = node
        self.clock = clock
        self.on_change = on_change or (lambda s: None)
        self.default_params = default_params or (lambda rsc, agent: {})
        self.history = History()
        self._states: dict[str, LocalState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        self._monitor_req: dict[str, ActionRequest] = {}
        self.in_flight: dict[str, str] = {}  # rsc -> action running now
        self._changing: dict[str, list[str]] = {}  # rsc -> actions that may change it, running or queued
        self.fork_server = ForkServer()

    # -- state --
    def states(self) -> dict[str, LocalState]:
        return dict(self._states)

    def state(self, rsc: str) -> LocalState:
        return self._states.get(rsc) or LocalState(rsc)

    def clear_failures(self, rsc: str) -> None:
        st = self.state(rsc)
        role = "stopped" if st.role == "failed" else st.role
        self._set(replace(st, failcount=0, last_failure=None, role=role))

    def _set(self, st: LocalState) -> None:
        old = self._states.get(st.rsc)
        self._states[st.rsc] = st
        if old != st:
            self.on_change(st)

    # -- actions --
    def changing(self) -> dict[str, list[str]]:
        """Resources with an action under way or waiting for its turn that may change
        whether they run here (anything but a look: ``OBSERVING``), oldest first. Until
        it ends, this node's report of those resources is not yet the truth: a
        controller must not plan from it (a start under way reads "stopped")."""
        return {rsc: list(acts) for rsc, acts in self._changing.items()}  # (an entry ends with its last action)

    async def execute(self, req: ActionRequest, progress: Progress | None = None) -> ActionRecord:
        lock = self._locks.setdefault(req.rsc, asyncio.Lock())
        if req.action in OBSERVING:
            async with lock:
                return await self._run(req, progress)
        # An action that may change a resource runs to its end and is accounted even if its
        # caller is cancelled (a daemon shutting down cancels its controller mid-transition):
        # cancelling the wait would orphan the agent's process, which would then change the
        # resource behind the executor's back (a start finishing after the stop sweep).
        self._changing.setdefault(req.rsc, []).append(req.action)
        task = asyncio.ensure_future(self._run_changing(req, progress, lock))
        task.add_done_callback(_log_unawaited_failure)
        return await asyncio.shield(task)

    async def _run_changing(self, req: ActionRequest, progress: Progress | None, lock: asyncio.Lock) -> ActionRecord:
        try:
            async with lock:
                return await self._run(req, progress)
        finally:
            acts = self._changing[req.rsc]
            acts.remove(req.action)
            if not acts:
                del self._changing[req.rsc]

    async def _run(self, req: ActionRequest, progress: Progress | None) -> ActionRecord:
        started = self.clock.wall()
        self.in_flight[req.rsc] = req.action
        try:
            try:
                ref = resolve(req.agent)
                params = {**self.default_params(req.rsc, req.agent), **req.params}
                rc, output, data, duration = await invoke(ref, req.rsc, params, req.action, req.timeout,
                                                          req.interval, req.args, progress, self.fork_server)
            except HavmError as e:
                rc, output, data, duration = int(OCF.ERR_INSTALLED), str(e), {}, 0.0
        finally:
            self.in_flight.pop(req.rsc, None)
        rec = ActionRecord(self.node, req.rsc, req.action, rc, started, duration, output, req.interval, data)
        self.history.add(rec)
        self._account(req, rec)
        level = logging.INFO if rec.ok or (req.action == "monitor" and rc == OCF.NOT_RUNNING) else logging.WARNING
        log.log(level, "%s %s%s: rc=%s (%s) in %.3fs", req.action, req.rsc,
                f" (interval {req.interval:g}s)" if req.interval else "", rc,
                OCF(rc).meaning if rc in OCF._value2member_map_ else "?", duration)
        return rec

    def _account(self, req: ActionRequest, rec: ActionRecord) -> None:
        before = self.state(req.rsc)
        role, failed = role_after(req.action, rec.rc, before.role)
        st = replace(before, role=role, last_rc=rec.rc, last_action=req.action,
                     probed=before.probed or (req.action == "monitor" and req.interval == 0))
        if failed:
            # a failed start makes this node unusable for the resource until cleanup
            # (Pacemaker's start-failure-is-fatal); other failures count one
            bump = INFINITY if req.action == "start" else 1
            st = replace(st, failcount=min(INFINITY, st.failcount + bump), last_failure=rec.started_at)
        self._set(st)
        if role in ("started", "promoted") and req.action != "monitor" or (
                req.action == "monitor" and req.interval == 0 and role in ("started", "promoted")):
            self._arm_monitor(req.rsc)
        elif role not in ("started", "promoted"):
            self._disarm_monitor(req.rsc)

    # -- recurring monitors --
    def set_monitor(self, req: ActionRequest | None, rsc: str) -> None:
        """Declare (or, with None, remove) the recurring monitor of ``rsc``."""
        if req is None or req.interval <= 0:
            self._monitor_req.pop(rsc, None)
            self._disarm_monitor(rsc)
            return
        changed = self._monitor_req.get(rsc) != req
        self._monitor_req[rsc] = req
        if changed and rsc in self._monitors:
            self._disarm_monitor(rsc)
            self._arm_monitor(rsc)

    def _arm_monitor(self, rsc: str) -> None:
        req = self._monitor_req.get(rsc)
        if req is None or (rsc in self._monitors and not self._monitors[rsc].done()):
            return
        self._monitors[rsc] = asyncio.get_running_loop().create_task(self._monitor_loop(req))

    def _disarm_monitor(self, rsc: str) -> None:
        task = self._monitors.pop(rsc, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _monitor_loop(self, req: ActionRequest) -> None:
        while True:
            await asyncio.sleep(req.interval)
            if self.state(req.rsc).role not in ("started", "promoted"):
                return
            try:
                rec = await self.execute(req)
            except Exception:  # noqa: BLE001 - a monitor loop never dies of one error
                log.exception("monitor of %s crashed; retrying", req.rsc)
                continue
            if self.state(req.rsc).role not in ("started", "promoted"):
                log.warning("monitor: %s failed here (rc=%s)", req.rsc, rec.rc)
                self._monitors.pop(req.rsc, None)
                return

    async def probe(self, reqs: Mapping[str, ActionRequest]) -> dict[str, ActionRecord]:
        """One-shot monitor of each resource, in parallel (different resources)."""
        results = await asyncio.gather(*(self.execute(r) for r in reqs.values()))
        return {r.rsc: r for r in results}

    async def close(self) -> None:
        for task in list(self._monitors.values()):
            task.cancel()
        self._monitors.clear()
        self.fork_server.close()
