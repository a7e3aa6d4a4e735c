"""This node's resources: probes, monitors, actions the controller asks for,
and the rule every node applies on its own without quorum
(``properties.no_quorum_policy``):

- ``stop`` (default): stop everything here (a partition without quorum must
  not keep running what the quorate side will start);
- ``demote``: demote promoted instances of promotable clones, stop
  everything else; unpromoted instances keep running;
- ``freeze``: keep what runs, start nothing new (the controller of a
  non-quorate partition does nothing, so nothing new is asked of us);
- ``ignore``: carry on as if quorate (dangerous: see docs/watchdog.md).

A node asked to fence itself by its watchdog (``fence_self``) stops
everything too, at once and best effort (its watchdog resets it anyway), and
from then on answers no report and runs nothing but stops: the controller
must not place anything on a node about to be reset.

Runs on the control loop; agent actions run as subprocesses (executor).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from havm.clock import Clock
from havm.config.resources import walk_primitives
from havm.config.schema import ClusterConfig
from havm.controller.catalog import PrimitiveRun, catalog
from havm.errors import Conflict
from havm.executor.executor import OBSERVING, Executor
from havm.executor.records import PRESENT, ActionRecord, ActionRequest, LocalState

log = logging.getLogger("havm.local")

PROBE_CONCURRENCY = 4
RUNNING = PRESENT  # a copy may run here
# nothing that starts anything (looks, and what removes a copy): what a node fencing itself
# or leaving still accepts
NEVER_STARTS = OBSERVING | {"stop", "demote", "migrate_abort"}
SETTLE_POLL = 0.05  # seconds between looks while waiting for actions under way to end


class LocalResources:
    def __init__(self, node: str, run_dir: str, clock: Clock,
                 on_change: Callable[[LocalState], None], may_start: Callable[[], str | None] = lambda: None) -> None:
        """``may_start()`` says why nothing may start here now (e.g. no quorum), or None."""
        self.node = node
        self.may_start = may_start
        self.run_dir = run_dir
        self.executor = Executor(node, clock, on_change=on_change, default_params=self._defaults)
        self.catalog: dict[str, PrimitiveRun] = {}
        self.address: str | None = None  # this node's address on its first link
        self.probed = False  # every configured resource probed since the last config change
        self._probe_task: asyncio.Task[None] | None = None
        self._quorum_stop: asyncio.Task[None] | None = None
        self._promotable: set[str] = set()  # primitives of promotable clones (policy demote)
        self.fencing_self = ""  # set by fence_self: why (who asked); nothing starts here any more
        self.leaving = False  # set by the daemon's shutdown: nothing starts here any more

    def _defaults(self, rsc: str, agent: str) -> dict[str, Any]:
        # node-local state for agents whose state lives in files: lab nodes share a
        # filesystem, and one node's dummy must not look like it runs on another
        if agent == "havm:dummy":
            return {"state_dir": os.path.join(self.run_dir, "dummy")}
        if agent in ("havm:vm", "havm:qemu"):
            # host-side settings of a VM: where its pidfile and sockets live, and the
            # address a migration source connects to (this node's first link)
            out: dict[str, Any] = {"run_dir": os.path.join(self.run_dir, "qemu")}
            if self.address:
                out["migration_host"] = self.address
            return out
        return {}

    def configure(self, config: ClusterConfig) -> None:
        """Follow a (new) configuration: monitors, and probes of resources not yet probed."""
        self.address = next(iter(config.node(self.node).addresses.values()), None)
        new = catalog(config)
        self._promotable = {p.id for p, _g, c in walk_primitives(list(config.resources)) if c and c.promotable}
        added = [r for r in new if r not in self.catalog or new[r] != self.catalog[r]]
        for rsc in self.catalog:
            if rsc not in new:
                self.executor.set_monitor(None, rsc)
        self.catalog = new
        for rsc, run in new.items():
            self.executor.set_monitor(run.monitor_request(), rsc)
        if added:
            self.probed = False
            self._probe_task = asyncio.get_running_loop().create_task(self._probe(added))

    async def _probe(self, rscs: list[str]) -> None:
        sem = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def one(rsc: str) -> None:
            async with sem:
                run = self.catalog.get(rsc)
                if run is not None:
                    await self.executor.execute(run.request("monitor"))

        await asyncio.gather(*(one(r) for r in rscs))
        self.probed = True
        log.info("probed %d resource(s): %s", len(rscs),
                 ", ".join(f"{r}={self.executor.state(r).role}" for r in rscs) or "none")

    def report(self) -> dict[str, Any]:
        """What runs here, for the controller (GET /internal/resources)."""
        if self.fencing_self:
            # no report, so no controller plans with this node until it is gone
            raise Conflict(f"{self.node} is fencing itself ({self.fencing_self}): its watchdog resets it")
        return {"node": self.node, "probed": self.probed,
                "states": {r: s.to_json() for r, s in self.executor.states().items()},
                "in_flight": dict(self.executor.in_flight), "changing": self.executor.changing()}

    def refusal(self, action: str) -> str | None:
        """Why ``action`` may not run here now, or None. Only actions that may start
        something are ever refused (stops, demotes and looks always run)."""
        if action in NEVER_STARTS:
            return None
        if self.fencing_self:
            return f"{self.node} is fencing itself ({self.fencing_self})"
        if self.leaving:
            return f"{self.node} is shutting down"
        return self.may_start()

    async def execute(self, req: ActionRequest) -> ActionRecord:
        why = self.refusal(req.action)
        if why:
            raise Conflict(f"{why}: {req.action} {req.rsc} refused")
        run = self.catalog.get(req.rsc)
        if run is not None and not req.params:
            req = run.request(req.action, req.args, req.interval)
        return await self.executor.execute(req)

    def cleanup(self, rsc: str) -> bool:
        """Forget ``rsc``'s failures here and probe it again. True if it is configured."""
        run = self.catalog.get(rsc)
        if run is None:
            return False
        self.executor.clear_failures(rsc)
        asyncio.get_running_loop().create_task(self.executor.execute(run.request("monitor")))
        return True

    def running(self) -> list[str]:
        return sorted(r for r, s in self.executor.states().items() if s.role in RUNNING)

    def stop_failed(self) -> list[str]:
        """Resources whose stop failed here: they may still run; only fencing makes them safe."""
        return sorted(r for r, s in self.executor.states().items() if s.role == "stop-failed")

    def quorum_lost(self, policy: str) -> None:
        """No quorum: apply ``policy`` (module doc). Idempotent: called on every
        round of the control loop while there is no quorum."""
        if policy in ("freeze", "ignore") or not self.running():
            return
        if self._quorum_stop is None or self._quorum_stop.done():
            work = self.stop_all() if policy == "stop" else self.demote_all()
            self._quorum_stop = asyncio.get_running_loop().create_task(work)

    def fence_self(self, why: str) -> None:
        """This node fences itself (its watchdog is no longer fed): stop everything now,
        best effort, and start nothing from now on."""
        self.fencing_self = self.fencing_self or why
        if self.running() and (self._quorum_stop is None or self._quorum_stop.done()):
            self._quorum_stop = asyncio.get_running_loop().create_task(self.stop_all())

    async def demote_all(self) -> None:
        """Policy demote: promoted instances are demoted, everything not a promotable
        clone's instance is stopped (as the scheduler's demote mode plans it)."""
        states = self.executor.states()
        for r in reversed(self.catalog):
            role = states[r].role if r in states else "stopped"
            if r in self._promotable and role == "promoted":
                await self.executor.execute(self.catalog[r].request("demote"))
            elif r not in self._promotable and r in self.running():
                await self.executor.execute(self.catalog[r].request("stop"))

    async def settle(self) -> None:
        """Wait until no action that may change a resource is under way or queued here.
        Each has a timeout, so this ends. Before a clean LEAVE: a start under way would
        otherwise bring its resource up after the stop sweep, on a node its peers then take
        as holding nothing."""
        said = None
        while changing := self.executor.changing():
            what = "; ".join(f"{', '.join(a)} {r}" for r, a in sorted(changing.items()))
            if what != said:
                log.warning("waiting for %s to end before stopping", what)
                said = what
            await asyncio.sleep(SETTLE_POLL)

    async def stop_all(self) -> None:
        # reverse configuration order, one at a time: a group's members stop in
        # reverse start order (the service before its filesystem and address)
        names = [r for r in reversed(self.catalog) if r in self.running()]
        log.warning("stopping %s", ", ".join(names))
        for r in names:
            await self.executor.execute(self.catalog[r].request("stop"))

    async def close(self) -> None:
        await self.executor.close()
