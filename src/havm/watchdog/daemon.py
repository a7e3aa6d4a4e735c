"""havmd's side of the watchdog: the snapshot the policy reads, from the daemon.

``NodeDaemon`` makes a few calls: ``for_daemon`` (None without a watchdog),
``start`` (checks the watchdog answers, then runs the keeper on the control
loop), ``configure`` (a new configuration), ``stopping`` and ``close``
(clean stop: feed while resources stop, disarm once nothing runs), and
``fence_self`` (``havm node fence`` of this node, by its watchdog: never fed
again until havmd restarts).

The control loop's health is the keeper's own punctuality: it runs on that
loop, so a loop blocked (or a daemon stopped) does not feed at all, and a
round that comes more than ``timeout / 2`` late holds once (the loop was
blocked that long: something is wrong here) instead of feeding.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from havm.watchdog.backend import WatchdogBackend, WatchdogError, make_backend
from havm.watchdog.keeper import WatchdogKeeper
from havm.watchdog.policy import WatchdogSnapshot

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

log = logging.getLogger("havm.watchdog")


class NodeWatchdog:
    def __init__(self, daemon: NodeDaemon, backend: WatchdogBackend) -> None:
        self.daemon = daemon
        cfg = daemon.config.watchdog
        self.keeper = WatchdogKeeper(backend, cfg, self.snapshot, daemon.clock, daemon.events.emit)
        self._beat = daemon.clock.monotonic()
        self._stopping = False
        self.self_fenced = ""  # who asked this node to fence itself: the watchdog is never fed again
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_daemon(cls, daemon: NodeDaemon) -> NodeWatchdog | None:
        """None without a watchdog; raises WatchdogError (havmd does not start) if the
        configured watchdog is not there: a node that cannot fence itself must not run."""
        backend = make_backend(daemon.config.watchdog, daemon.node)
        if backend is None:
            return None
        backend.probe()
        return cls(daemon, backend)

    def snapshot(self, armed: bool) -> WatchdogSnapshot:
        d = self.daemon
        local = d.local
        cfg = d.config.watchdog
        return WatchdogSnapshot(
            armed=armed, quorate=bool(d.view().quorate), running=tuple(local.running()),
            # a probe or monitor under way does not make a node "busy" (an empty node
            # probing its resources at start must not arm its watchdog for that)
            in_flight=sum(len(acts) for acts in local.executor.changing().values()),
            stop_failed=tuple(local.stop_failed()),
            loop_age=self._lateness(cfg.interval) if self._task is not None else 0.0, loop_limit=cfg.timeout / 2,
            stopping=self._stopping, fencing_enabled=d.config.properties.fencing_enabled,
            self_fenced=self.self_fenced)

    def fence_self(self, requested_by: str) -> float:
        """Stop feeding for good, now (arming first if the watchdog was not armed), and
        return the most seconds left before the watchdog resets this node. Raises
        WatchdogError if the watchdog is not armed afterwards: the node is then not
        fencing itself, and its fencer must not count it as fenced."""
        self.self_fenced = self.self_fenced or f"asked by {requested_by}"
        self.keeper.step()
        k = self.keeper
        if not k.backend.armed or k.last is None or k.last.action != "hold":
            raise WatchdogError(f"watchdog {k.backend.describe()} is not armed: this node cannot fence itself")
        timeout = k.timeout_in_force or k.cfg.timeout
        fed = k.last_fed if k.last_fed is not None else self.daemon.clock.monotonic()
        return max(0.0, timeout - (self.daemon.clock.monotonic() - fed))

    def start(self) -> None:
        """Check the watchdog is there (raises WatchdogError, naming it), then keep it."""
        self.keeper.backend.probe()
        log.info("watchdog %s ready (timeout %gs, fed every %gs while quorate)", self.keeper.backend.describe(),
                 self.keeper.cfg.timeout, self.keeper.cfg.interval)
        self._task = asyncio.get_running_loop().create_task(self.keeper.run())

    def _lateness(self, interval: float) -> float:
        """How much later than planned this round comes (the loop was blocked that long)."""
        now = self.daemon.clock.monotonic()
        late, self._beat = max(0.0, now - self._beat - interval), now
        return late

    def configure(self, config: Any) -> None:
        """A new configuration: timeout and interval apply at the next arming/feed."""
        if config.watchdog.backend != self.keeper.cfg.backend or config.watchdog.device != self.keeper.cfg.device:
            log.warning("watchdog backend or device changed: takes effect when havmd restarts")
            return
        if self.self_fenced:
            return  # setting a timeout restarts the countdown: a node fencing itself keeps the one running
        if config.watchdog.timeout != self.keeper.cfg.timeout and self.keeper.backend.armed:
            self.keeper.timeout_in_force = self.keeper.backend.arm(config.watchdog.timeout)
        self.keeper.cfg = config.watchdog

    def stopping(self) -> None:
        self._stopping = True

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.keeper.close()

    def status(self) -> dict[str, Any]:
        return self.keeper.status()


def watchdog_status(daemon: NodeDaemon) -> dict[str, Any]:
    """The status document's ``watchdog``: this node's watchdog (armed, last decision and
    why) and, on the controller, the fences waiting for a watchdog or impossible."""
    w = daemon.watchdog
    return {"enabled": w is not None, **(w.status() if w is not None else {}),
            "fence_waits": daemon.controller.fence_waits()}
