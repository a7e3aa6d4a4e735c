"""The controller: on the controller node of a quorate partition, keep the
cluster where the configuration says it should be.

Each cycle: take one snapshot (membership view, configuration, every
member's resource report), plan (pure scheduler, in a worker thread), run the
transition, and say what it did in one readable verdict ("n2 lost; fencing
n2 before recovering vm1"). Any change (membership, configuration, a
resource report, an action result) pokes it to cycle again.

Safety:
- it acts only while this node is the controller of a quorate partition, and
  only in a controller term a majority promised (claimed on taking office, once
  nothing is under way; the reports are read again after the claim): every
  action carries that term, and a node refuses to start anything for a term
  below the one it promised, so a controller deposed while frozen, or its
  request still in transit, cannot act beside its successor; nor does it plan
  while its own membership view is stale (frozen long enough to have been
  declared dead);
- on taking office it rebuilds what runs where from every member before
  acting (it never trusts a previous controller's memory), and it plans only
  from reports with nothing under way: while a member runs (or queues) an
  action that may change a resource, or still drives a transition it began as
  controller, it waits (a start under way reads "stopped");
- a node that is not a member and did not leave cleanly is unclean: the
  scheduler orders its fencing before any recovery of its resources, and a
  failed fence stops the transition (retried, loudly, never skipped);
- a node no device can fence, in a cluster with a watchdog, counts as fenced
  only once this node has seen it lost for ``fencing_watchdog_timeout``
  (``selffence.py``); a node that can be fenced neither way is never taken
  as fenced: its resources stay stopped, said loudly every cycle;
- a failed stop escalates to fencing of that node (``snapshot.py``);
- a fence is re-checked once its delay is over and before each attempt: a
  target that became a member again since the fence was decided, or this
  node out of office, abandons it (not fenced: nothing of it is recovered);
- a membership change abandons the cycle's report fetches: the incumbent
  never sits out a lost node's report timeout while the other side of a
  two-node split, whose fence delay was meant to let it shoot first, acts;
  and it gives up the actions under way on a node that left (outcome
  unknown: the node is unclean, so fenced before anything of it is
  recovered), so a lost node's fence never waits for an action's timeout.

``no_quorum_policy``: without quorum nobody acts (stop, freeze, demote: each
node applies the policy to its own resources, daemon/local.py), except with
``ignore``, where the lowest-named member of a settled partition acts as if
it were quorate (dangerous, documented).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from havm.clock import Clock
from havm.config.schema import ClusterConfig
from havm.config.watchdog import effective_fencing_watchdog_timeout, self_fencing_nodes
from havm.controller.catalog import PrimitiveRun, catalog
from havm.controller.graph import GraphResult, run_graph
from havm.controller.selffence import FenceVerdict, LossClock, fence_verdict
from havm.controller.snapshot import build_state
from havm.controller.throttle import Limits
from havm.errors import Conflict, HavmError
from havm.executor.records import ActionRecord, ActionRequest
from havm.membership.view import MembershipView
from havm.scheduler import plan
from havm.scheduler.model import ClusterSpec
from havm.scheduler.transition import Action, Transition

log = logging.getLogger("havm.controller")

TICK = 5.0  # re-check even without events (failure timeouts expire, fences retried)
FENCE_RETRY_FIRST = 1.0  # after a failed fence, wait this long before the next attempt on that node,
FENCE_RETRY_MAX = 30.0  # doubling up to this: a refusing BMC is retried, never hammered, never skipped
REPORT_TIMEOUT = 5.0
UNDER_WAY_RECHECK = 0.25  # while members report actions under way, look again this often
STALE_RECHECK = 0.25  # while this node's own membership view is stale, look again this often
REFUSED_RETRY = 0.5  # after a node refused an action (not quorate yet in its own view...), plan again


class FenceResult(StrEnum):
    OFF = "off"  # confirmed off
    FAILED = "failed"  # not confirmed: retried with backoff, never skipped
    # given up before an attempt because ``still_due`` said so (the node rejoined, or we are
    # no longer in charge): NOT fenced, so nothing of the node is recovered elsewhere
    ABANDONED = "abandoned"


class ClusterIO(ABC):
    """What the controller needs from its daemon. Every method may raise HavmError."""

    @abstractmethod
    def view(self) -> MembershipView: ...

    @abstractmethod
    def cluster_config(self) -> ClusterConfig: ...

    @abstractmethod
    async def report(self, node: str) -> Mapping[str, Any]:
        """That node's report (NodeDaemon.resource_report()): ``probed``, ``states``,
        ``changing`` (rsc -> actions under way or queued that may change it) and
        ``controlling`` (the actions that node still drives as a controller)."""

    @abstractmethod
    async def office(self) -> int:
        """The controller term to act in: held, or claimed now from a majority of votes
        (havm.daemon.term). Raises HavmError if it cannot be claimed."""

    @abstractmethod
    async def execute_on(self, node: str, req: ActionRequest, term: int) -> ActionRecord:
        """Run one action on ``node`` for controller term ``term`` and return its record.
        Raises Conflict if the node refuses it (no quorum, a stale view, a term below the
        one it promised: nothing ran) and HavmError if it cannot be asked."""

    @abstractmethod
    async def fence(self, node: str, still_due: Callable[[], str | None]) -> FenceResult:
        """Power ``node`` off; OFF only if it is confirmed off. ``still_due`` is asked after
        the fence delay and before every attempt; a reason it returns abandons the fence."""


@dataclass
class Verdict:
    """What one cycle decided and did; logged, kept for status, asserted in tests."""

    at: float
    summary: str
    actions: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    placement: dict[str, Any] = field(default_factory=dict)


def _no_event(kind: str, text: str, **fields: Any) -> None:
    return None


class Controller:
    def __init__(self, node: str, io: ClusterIO, clock: Clock, emit: Callable[..., Any] = _no_event) -> None:
        self.node = node
        self.io = io
        self.clock = clock
        self.emit = emit
        self.losses = LossClock()  # when this node saw each node lost (watchdog fencing)
        self._fence_waits: dict[str, FenceVerdict] = {}  # node -> why its fence cannot be done yet
        self._deferred: set[str] = set()  # fence actions of this transition that could not be done yet
        self._abandoned: set[str] = set()  # fence actions of this transition given up (target back, out of office)
        self._refused = False  # a node refused an action of this transition (retry shortly)
        self._term = 0  # the controller term this transition's actions carry (ClusterIO.office)
        self._stale = False  # the last cycle found this node's view stale (said once per episode)
        self._fence_retry: dict[str, tuple[int, float]] = {}  # node -> (failed fences in a row, not before)
        self._fence_retry_config: object = None  # the configuration those failures were made with
        self.active = False
        self.reports: dict[str, Mapping[str, Any]] = {}
        self.waiting: list[str] = []  # what the last refresh found under way (logged once; in status)
        self.fenced: set[str] = set()
        self.verdicts: list[Verdict] = []
        self.in_flight: dict[str, str] = {}  # action id -> description
        self.last_transition: Transition | None = None
        self._poke = asyncio.Event()
        self._abort = asyncio.Event()
        self._migrations: dict[str, dict[str, Any]] = {}  # rsc -> last migration's figures
        self._migrated_from: set[tuple[str, str]] = set()  # (rsc, source) migrated in this transition
        self._outside_since: dict[str, float] = {}  # peer heard but not a member -> since when
        self._members_seen: tuple[str, ...] | None = None
        self._members_changed = asyncio.Event()  # set (and replaced) when the members change
        self._planned_on: MembershipView | None = None

    # -- events --
    def poke(self, reason: str = "", abort: bool = False) -> None:
        self._poke.set()
        if abort:
            self._abort.set()

    def observe(self, view: MembershipView) -> None:
        """Every membership view, whether or not we are the controller (LossClock)."""
        self.losses.observe(view, self.node, self.io.cluster_config().node_names, self.clock.monotonic())
        if view.members != self._members_seen:
            self._members_seen = view.members
            self._members_changed.set()  # wakes the actions waiting on a remote node (_exec)
            self._members_changed = asyncio.Event()

    def node_fenced(self, node: str) -> None:
        """``node`` is confirmed off (by us, or by hand): nothing runs there any more."""
        self.fenced.add(node)
        self.reports.pop(node, None)
        self.poke(f"{node} fenced")

    def node_seen(self, node: str) -> None:
        """A node (re)joined: it is no longer 'fenced' (it runs again, reports anew)."""
        self.fenced.discard(node)
        self._fence_waits.pop(node, None)
        self._fence_retry.pop(node, None)

    def fence_waits(self) -> dict[str, dict[str, Any]]:
        """Fences that cannot be done yet (watchdog waits, impossible fences), for status."""
        return {n: {"state": v.state, "remaining": round(v.remaining, 3), "reason": v.reason}
                for n, v in self._fence_waits.items()}

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._poke.wait(), TICK)
            except TimeoutError:
                pass
            self._poke.clear()
            self._abort.clear()
            try:
                again = await self.cycle()
            except Exception:  # noqa: BLE001 - the controller never dies of one cycle
                log.exception("controller cycle failed; retrying")
                again = False
                await asyncio.sleep(1.0)
            if again:
                self._poke.set()

    # -- one cycle --
    async def cycle(self) -> bool:
        """Returns True if another cycle should follow at once."""
        view = self.io.view()
        if view.stale:
            # frozen long enough to have been declared dead: office, members and reports
            # as we believe them may all be false; listen first (a deposed controller
            # resuming mid-transition must not go on with it)
            log.log(logging.DEBUG if self._stale else logging.WARNING,
                    "not planning: %s", view.not_current)
            self._stale = True
            asyncio.get_running_loop().call_later(STALE_RECHECK, self.poke, "membership view current again?")
            return False
        self._stale = False
        self.observe(view)
        if not self._in_charge(view):
            if self.active:
                log.info("no longer the controller (quorate=%s, controller=%s)", view.quorate, view.controller)
            self.active = False
            self.reports.clear()
            self.waiting = []
            return False
        if not view.settled:
            # within initdead some peers are not heard yet: they are neither members nor
            # dead, and treating them as unclean would fence nodes that are still booting
            return False
        joining = self._joining(view)
        if joining:
            # heard but not yet a member (it does not list us yet): a node joining, or
            # a one-way link. Wait up to deadtime for it to become a member; only then
            # may the plan treat it as unclean (and fence it).
            log.debug("waiting for %s to join before acting", ", ".join(joining))
            return False
        if not self.active:
            log.info("taking office as controller: rebuilding state from %s", ", ".join(view.members))
            self.active = True
            self.reports.clear()
        if not await self._refresh(view):
            return False
        if self.io.view().members != view.members:
            return False  # the view moved on while we fetched: its poke starts a cycle on the new one
        try:
            # Every action carries the term; a node refuses to start anything for a term
            # below the one it promised, so a deposed controller (frozen, then resumed
            # mid-transition; or its request still in transit) cannot act beside this one.
            # Claimed once nothing is under way (a predecessor finishing a migration is not
            # cut off mid-way), and the reports are fetched again after a new claim: a
            # request of an older term that reached a member before it shows there, any
            # later one is refused.
            term = await self.io.office()
        except HavmError as e:
            log.warning("not acting: %s", e)
            asyncio.get_running_loop().call_later(REFUSED_RETRY, self.poke, "claim the controller term again")
            return False
        if term != self._term:
            self._term = term
            if not await self._refresh(view) or self.io.view().members != view.members:
                return False
        config = self.io.cluster_config()
        if config is not self._fence_retry_config:  # a new configuration (a fixed device?): fence at once
            self._fence_retry.clear()
            self._fence_retry_config = config
        spec = ClusterSpec.from_config(config)
        if not spec.primitives:
            return False
        fencing = config.properties.fencing_enabled
        self._take_self_fenced(config, view)
        state = build_state(spec, view, self.reports, self.fenced, fencing, self.clock.wall())
        tr = await asyncio.to_thread(plan, spec, state)
        self.last_transition = tr
        real = tr.real_actions
        if not real:
            return False
        summary = "; ".join(tr.notes) if tr.notes else f"{len(real)} action(s)"
        log.info("transition: %s: %s", summary, ", ".join(a.describe() for a in real))
        self._catalog = catalog(config)
        self._planned_on = view  # the view this transition's fences were decided on
        self._migrated_from = set()
        self._deferred = set()
        self._abandoned = set()
        self._refused = False
        result = await run_graph(tr, self._do, self._abort, Limits.from_properties(config.properties))
        if result.throttled:
            p = config.properties
            log.info("%d action(s) waited for a free slot (batch_limit %d, node_action_limit %d, "
                     "migration_limit %d)", len(result.throttled), p.batch_limit, p.node_action_limit,
                     p.migration_limit)
        self._record(tr, result, summary)
        if self._refused:
            asyncio.get_running_loop().call_later(REFUSED_RETRY, self.poke, "an action was refused")
            return False
        if result.failed and set(result.failed) <= self._deferred:
            # only fences that cannot be done yet: no point re-planning before a poke
            # (the watchdog wait's end, a membership change) or the next tick
            return False
        return True

    def _in_charge(self, view: MembershipView) -> bool:
        """The controller of a quorate partition; with no_quorum_policy ignore, also the
        lowest-named member of a settled partition without quorum."""
        if view.quorate:
            return view.controller == self.node
        policy = self.io.cluster_config().properties.no_quorum_policy
        return policy == "ignore" and view.settled and min(view.members) == self.node

    def _take_self_fenced(self, config: ClusterConfig, view: MembershipView) -> None:
        """Self-fencing nodes lost for fencing_watchdog_timeout count as fenced from now on."""
        now = self.clock.monotonic()
        for n in self_fencing_nodes(config.node_names, list(config.fencing.devices), config.watchdog):
            if n in self.fenced or n in view.members:
                continue
            v = self._fence_verdict(config, n, now)
            if v.state == "fenced":
                self._fence_waits.pop(n, None)
                log.warning("%s: taken as fenced", v.reason)
                self.emit("fence", f"{n} taken as fenced by its watchdog: {v.reason}", target=n, ok=True,
                          device="watchdog")
                self.fenced.add(n)
                self.reports.pop(n, None)

    def _fence_verdict(self, config: ClusterConfig, node: str, now: float) -> FenceVerdict:
        wd = config.watchdog
        timeout = effective_fencing_watchdog_timeout(config.properties.fencing_watchdog_timeout, wd, config.timing)
        has_device = bool(config.fencing.levels_for(node))
        waited = None if node in self.io.view().members else self.losses.waited(node, now)
        return fence_verdict(node, wd.enabled and not has_device, has_device, waited, timeout)

    def _joining(self, view: MembershipView) -> list[str]:
        """Peers alive to us but not members, for less than deadtime (then re-poke)."""
        now = self.clock.monotonic()
        grace = self.io.cluster_config().timing.deadtime
        alive_outside = {p.name for p in view.peers if not p.member and p.state in ("alive", "late")}
        for name in list(self._outside_since):
            if name not in alive_outside:
                del self._outside_since[name]
        waiting = []
        for name in sorted(alive_outside):
            since = self._outside_since.setdefault(name, now)
            if now - since < grace:
                waiting.append(name)
        if waiting:
            asyncio.get_running_loop().call_later(grace, self.poke, "join grace over")
        return waiting

    async def _refresh(self, view: MembershipView) -> bool:
        """Fetch every member's report; True when all members answered and have probed."""
        members = list(view.members)

        async def one(n: str) -> tuple[str, Mapping[str, Any] | None]:
            try:
                return n, await asyncio.wait_for(self.io.report(n), REPORT_TIMEOUT)
            except Exception as e:  # noqa: BLE001
                log.warning("no resource report from %s yet: %s", n, e)
                return n, None

        fetch = asyncio.ensure_future(asyncio.gather(*(one(n) for n in members)))
        changed = asyncio.ensure_future(self._abort.wait())
        try:
            await asyncio.wait({fetch, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        if not fetch.done():
            # The membership changed (or a new configuration came) while we waited for
            # reports: do not sit out REPORT_TIMEOUT for a node that is gone. In a
            # two-node fence race the incumbent would otherwise act seconds late and
            # the peer's fence delay, meant to let the incumbent shoot first, would
            # protect the wrong node (chaos finding 2). The poke that set abort makes
            # the run loop start a cycle over at once, on the new view.
            fetch.cancel()
            try:
                await fetch
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise  # we are cancelled ourselves, not only the fetch
            log.info("membership or configuration changed while fetching reports: starting over")
            return False
        got = dict(fetch.result())
        for n, rep in got.items():
            if rep is not None:
                self.reports[n] = rep.get("states", {})
        waiting = [n for n in members if got.get(n) is None or not got[n].get("probed")]  # type: ignore[union-attr]
        if waiting:
            log.debug("waiting for probes on %s before acting", ", ".join(waiting))
            return False
        under_way = self.under_way({n: rep for n, rep in got.items() if rep is not None})
        if under_way:
            # A report is the truth only once nothing that may change it is under way: a
            # start launched by the previous controller reads "stopped" until it ends, and
            # planning from that starts a second copy elsewhere (chaos finding 5). Wait
            # (actions have timeouts, so this ends), looking again shortly.
            if under_way != self.waiting:
                log.info("waiting for actions under way before planning: %s", "; ".join(under_way))
            self.waiting = under_way
            asyncio.get_running_loop().call_later(UNDER_WAY_RECHECK, self.poke, "actions under way")
            return False
        self.waiting = []
        return True

    def under_way(self, reports: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """What the members' reports say is still under way and not ours: actions that may
        change a resource (running or queued on that node), and actions another member still
        drives as a controller (it lost office and finishes what it started, e.g. the
        later steps of a live migration)."""
        out: list[str] = []
        for n in sorted(reports):
            rep = reports[n]
            changing = rep.get("changing") or {}
            out.extend(f"{', '.join(acts)} {rsc} on {n}" for rsc, acts in sorted(changing.items()))
            if n != self.node and rep.get("controlling"):
                out.append(f"{n} still driving {', '.join(rep['controlling'])}")
        return out

    def _record(self, tr: Transition, result: GraphResult, summary: str) -> None:
        v = Verdict(self.clock.wall(), summary, actions=result.done, failed=result.failed,
                    placement={k: list(x) if isinstance(x, tuple) else x for k, x in tr.placement.items()})
        self.verdicts = (self.verdicts + [v])[-50:]
        if result.failed and set(result.failed) <= self._abandoned:
            log.info("transition stopped: %s abandoned (not fenced); re-planning on the new view",
                     ", ".join(result.failed))
        elif result.failed:
            log.warning("transition stopped: %s failed; re-planning", ", ".join(result.failed))

    def _cannot_fence_yet(self, v: FenceVerdict) -> bool:
        """A fence no device does: wait for the watchdog (poked when the wait ends), or
        never (said loudly on every cycle: recovery does not proceed)."""
        if v.state == "fenced":
            return False  # lost long enough since the plan was made: the next cycle takes it as fenced
        self._deferred.add(f"fence_{v.node}")
        old = self._fence_waits.get(v.node)
        self._fence_waits[v.node] = v
        if v.state == "impossible":
            log.error("CANNOT FENCE %s: %s", v.node, v.reason)  # every cycle: recovery is blocked
            if old is None or old.state != v.state:
                self.emit("fence", f"cannot fence {v.node}: {v.reason}", target=v.node, ok=False, device=None)
            return False
        log.warning("%s", v.reason)
        if old is None or old.state != v.state or (old.remaining < v.remaining):
            self.emit("fence.watchdog-wait", v.reason, target=v.node, remaining=round(v.remaining, 3))
        asyncio.get_running_loop().call_later(v.remaining + 0.05, self.poke, f"{v.node}'s watchdog wait over")
        return False

    # -- actions --
    def _run(self, rsc: str) -> PrimitiveRun:
        return self._catalog[rsc]

    async def _exec(self, node: str, req: ActionRequest) -> ActionRecord:
        """Run ``req`` on ``node``; given up (a failed record) once ``node`` is no longer a
        member. Its outcome is then unknown, but a lost node is unclean: nothing it may run
        is recovered before it is fenced, and the fence need not wait for the action's
        timeout (a VM stop under way on a node that dies would otherwise hold the whole
        recovery for the stop's timeout; Pacemaker fails such actions the same way)."""
        # no cache to update: every cycle starts from fresh reports of every member
        started = self.clock.wall()
        try:
            if node == self.node:
                return await self.io.execute_on(node, req, self._term)
            task = asyncio.ensure_future(self.io.execute_on(node, req, self._term))
            try:
                while node in self.io.view().members:
                    changed = asyncio.ensure_future(self._members_changed.wait())
                    try:
                        await asyncio.wait({task, changed}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        changed.cancel()
                    if task.done():
                        return task.result()
            finally:
                task.cancel()  # nothing to cancel once it is done
        except Conflict as e:
            # the node refuses to start anything now (no quorum in its own view yet, shutting
            # down, fencing itself): nothing ran; plan again shortly, not in a hot loop
            log.warning("%s %s on %s refused: %s", req.action, req.rsc, node, e)
            self._refused = True
            return ActionRecord(node, req.rsc, req.action, 1, started, self.clock.wall() - started, f"refused: {e}")
        why = f"{node} left the membership while {req.action} {req.rsc} ran there: outcome unknown, " \
              f"{node} is unclean until fenced"
        log.warning("%s", why)
        self.emit("action", f"{req.action} {req.rsc} on {node}: given up, {why}", rsc=req.rsc, op=req.action,
                  target=node, ok=False, rc=None, error=why)
        return ActionRecord(node, req.rsc, req.action, 1, started, self.clock.wall() - started, why)

    async def _do(self, a: Action) -> bool:
        self.in_flight[a.id] = a.describe()
        try:
            return await self._do_one(a)
        finally:
            self.in_flight.pop(a.id, None)

    async def _do_one(self, a: Action) -> bool:
        if a.op == "fence":
            assert a.node is not None
            v = self._fence_verdict(self.io.cluster_config(), a.node, self.clock.monotonic())
            if v.state != "device":
                return self._cannot_fence_yet(v)
            failures, not_before = self._fence_retry.get(a.node, (0, 0.0))
            if self.clock.monotonic() < not_before:
                self._deferred.add(a.id)  # backing off after failures; poked when the wait is over
                return False
            log.warning("fencing %s", a.node)
            result = await self.io.fence(a.node, self._still_due(a.node, self._planned_on))
            if result == FenceResult.ABANDONED:
                # not fenced, not a failure to retry: the next cycle plans from the new view
                # (the node back as a member, or another controller); never recovery meanwhile
                self._deferred.add(a.id)
                self._abandoned.add(a.id)
                return False
            ok = result == FenceResult.OFF
            if ok:
                self._fence_retry.pop(a.node, None)
                self.node_fenced(a.node)
                log.warning("fenced %s: confirmed off", a.node)
            else:
                wait = min(FENCE_RETRY_MAX, FENCE_RETRY_FIRST * 2 ** failures)
                self._fence_retry[a.node] = (failures + 1, self.clock.monotonic() + wait)
                asyncio.get_running_loop().call_later(wait + 0.05, self.poke, f"retry fencing {a.node}")
                log.error("FENCING %s FAILED (%d in a row): its resources stay stopped until it is confirmed "
                          "off; retrying in %gs", a.node, failures + 1, wait)
            return ok
        assert a.node is not None and a.resource is not None
        run = self._run(a.resource)
        if a.op == "monitor":
            return True  # recurring monitors are kept by each node's executor
        if a.op == "migrate_to":
            assert a.target is not None
            return await self._migrate(run, a.node, a.target)
        if a.op == "migrate_from" or (a.op == "stop" and (a.resource, a.node) in self._migrated_from):
            # done by _migrate as part of one uninterruptible sequence
            return (a.resource, a.node if a.op == "stop" else a.target) in self._migrated_from
        rec = await self._exec(a.node, run.request(a.op))
        return rec.ok

    def _still_due(self, node: str, decided: MembershipView | None) -> Callable[[], str | None]:
        """Asked by the fencer once the fence delay is over and before each attempt: a
        node that rejoined since the fence was decided, or this node out of office, ends
        the fence (chaos finding 3: a node resuming from a freeze decided to fence its
        healthy peer from a stale view, and the fence, in its delay, outlived the heal).
        A fence of a member (a failed stop escalated) is kept while it stays a member. A
        stale view of ours (frozen during the delay) ends it too: the next cycle decides anew.
        """
        was_member = decided is not None and node in decided.members

        def check() -> str | None:
            view = self.io.view()
            if view.stale:  # frozen meanwhile: the view the fence was decided on may be long false
                return str(view.not_current)
            if not was_member and node in view.members:
                return f"{node} is a member again"
            if not self._in_charge(view):
                return f"{self.node} is no longer the controller (controller: {view.controller or 'none'})"
            return None

        return check

    async def _migrate(self, run: PrimitiveRun, source: str, target: str) -> bool:
        """A live migration, all phases in one go (Ganeti's order): prepare on the
        target, migrate_to on the source, migrate_from on the target, stop the
        source's stale copy. Not split across graph steps: an abort between two
        phases would leave a paused source and an incoming target. On failure,
        abort on the target and recover on the source, so exactly one copy runs."""
        prep = await self._exec(target, run.request("migrate_prepare", {"source": source}))
        if not prep.ok and prep.rc != 3:  # 3: OCF agents need no preparation
            await self._migration_failed(run, source, target)
            return False
        rec = await self._exec(source, run.request("migrate_to", {"target": target,
                                                                "prepared": dict(prep.data)}))
        if not rec.ok:
            await self._migration_failed(run, source, target)
            return False
        self._migrations[run.id] = dict(rec.data)
        done = await self._exec(target, run.request("migrate_from", {"source": source}))
        if not done.ok:
            await self._migration_failed(run, source, target)
            return False
        stop = await self._exec(source, run.request("stop"))
        self._migrated_from.add((run.id, source))
        if not stop.ok:
            log.error("%s migrated to %s but its old copy on %s did not stop: re-planning (fencing if needed)",
                      run.id, target, source)
        log.info("migrated %s %s -> %s (QEMU downtime %s ms, total %s ms)", run.id, source, target,
                 rec.data.get("downtime_ms", "?"), rec.data.get("total_ms", "?"))
        return stop.ok

    async def _migration_failed(self, run: PrimitiveRun, source: str, target: str) -> None:
        """Leave exactly one copy: remove the incoming one, make sure the source runs."""
        log.warning("migration of %s %s -> %s failed: aborting on %s, recovering on %s",
                    run.id, source, target, target, source)
        # OCF agents have no abort/recover actions (rc 3): a stop and a start do the same
        rec = await self._exec(target, run.request("migrate_abort"))
        if rec.rc == 3:
            rec = await self._exec(target, run.request("stop"))
        if not rec.ok:
            # The target's copy may run (the target resumed the guest, then stopped answering):
            # resuming the source too could run the VM twice. Leave the source as it is; the
            # next plan stops the failed copies, fencing the target if it is lost or its stop
            # fails, before the VM runs again.
            log.error("migration of %s %s -> %s: the copy on %s is not known to be gone (%s); the source is "
                      "left as it is until the target's copy is stopped or %s fenced", run.id, source, target,
                      target, rec.output.strip()[-200:] or f"rc={rec.rc}", target)
            return
        rec = await self._exec(source, run.request("migrate_recover"))
        if rec.rc == 3:
            await self._exec(source, run.request("start"))
