"""Watchdog self-fencing: backends (backend.py), the feeding policy (policy.py,
pure), the keeper that applies it on havmd's control loop (keeper.py) and the
daemon's wiring (daemon.py). See docs/watchdog.md."""

from havm.watchdog.backend import (
           DevWatchdog,
           LabWatchdog,
           WatchdogBackend,
           WatchdogError,
           make_backend,
)
from havm.watchdog.policy import Decision, WatchdogSnapshot, decide

__all__ = ["Decision", "DevWatchdog", "LabWatchdog", "WatchdogBackend", "WatchdogError", "WatchdogSnapshot",
           "decide", "make_backend"]
