"""The watchdog keeper: a task on havmd's control loop that applies the policy.

Every ``interval`` it takes one snapshot, decides (``policy.decide``) and
acts on the backend. It runs on the control loop on purpose: a loop that is
blocked, or a daemon that is SIGSTOPped, stops feeding, and the watchdog
resets the node. Never on the membership thread: heartbeats are not delayed
by any of this (a feed is one non-blocking write).

Events: ``watchdog.armed``, ``watchdog.disarmed``, ``watchdog.expiry-wait``
(feeding stopped: the node is reset when the countdown ends unless it can
disarm first), ``watchdog.feeding`` (feeding again after a hold),
``watchdog.error``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from havm.clock import Clock
from havm.config.watchdog import Watchdog
from havm.watchdog.backend import WatchdogBackend, WatchdogError
from havm.watchdog.policy import Decision, WatchdogSnapshot, decide

log = logging.getLogger("havm.watchdog")

ERROR_REPEAT = 30.0  # seconds between repeats of the same arming error


class Emit(Protocol):
    def __call__(self, kind: str, text: str, **fields: Any) -> Any: ...


class WatchdogKeeper:
    def __init__(self, backend: WatchdogBackend, cfg: Watchdog, snapshot: Callable[[bool], WatchdogSnapshot],
                 clock: Clock, emit: Emit) -> None:
        self.backend = backend
        self.cfg = cfg
        self.snapshot = snapshot
        self.clock = clock
        self.emit = emit
        self.last: Decision | None = None
        self.timeout_in_force: float | None = None
        self.last_fed: float | None = None
        self._error_at: dict[str, float] = {}

    def status(self) -> dict[str, Any]:
        """For ``havm status``: armed, what the last step decided and why."""
        return {"backend": self.backend.describe(), "armed": self.backend.armed, "timeout": self.timeout_in_force,
                "decision": self.last.action if self.last else None,
                "reason": self.last.reason if self.last else None,
                "last_fed_age": None if self.last_fed is None else round(self.clock.monotonic() - self.last_fed, 3)}

    async def run(self) -> None:
        while True:
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the keeper never dies of one round; not feeding is safe
                log.exception("watchdog keeper round failed")
            await asyncio.sleep(self.cfg.interval)

    def step(self) -> Decision:
        d = decide(self.snapshot(self.backend.armed))
        previous, self.last = self.last, d
        try:
            self._apply(d, previous)
        except WatchdogError as e:
            self._error(str(e))
        return d

    def _apply(self, d: Decision, previous: Decision | None) -> None:
        changed = previous is None or previous.action != d.action
        if d.action in ("feed", "hold") and not self.backend.armed:
            self.timeout_in_force = self.backend.arm(self.cfg.timeout)
            self.last_fed = self.clock.monotonic()  # opening a watchdog starts a fresh countdown
            log.warning("watchdog %s armed (timeout %gs): %s", self.backend.describe(), self.timeout_in_force,
                        d.reason)
            self.emit("watchdog.armed", f"watchdog armed ({self.timeout_in_force:g}s): {d.reason}",
                      timeout=self.timeout_in_force, reason=d.reason)
            if self.timeout_in_force != self.cfg.timeout:
                self._error(f"watchdog runs with a {self.timeout_in_force:g}s timeout, not the configured "
                            f"{self.cfg.timeout:g}s: fencing_watchdog_timeout may be too short")
        if d.action == "feed":
            self.backend.feed()
            self.last_fed = self.clock.monotonic()
            if changed and previous is not None and previous.action == "hold":
                log.warning("watchdog: feeding again (%s)", d.reason)
                self.emit("watchdog.feeding", f"feeding the watchdog again: {d.reason}", reason=d.reason)
        elif d.action == "hold" and changed:
            left = max(0.0, (self.timeout_in_force or self.cfg.timeout)
                       - (self.clock.monotonic() - (self.last_fed or self.clock.monotonic())))
            log.error("watchdog: NOT FEEDING (%s): this node resets in %.1fs unless it can disarm first",
                      d.reason, left)
            self.emit("watchdog.expiry-wait", f"not feeding the watchdog: {d.reason}; reset in {left:.1f}s "
                      "unless everything stops first", reason=d.reason, reset_in=round(left, 3))
        elif d.action == "disarm":
            self.disarm(d.reason)

    def disarm(self, reason: str) -> None:
        if not self.backend.armed:
            return
        self.backend.disarm()
        log.warning("watchdog %s disarmed: %s", self.backend.describe(), reason)
        self.emit("watchdog.disarmed", f"watchdog disarmed: {reason}", reason=reason)

    def close(self) -> None:
        """havmd exits: disarm if the policy allows it now, else leave the countdown running."""
        d = decide(self.snapshot(self.backend.armed))
        self.last = d
        if d.action in ("disarm", "idle"):
            self.disarm(d.reason)
        elif self.backend.armed:
            log.error("havmd exits with the watchdog armed (%s): this node will be reset", d.reason)
            self.emit("watchdog.expiry-wait", f"havmd exits with the watchdog armed: {d.reason}", reason=d.reason)
            self.backend.abandon()

    def _error(self, msg: str) -> None:
        now = self.clock.monotonic()
        if now - self._error_at.get(msg, -ERROR_REPEAT) >= ERROR_REPEAT:
            self._error_at[msg] = now
            log.error("WATCHDOG: %s", msg)
            self.emit("watchdog.error", msg)
