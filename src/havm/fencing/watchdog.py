"""Fencing a node by its own watchdog, on request: ``havm node fence`` without a device.

SBD's watchdog fencing (Pacemaker with ``stonith-watchdog-timeout``): the node
that runs the fence asks the target, over the signed peer API, to fence
itself. The target stops feeding its watchdog for good (it stops its
resources too, best effort) and acknowledges; nobody can see the reset
happen, so the fencer counts the target as fenced only once
``fencing_watchdog_timeout`` has passed since that acknowledgement: the
bound survivors use for a lost node (docs/watchdog.md), measured from a
moment when the target had certainly stopped feeding.

- a target that is a member and does not acknowledge: the fence **fails**
  (it may be feeding its watchdog: never assumed off);
- a target that is not a member: the survivors' rule, with the controller's
  loss clock (``LossClock``): fenced once it has been lost to this whole
  partition for ``fencing_watchdog_timeout`` (waited for if need be); not
  lost to the whole partition (a member still hears it) or no quorum here:
  it may still be fed, the fence fails;
- after the wait, a target still a member (it answers heartbeats for
  another ``grace``, a deadtime) was not reset: the fence fails. A target
  whose watchdog resets only after ``fencing_watchdog_timeout`` (a driver
  that kept a longer timeout) is refused at once.

``next_step`` is the decision, pure; ``WatchdogFence`` runs it with
injected membership, loss clock, peer request, clock and sleep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from havm.clock import Clock
from havm.errors import HavmError
from havm.fencing.records import DeviceResult

log = logging.getLogger("havm.fencing")

DEVICE = "watchdog"  # the device and agent shown in the history for these fences
ASK_TIMEOUT = 5.0  # seconds the target gets to acknowledge
POLL = 0.2  # seconds between two looks at membership once the wait is over


@dataclass(frozen=True)
class Ack:
    """The target's answer: it no longer feeds its watchdog, which resets it at the
    latest ``reset_in`` seconds after this answer."""

    node: str
    reset_in: float


@dataclass(frozen=True)
class WatchdogFenceState:
    """What the fencer knows at one moment (seconds measured by its own clock)."""

    node: str
    timeout: float  # fencing_watchdog_timeout
    grace: float  # how long a target may still look like a member once the wait is over
    member: bool  # the target is a member of this node's view
    lost_for: float | None = None  # the loss clock's reading (None: not lost to the whole partition)
    acked_for: float | None = None  # seconds since the target acknowledged (None: no acknowledgement)
    reset_in: float | None = None  # the target's own bound on its reset, from its acknowledgement
    ask_error: str | None = None  # why asking the target failed


@dataclass(frozen=True)
class Step:
    action: Literal["ask", "wait", "fenced", "failed"]
    wait: float = 0.0
    reason: str = ""


def next_step(s: WatchdogFenceState) -> Step:
    n, t = s.node, s.timeout
    if s.acked_for is None:
        if s.ask_error is not None:
            return Step("failed", reason=f"{n} did not acknowledge the request to fence itself ({s.ask_error}): "
                                         "it may still feed its watchdog, so it is not taken as fenced")
        if s.member:
            return Step("ask", reason=f"asking {n} to stop feeding its watchdog")
        if s.lost_for is None:
            return Step("failed", reason=f"{n} is not a member but is not lost to this whole partition either "
                                         "(a member still hears it, or this node has no quorum): its watchdog may "
                                         "still be fed")
        if s.lost_for >= t:
            return Step("fenced", reason=f"{n} lost for {s.lost_for:.1f}s >= fencing_watchdog_timeout {t:g}s: "
                                         "its watchdog has reset it (or it stopped everything)")
        return Step("wait", t - s.lost_for, f"{n} is lost: waiting {t - s.lost_for:.1f}s more of "
                                            f"fencing_watchdog_timeout {t:g}s")
    if s.reset_in is not None and s.reset_in >= t:
        return Step("failed", reason=f"{n}'s watchdog resets it only {s.reset_in:.1f}s after it acknowledged, not "
                                     f"within fencing_watchdog_timeout {t:g}s: not taken as fenced")
    if s.acked_for < t:
        return Step("wait", t - s.acked_for, f"{n} stopped feeding its watchdog: waiting "
                                             f"{t - s.acked_for:.1f}s more of fencing_watchdog_timeout {t:g}s")
    if not s.member:
        return Step("fenced", reason=f"{n} stopped feeding its watchdog {s.acked_for:.1f}s ago (>= "
                                     f"fencing_watchdog_timeout {t:g}s) and is gone: reset by its watchdog")
    if s.acked_for < t + s.grace:
        return Step("wait", min(POLL, t + s.grace - s.acked_for), f"{n} still a member: waiting for it to go")
    return Step("failed", reason=f"{n} is still a member {s.acked_for:.1f}s after it stopped feeding its watchdog "
                                 f"(fencing_watchdog_timeout {t:g}s): its watchdog did not reset it")


@dataclass(frozen=True)
class WatchdogFenceConfig:
    timeout: float  # fencing_watchdog_timeout
    grace: float  # the deadtime


@dataclass
class WatchdogFence:
    """Runs ``next_step`` until the target is fenced or the fence fails.

    ``settings(node)``: None when ``node`` is not fenced by its watchdog (a device
    can fence it, or there is no watchdog); ``member(node)``: in this node's view;
    ``lost_for(node)``: the loss clock; ``ask(node, requested_by)``: the target's
    acknowledgement, raising HavmError if it refuses or does not answer."""

    settings: Callable[[str], WatchdogFenceConfig | None]
    member: Callable[[str], bool]
    lost_for: Callable[[str], float | None]
    ask: Callable[[str, str], Awaitable[Ack]]
    clock: Clock
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def applies(self, node: str) -> bool:
        return self.settings(node) is not None

    async def off(self, node: str, requested_by: str) -> DeviceResult:
        cfg = self.settings(node)
        if cfg is None:
            return DeviceResult(False, error=f"{node} is not fenced by its watchdog")
        acked_at: float | None = None
        reset_in: float | None = None
        ask_error: str | None = None
        waited = False
        said = ""
        while True:
            now = self.clock.monotonic()
            step = next_step(WatchdogFenceState(
                node=node, timeout=cfg.timeout, grace=cfg.grace, member=self.member(node),
                lost_for=self.lost_for(node), acked_for=None if acked_at is None else now - acked_at,
                reset_in=reset_in, ask_error=ask_error))
            if step.action == "ask":
                log.warning("fencing %s by its watchdog: %s", node, step.reason)
                try:
                    ack = await asyncio.wait_for(self.ask(node, requested_by), ASK_TIMEOUT)
                    acked_at, reset_in = self.clock.monotonic(), ack.reset_in
                    said = f"{node} acknowledged: its watchdog resets it within {ack.reset_in:.1f}s"
                except (HavmError, TimeoutError) as e:
                    ask_error = str(e) or f"no answer within {ASK_TIMEOUT:g}s"
            elif step.action == "wait":
                if step.reason != said:
                    log.warning("fencing %s by its watchdog: %s", node, step.reason)
                said = step.reason
                waited = True
                await self.sleep(step.wait)
            elif step.action == "fenced":
                return DeviceResult(True, output=step.reason, already_off=acked_at is None and not waited)
            else:
                return DeviceResult(False, error=step.reason)
