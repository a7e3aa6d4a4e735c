"""How a node is fenced: levels in order, retries, a delay first. ``Fencer``.

For a node, the configuration gives levels (``Fencing.levels_for``): level 1
is tried first; a level succeeds only when every device in it confirms the
node off; each device gets ``1 + retries`` attempts; if a level fails, the
next one is tried. Before the first attempt the fencer waits the largest
``delay`` the first level's devices set for this node: in a two-node fence
race, the node whose devices wait is the one that survives.

One fence of a node at a time: a manual ``havm node fence`` and the
controller's fence of the same node queue, and one that was waiting while the
other succeeded shares its outcome (as Pacemaker merges identical requests).
Every attempt is recorded in the history and logged; a fence that fails is
logged at error level with every reason, and the caller (the controller)
retries it on its next cycle, never skipping it.

A caller may pass ``still_due``, asked after the delay and before every
attempt: when it gives a reason (the target rejoined the membership, this
node is no longer the controller), the fence is abandoned there: the outcome
is not ok and carries ``abandoned``; the node was not fenced. Without it, a
node that resumed from a freeze could decide to fence its peer from a stale
view, and the fence, sitting in its delay, would kill the peer although it
was a member again by then (chaos finding 3).

Time is injected (``clock``, ``sleep``) and devices are made by a factory, so
the unit tests drive all of this with fakes and no waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from havm.clock import Clock
from havm.config.fencing import FenceDevice as DeviceConfig
from havm.config.fencing import Fencing
from havm.fencing.device import FenceDevice, make_device
from havm.fencing.history import FenceHistory
from havm.fencing.records import DeviceResult, FenceAttempt, FenceOutcome
from havm.fencing.watchdog import DEVICE as WATCHDOG
from havm.fencing.watchdog import WatchdogFence

log = logging.getLogger("havm.fencing")

StillDue = Callable[[], str | None]  # None: go on; a reason: abandon the fence

RETRY_PAUSE = 1.0  # seconds between two attempts of one device
ACTION = "off"


class Fencer:
    def __init__(self, executor: str, fencing: Callable[[], Fencing], history: FenceHistory, clock: Clock,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 make: Callable[[DeviceConfig], FenceDevice] = make_device,
                 on_attempt: Callable[[FenceAttempt], None] | None = None,
                 watchdog: WatchdogFence | None = None) -> None:
        """``executor``: this node's name; ``fencing``: the current configuration's
        section (read at each fence: devices may change between two fences);
        ``watchdog``: fences the nodes no device can fence, by their own watchdog."""
        self.executor = executor
        self.fencing = fencing
        self.history = history
        self.clock = clock
        self.sleep = sleep
        self.make = make
        self.on_attempt = on_attempt
        self.watchdog = watchdog
        self._locks: dict[str, asyncio.Lock] = {}
        self._succeeded: dict[str, tuple[float, FenceOutcome]] = {}  # node -> (when, last success)

    async def fence(self, node: str, requested_by: str, still_due: StillDue | None = None) -> FenceOutcome:
        asked = self.clock.monotonic()
        lock = self._locks.setdefault(node, asyncio.Lock())
        async with lock:
            done = self._succeeded.get(node)
            if done is not None and done[0] >= asked:
                # A fence of this node succeeded while we waited for it (the operator's and the
                # controller's at once): the node is off, fencing it again proves nothing more.
                log.info("fencing %s (asked by %s): merged with the fence that just succeeded", node,
                         requested_by)
                return done[1]
            outcome = await self._fence(node, requested_by, still_due or _always_due)
            if outcome.ok:
                self._succeeded[node] = (self.clock.monotonic(), outcome)
        if outcome.ok:
            log.warning("fenced %s through level %s (%s)%s, asked by %s", node, outcome.level,
                        ", ".join(sorted({a.device for a in outcome.attempts if a.ok})),
                        " (it was already off)" if outcome.already_off else "", requested_by)
        elif outcome.abandoned:
            log.warning("fence of %s (asked by %s) abandoned: %s; %s was NOT fenced", node, requested_by,
                        outcome.abandoned, node)
        else:
            log.error("FENCING %s FAILED (asked by %s): %s", node, requested_by, outcome.error)
        return outcome

    async def _fence(self, node: str, requested_by: str, still_due: StillDue) -> FenceOutcome:
        cfg = self.fencing()
        t0, started = self.clock.monotonic(), self.clock.wall()
        levels = cfg.levels_for(node)
        attempts: list[FenceAttempt] = []

        def outcome(ok: bool, level: int | None, delay: float, error: str = "", abandoned: str = "") -> FenceOutcome:
            return FenceOutcome(node=node, ok=ok, requested_by=requested_by, executor=self.executor,
                                started=started, duration=round(self.clock.monotonic() - t0, 3), delay=delay,
                                level=level, already_off=ok and all(a.already_off for a in attempts if a.ok),
                                attempts=tuple(attempts), error=error, abandoned=abandoned)

        if not levels and self.watchdog is not None and self.watchdog.applies(node):
            result = await self.watchdog.off(node, requested_by)
            self._record(attempts, FenceAttempt(
                node=node, device=WATCHDOG, agent=WATCHDOG, level=1, attempt=1, action=ACTION, ok=result.ok,
                rc=None, output=result.output, error=result.error, already_off=result.already_off, started=started,
                duration=round(self.clock.monotonic() - t0, 3), requested_by=requested_by, executor=self.executor))
            return outcome(result.ok, 1 if result.ok else None, 0.0, result.error)
        if not levels:
            why = f"no fence device can fence {node}"
            self._record(attempts, FenceAttempt(
                node=node, device="", agent="", level=0, attempt=0, action=ACTION, ok=False, rc=None, output="",
                error=why, already_off=False, started=started, duration=0.0, requested_by=requested_by,
                executor=self.executor))
            return outcome(False, None, 0.0, why)
        delay = max(d.delay_for(node) for d in levels[0])
        if delay > 0:
            log.warning("fencing %s in %gs (fence delay of %s)", node, delay,
                        ", ".join(d.id for d in levels[0] if d.delay_for(node) == delay))
            await self.sleep(delay)
        errors = []
        for index, level in enumerate(levels, start=1):
            failed = None
            for dev in level:  # every device of the level must confirm
                try:
                    ok = await self._device(dev, node, index, requested_by, attempts, still_due)
                except _Abandoned as e:
                    return outcome(False, None, delay, abandoned=e.reason)
                if not ok:
                    failed = dev
                    break
            if failed is None:
                return outcome(True, index, delay)
            errors.append(f"level {index}: {failed.id}: {attempts[-1].error}")
            if index < len(levels):
                log.error("fencing %s: level %d failed (%s); trying level %d", node, index, failed.id, index + 1)
        return outcome(False, None, delay, "; ".join(errors))

    async def _device(self, cfg: DeviceConfig, node: str, level: int, requested_by: str,
                      attempts: list[FenceAttempt], still_due: StillDue) -> bool:
        """True once the device confirms the node off; raises _Abandoned when ``still_due`` says so."""
        for attempt in range(1, cfg.retries + 2):
            if attempt > 1:
                await self.sleep(RETRY_PAUSE)
            why = still_due()  # after the delay or a pause the world may have moved on
            if why:
                raise _Abandoned(why)
            t0, started = self.clock.monotonic(), self.clock.wall()
            try:
                result = await self.make(cfg).off(node, cfg.timeout)
            except Exception as e:  # noqa: BLE001 - a broken device is a failed attempt, not a dead fencer
                log.exception("fence device %s raised", cfg.id)
                result = DeviceResult(False, error=f"internal error: {e}")
            rec = FenceAttempt(
                node=node, device=cfg.id, agent=cfg.agent, level=level, attempt=attempt, action=ACTION,
                ok=result.ok, rc=result.rc, output=result.output,
                error="" if result.ok else (result.error or "not confirmed off"), already_off=result.already_off,
                started=started, duration=round(self.clock.monotonic() - t0, 3), requested_by=requested_by,
                executor=self.executor)
            self._record(attempts, rec)
            if result.ok:
                return True
            log.warning("fencing %s: device %s, attempt %d of %d failed: %s", node, cfg.id, attempt,
                        cfg.retries + 1, rec.error)
        return False

    def _record(self, attempts: list[FenceAttempt], rec: FenceAttempt) -> None:
        attempts.append(rec)
        self.history.add([rec])
        if self.on_attempt is not None:
            try:
                self.on_attempt(rec)
            except Exception:  # noqa: BLE001 - reporting never breaks fencing
                log.exception("fencing attempt hook failed")


class _Abandoned(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _always_due() -> str | None:
    return None
