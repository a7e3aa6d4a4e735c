"""The node daemon: membership thread + control loop + API.

Threads and loops (heartbeats are never late because of other work):

- the membership thread runs its own asyncio loop: it only sends and reads
  heartbeats and computes the membership view;
- the control loop (this module, the main thread) serves the API, replicates
  the configuration and, later, runs the controller; it reacts to views the
  membership thread hands over through a queue;
- heavy work (scheduling a large cluster, agent calls) goes to worker
  processes and subprocesses, never onto either loop.

The control loop never dies of one bad event: each step is guarded, logged
and retried on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from havm.alerts.dispatcher import AlertDispatcher
from havm.api.app import make_app
from havm.clock import Clock, SystemClock
from havm.commands.base import Command
from havm.config.load import LoadedConfig
from havm.config.schema import ClusterConfig
from havm.controller.controller import ClusterIO, Controller, FenceResult
from havm.daemon.fencing import gather as gather_fencing
from havm.daemon.fencing import watchdog_fence
from havm.daemon.handlers import CommandHandlers
from havm.daemon.local import NEVER_STARTS, LocalResources
from havm.daemon.peers import PeerClient
from havm.daemon.status import build_status, resources_view
from havm.daemon.term import ControllerTerm
from havm.errors import Conflict, HavmError, UsageError
from havm.events import EventLog
from havm.executor.records import ActionRecord, ActionRequest, LocalState
from havm.fencing.history import HISTORY_FILE, FenceHistory
from havm.fencing.policy import Fencer
from havm.fencing.records import FenceAttempt, FenceOutcome
from havm.membership import next_generation
from havm.membership.thread import MembershipThread
from havm.membership.view import MembershipView
from havm.metrics.recorder import MetricsRecorder
from havm.store import ConfigFileStore, ConfigReplica, ConfigVersion, StoredConfig
from havm.store.version import whole
from havm.watchdog.daemon import NodeWatchdog, watchdog_status

log = logging.getLogger("havm.daemon")

SYNC_INTERVAL = 1.0  # seconds between checks that our config is the newest
PUSH_TIMEOUT = 5.0


class NodeDaemon(ClusterIO):
    def __init__(self, bootstrap: LoadedConfig, node: str, key: bytes, state_dir: str,
                 socket_path: str, clock: Clock | None = None, run_dir: str | None = None) -> None:
        self.node = node
        self.key = key
        self.config_file = bootstrap.file  # relative paths (API tokens) resolve against it
        self.clock = clock or SystemClock()
        self.state_dir = state_dir
        self.socket_path = socket_path
        self.replica = ConfigReplica(ConfigFileStore(state_dir), bootstrap, node)
        self.config = self.replica.loaded.config
        if node not in self.config.node_names:
            raise UsageError(f"node {node!r} is not in the configuration (nodes: {', '.join(self.config.node_names)})")
        self.started_at = self.clock.wall()
        self.events = EventLog(node, os.path.join(state_dir, "events.jsonl"), self.clock)
        self.metrics = MetricsRecorder.for_daemon(self)  # what GET /metrics counts from events
        self.alerts = AlertDispatcher(self.events, self.clock)  # the alerts: section, off the loop
        self.term = ControllerTerm(self)  # the controller term a config change is made in
        self._app_info: dict[str, Any] = {}
        self.refresh_app_info()
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self.thread = MembershipThread.for_node(
            self.config, node, key, app_info=self.app_info, clock=self.clock,
            # persisted and strictly increasing: peers tell a restart from a replay even
            # if this host's clock was set back
            generation=next_generation(os.path.join(state_dir, "generation"), self.clock),
            realtime_priority=self.config.daemon.realtime_priority)
        self.membership = self.thread.service
        self.peers = PeerClient(key, node)
        self._views: asyncio.Queue[Any] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._runners: list[web.AppRunner] = []
        self._sync_lock = asyncio.Lock()
        # volatile resource state (what /run holds on a host): a lab node that was
        # power-cut loses it, a daemon restart does not
        self.run_dir = run_dir or os.path.join(state_dir, "run")
        self.local = LocalResources(node, self.run_dir, self.clock, self._local_changed, self._may_start)
        self.controller = Controller(node, self, self.clock, emit=self.events.emit)
        self.watchdog = NodeWatchdog.for_daemon(self)  # None without watchdog self-fencing
        self.fencer = Fencer(node, lambda: self.config.fencing, FenceHistory(os.path.join(state_dir, HISTORY_FILE)),
                             self.clock, on_attempt=self._fence_attempted, watchdog=watchdog_fence(self))
        self.handlers = CommandHandlers(self)
        self._last_view: MembershipView | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    # -- called from the membership thread: must only read an immutable value --
    def app_info(self) -> dict[str, Any]:
        return self._app_info

    def refresh_app_info(self) -> None:
        self._app_info = {"cfg": self.replica.version.to_wire(), "api": self.config.daemon.api.port,
                          "term": self.term.promised}

    # -- lifecycle --
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        def hand_over(view: MembershipView) -> None:  # runs on the membership thread
            loop.call_soon_threadsafe(self._views.put_nowait, view)

        self.membership.subscribe(hand_over)
        self.thread.start()  # raises (naming link and address) if a heartbeat socket cannot be bound
        await self._serve()
        self.local.configure(self.config)
        self.alerts.configure(self.config)
        self.alerts.start()
        if self.watchdog is not None:
            self.watchdog.start()  # raises (naming the device) if the watchdog is not there
        self._tasks.append(loop.create_task(self.controller.run()))
        log.info("havmd %s started (cluster %s, config %s)", self.node, self.config.cluster,
                 self.replica.version.short())
        self.events.emit("daemon.started", f"havmd {self.node} started (config {self.replica.version.short()})",
                         config=self.replica.version.to_wire())
        try:
            while not self._stop.is_set():
                try:
                    view = await asyncio.wait_for(self._views.get(), timeout=SYNC_INTERVAL)
                    await self._guarded(self._on_view(view))
                except TimeoutError:
                    pass
                self._enforce_quorum(self.view())
                await self._guarded(self.sync_config())
        finally:
            await self._shutdown()

    def _enforce_quorum(self, view: MembershipView) -> None:
        """Without quorum (once membership has settled), nothing may keep running here:
        also covers a node that never had quorum since it started, e.g. a daemon
        restarted inside a minority while its resources kept running."""
        if not view.quorate and view.settled and self.local.running():
            self.local.quorum_lost(self.config.properties.no_quorum_policy)

    async def _on_view(self, view: MembershipView) -> None:
        old = self._last_view
        self._last_view = view
        if old is not None and old.quorate and not view.quorate:
            log.warning("quorum lost (%s)", view.quorum_reason)
        self._record_view(old, view)
        if view.controller != self.node:
            self.term.resign("no longer the controller")
        self.term.learn_advertised(view)
        self.controller.observe(view)
        self._enforce_quorum(view)
        joined = set(view.members) - set(old.members if old else ())
        for n in joined:
            self.controller.node_seen(n)
        changed = old is None or (old.members, old.quorate, old.controller) != (
            view.members, view.quorate, view.controller)
        self.controller.poke("membership", abort=changed)

    def _record_view(self, old: MembershipView | None, view: MembershipView) -> None:
        before = set(old.members) if old else {self.node}
        for n in sorted(set(view.members) - before):
            self.events.emit("node.join", f"{n} joined", target=n, members=list(view.members))
        for n in sorted(before - set(view.members)):
            self.events.emit("node.leave", f"{n} left or was lost", target=n, members=list(view.members))
        was_quorate = bool(old and old.quorate)
        if view.quorate != was_quorate and (old is not None or view.quorate):
            kind = "quorum.gained" if view.quorate else "quorum.lost"
            self.events.emit(kind, f"{'quorum' if view.quorate else 'no quorum'}: {view.quorum_reason}",
                             members=list(view.members))
        if view.controller is not None and view.controller != (old.controller if old else None):
            self.events.emit("controller.changed", f"controller is {view.controller}", target=view.controller)

    def _local_changed(self, st: LocalState) -> None:
        """A resource here changed (e.g. a monitor failed): tell the controller now."""
        self.events.emit("resource.changed", f"{st.rsc} is {st.role} on {self.node}", rsc=st.rsc,
                         role=st.role, op=st.last_action, rc=st.last_rc, failcount=st.failcount)
        view = self.view()
        if view.controller == self.node:
            self.controller.poke(f"{st.rsc} is {st.role} here")
        elif view.controller is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(
                self._guarded(self._notify_controller(view.controller, st))))
            self._tasks = [t for t in self._tasks if not t.done()]

    async def _notify_controller(self, controller: str, st: LocalState) -> None:
        await self.ask_peer(controller, "POST", "/internal/poke", {"reason": f"{st.rsc} is {st.role} on {self.node}"})

    def stop(self) -> None:
        self._stop.set()

    async def _guarded(self, coro: Any) -> None:
        try:
            await coro
        except HavmError as e:
            log.warning("%s", e)
        except Exception:  # noqa: BLE001 - the loop never dies of one event
            log.exception("unexpected error in the control loop; continuing")

    async def _serve(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.socket_path)), exist_ok=True)
        self._remove_socket()
        unix = web.AppRunner(make_app(self, trusted=True), access_log=None)
        await unix.setup()
        old = os.umask(0o077)
        try:
            await web.UnixSite(unix, self.socket_path).start()
        finally:
            os.umask(old)
        self._runners.append(unix)
        tcp = web.AppRunner(make_app(self, trusted=False), access_log=None)
        await tcp.setup()
        for addr in self.config.node(self.node).addresses.values():
            try:
                await web.TCPSite(tcp, addr, self.config.daemon.api.port, reuse_address=True).start()
            except OSError as e:
                log.error("cannot serve the API on %s:%s: %s", addr, self.config.daemon.api.port, e.strerror)
        self._runners.append(tcp)

    def _remove_socket(self) -> None:
        """Remove the API's Unix socket file if there is one: before binding (a daemon that
        was killed left its socket behind) and when stopping."""
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def _may_start(self) -> str | None:
        """A node without quorum starts nothing, whoever asks (a deposed controller's
        request still in transit): it must stop what it runs, not add to it. Nor does a
        node whose own view is stale (it was frozen long enough to be declared dead: what
        it believes about members, quorum and its office may be false) until it has
        listened to its peers again."""
        view = self.view()
        if view.stale:
            return str(view.not_current)
        if view.quorate or self.config.properties.no_quorum_policy == "ignore":
            return None
        return f"{self.node} has no quorum ({view.quorum_reason or 'not settled'})"

    async def _shutdown(self) -> None:
        for t in self._tasks:
            t.cancel()
        # Stop what runs here before saying LEAVE: peers take a node that left
        # cleanly as holding nothing, and may start its resources at once.
        if self.watchdog is not None:
            self.watchdog.stopping()  # still fed while quorate: stopping a VM may take longer than its timeout
        # Nothing starts here any more; what is under way ends first (a start finishing
        # after the sweep below would leave its resource running on a node that left).
        self.local.leaving = True
        await self.local.settle()
        running = self.local.running()
        if running:
            log.info("stopping %s before leaving", ", ".join(running))
            await self.local.stop_all()
        still = self.local.running()
        if still:
            log.error("could not stop %s: going away without LEAVE so the cluster fences this node",
                      ", ".join(still))
        if self.watchdog is not None:
            self.watchdog.close()  # disarms only if nothing runs here any more
        self.thread.stop(leave=not still)
        await self.local.close()
        for r in self._runners:
            await r.cleanup()
        await self.peers.close()
        self._remove_socket()
        log.info("havmd %s stopped", self.node)
        self.events.emit("daemon.stopped", f"havmd {self.node} stopped")
        await self.alerts.close()  # bounded: queued alerts (daemon.stopped) get a few seconds

    # -- membership helpers --
    def view(self) -> Any:
        return self.membership.snapshot()

    def peer_addresses(self, node: str) -> list[str]:
        """The peer's addresses, those on links that carry its heartbeats first:
        a request must not wait for a timeout on a link that is down."""
        addrs = self.config.node(node).addresses
        try:
            links = self.view().peer(node).links
        except KeyError:
            links = {}
        rank = {"up": 0, "unknown": 1, "down": 2}
        ordered = sorted(addrs.items(), key=lambda kv: rank.get(links.get(kv[0], "unknown"), 1))
        return [addr for _, addr in ordered]

    async def ask_peer(self, node: str, method: str, path: str, body: Any = None,
                       timeout: float | None = None) -> Any:
        """Call ``node``'s API, signed with the cluster key, on its API port and over its
        addresses in ``peer_addresses`` order: how this daemon talks to any peer."""
        return await self.peers.request(self.peer_addresses(node), self.config.daemon.api.port, method, path,
                                        body, timeout=timeout)

    async def forward(self, node: str, cmd: Command, timeout: float | None = None) -> Any:
        """Have ``node`` carry out ``cmd`` (its handlers see it as forwarded by this node)."""
        return await self.ask_peer(node, "POST", f"/internal/commands/{cmd.name}", cmd.to_json(), timeout=timeout)

    def peer_versions(self) -> dict[str, ConfigVersion]:
        out: dict[str, ConfigVersion] = {}
        view = self.view()
        for name in view.members:
            if name == self.node:
                continue
            try:
                out[name] = ConfigVersion.from_wire(view.advertised(name, "cfg"))
            except ValueError:
                continue
        return out

    # -- configuration replication --
    async def sync_config(self) -> None:
        """Catch up with the newest configuration any member advertises."""
        async with self._sync_lock:
            source = self.replica.newest_peer(self.peer_versions())
            if source is None:
                return
            await self.fetch_config(source)

    async def fetch_config(self, source: str) -> None:
        """Fetch ``source``'s stored configuration and offer it here (adopted if newer and valid)."""
        self.offer_config(await self.ask_peer(source, "GET", "/internal/config"), sender=source)

    def offer_config(self, data: Any, sender: str, push: bool = False) -> dict[str, Any]:
        """Adopt a configuration fetched from ``sender`` or (``push``) pushed by its controller.

        A push is refused from a node outside our view (e.g. the late packets of a
        node the cluster fenced) and from a controller whose term is below the one
        this node promised: it was deposed, and what it pushes was never committed.
        """
        try:
            candidate = StoredConfig.from_json(data)
        except ValueError as e:
            raise UsageError(f"bad configuration offer from {sender}: {e}") from None
        refused = None
        if push and sender not in self.view().members:
            refused = f"{sender} is not a member of {self.node}'s view"
        elif push and candidate.version.term < self.term.promised:
            refused = (f"{sender} pushed {candidate.version.long()} in term {candidate.version.term}, "
                       f"below term {self.term.promised} promised here: a deposed controller's change")
        if refused is not None:
            log.warning("refusing configuration %s: %s", candidate.version.short(), refused)
            return self._offer_answer(False, refused)
        result = self.replica.offer(candidate)
        if result.adopted:
            self.term.learn(candidate.version.term)
            self.adopted()
        return self._offer_answer(result.adopted, result.reason)

    def _offer_answer(self, adopted: bool, reason: str) -> dict[str, Any]:
        """The answer to an offer, adopted or refused alike: with the version held here and
        the term promised here, read after the offer, so a controller that pushed learns
        whether this node holds its change and whether it was deposed (see ``push``)."""
        return {"adopted": adopted, "reason": reason, "version": self.replica.version.to_wire(),
                "term": self.term.promised}

    def adopted(self) -> None:
        old = self.config
        self.config = self.replica.loaded.config
        self.local.configure(self.config)
        self.alerts.configure(self.config)
        if self.watchdog is not None:
            self.watchdog.configure(self.config)
        self.controller.poke("configuration changed", abort=True)
        self.refresh_app_info()
        try:
            self.membership.update_config(self.config)
        except ValueError as e:
            log.warning("configuration %s changes what membership cannot follow live (%s): "
                        "restart havmd on every node to apply that part", self.replica.version.short(), e)
        if old.daemon.api.port != self.config.daemon.api.port:
            log.warning("daemon.api.port changed: takes effect when havmd restarts")

    # -- commands (the handlers live in daemon/handlers.py) --
    async def execute(self, cmd: Command, forwarded: bool = False, sender: str = "local") -> Any:
        return await self.handlers.execute(cmd, forwarded, sender)

    async def push(self, stored: StoredConfig) -> tuple[list[str], list[str]]:
        """Push to every member; return (nodes that hold it, members that do not).

        A member holds it only if it answers with exactly this version. A member that
        answers with a newer one refused ours (e.g. a controller that took office while we
        were frozen committed in a higher term): that version need not contain our change,
        and counting it as held reported a change committed that was then lost (chaos,
        migrate-freeze, two nodes). Conservative: a newer version of our own term that does
        contain it is not counted either; the change is then reported not committed.
        """
        view = self.view()
        others = [n for n in view.members if n != self.node]

        async def one(n: str) -> bool:
            try:
                r = await self.ask_peer(n, "POST", "/internal/config", stored.to_json(), timeout=PUSH_TIMEOUT)
                if whole(r.get("term")) and r["term"] > stored.version.term:
                    self.term.learn(r["term"])  # deposed: the next change claims a new term
                return ConfigVersion.from_wire(r.get("version")) == stored.version
            except (HavmError, ValueError) as e:
                log.warning("pushing config %s to %s failed: %s", stored.version.short(), n, e)
                return False

        results = await asyncio.gather(*(one(n) for n in others))
        acked = [self.node] + [n for n, ok in zip(others, results, strict=True) if ok]
        missing = [n for n, ok in zip(others, results, strict=True) if not ok]
        return sorted(acked), sorted(missing)

    # -- ClusterIO, for the controller --
    def cluster_config(self) -> ClusterConfig:
        return self.config

    def resource_report(self) -> dict[str, Any]:
        """This node's report for a controller (GET /internal/resources): what runs
        here, what is under way here, and the actions this node still drives as a
        controller (after it lost office it finishes those it started)."""
        rep = self.local.report()
        rep["controlling"] = sorted(self.controller.in_flight.values())
        rep["waiting"] = list(self.controller.waiting)  # as the controller: what it waits for to end
        return rep

    async def report(self, node: str) -> dict[str, Any]:
        if node == self.node:
            return self.resource_report()
        return await self.ask_peer(node, "GET", "/internal/resources")  # type: ignore[no-any-return]

    async def office(self) -> int:
        if not self.view().quorate:
            # no_quorum_policy ignore: nothing can be claimed; the operator waived the guarantee
            return self.term.promised
        return await self.term.ensure("no action is taken")

    async def execute_on(self, node: str, req: ActionRequest, term: int) -> ActionRecord:
        if term < self.term.promised:
            # deposed meanwhile (a successor's term seen in a heartbeat, a push, a refusal):
            # what this transition still holds is not ours to do
            raise Conflict(f"controller term {term} is over here (term {self.term.promised} since): "
                           f"{req.action} {req.rsc} on {node} not asked")
        try:
            rec = await self._execute_on(node, req, term)
        except HavmError as e:
            self.events.emit("action", f"{req.action} {req.rsc} on {node}: {e}", rsc=req.rsc, op=req.action,
                             target=node, ok=False, rc=None, error=str(e))
            raise
        self.events.emit("action", f"{req.action} {req.rsc} on {node}: "
                         f"{'ok' if rec.ok else 'failed rc=' + str(rec.rc)} ({rec.duration:.2f}s)",
                         rsc=req.rsc, op=req.action, target=node, ok=rec.ok, rc=rec.rc, duration=rec.duration)
        return rec

    async def _execute_on(self, node: str, req: ActionRequest, term: int) -> ActionRecord:
        if node == self.node:
            return await self.run_request(req, term, self.node)
        data = await self.ask_peer(node, "POST", "/internal/execute", {**asdict(req), "term": term},
                                   timeout=req.timeout + 10)
        return ActionRecord(**{k: v for k, v in data.items() if k in ActionRecord.__dataclass_fields__})

    async def run_request(self, req: ActionRequest, term: int, sender: str) -> ActionRecord:
        """Run an action a controller asked for in controller ``term`` (POST
        /internal/execute, or this node's own controller). An action that may start
        something is refused for a term below the one this node promised: its sender was
        deposed (frozen while a successor took office, or its request was in transit when
        it lost office) and the successor may already have placed that resource. Stops,
        demotes and looks run whatever the term: they never add a copy."""
        promised = self.term.promised
        if term < promised and req.action not in NEVER_STARTS:
            raise Conflict(f"{req.action} {req.rsc} asked by {sender} in controller term {term} is refused: "
                           f"{self.node} promised term {promised} to a later controller")
        if term > promised:
            self.term.learn(term)  # a term a majority promised without us: we follow it
        return await self.local.execute(req)

    async def fence(self, node: str, still_due: Callable[[], str | None]) -> FenceResult:
        outcome = await self.fence_node(node, f"controller {self.node}", still_due)
        if outcome.abandoned:
            self.events.emit("fence.abandoned", f"fence of {node} abandoned: {outcome.abandoned} (not fenced)",
                             target=node, reason=outcome.abandoned, waited=outcome.duration)
            return FenceResult.ABANDONED
        return FenceResult.OFF if outcome.ok else FenceResult.FAILED

    async def fence_node(self, node: str, requested_by: str,
                         still_due: Callable[[], str | None] | None = None) -> FenceOutcome:
        """Fence ``node`` from here (levels, retries, delay: havm.fencing.policy)."""
        return await self.fencer.fence(node, requested_by, still_due)

    def _fence_attempted(self, a: FenceAttempt) -> None:
        self.events.emit("fence", f"fencing {a.node} through {a.device or 'no device'}: "
                         f"{'confirmed off' if a.ok else 'FAILED: ' + a.error}", target=a.node, device=a.device,
                         level=a.level, attempt=a.attempt, ok=a.ok, rc=a.rc, duration=a.duration,
                         requested_by=a.requested_by)

    # -- status --
    async def gather_reports(self, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
        """Every member's resource report (those that answer within ``timeout``)."""
        members = list(self.view().members)

        async def one(n: str) -> tuple[str, dict[str, Any] | None]:
            try:
                return n, await asyncio.wait_for(self.report(n), timeout)
            except Exception:  # noqa: BLE001 - a silent member is shown as such
                return n, None

        return {n: r for n, r in await asyncio.gather(*(one(n) for n in members)) if r is not None}

    async def status_async(self) -> dict[str, Any]:
        reports, fenced = await asyncio.gather(self.gather_reports(), gather_fencing(self))
        doc = self.status(resources_view(self.config, reports, self.controller), fencing=fenced)
        doc["controller_waiting"] = list(reports.get(doc["controller"] or "", {}).get("waiting") or [])
        return doc

    def status(self, resources: list[dict[str, Any]] | None = None,
               fencing: dict[str, Any] | None = None) -> dict[str, Any]:
        doc = build_status(self.config, self.node, self.view(), self.replica.current, self.peer_versions(),
                           started_at=self.started_at, now=time.time(), resources=resources, fencing=fencing)
        doc["watchdog"] = watchdog_status(self)
        doc["controller_term"] = self.term.promised
        return doc
