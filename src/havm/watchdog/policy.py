"""When to feed the watchdog: a pure decision over one immutable snapshot.

The rule (Proxmox and SBD do the same): a node may keep running resources only
while it is in a quorate partition. Survivors that lose a node wait
``fencing_watchdog_timeout`` and then take it as fenced; that is safe only if
the lost node, by then, has either stopped everything or been reset.

- quorate, control loop alive, no failed stop: **feed** (arming first if
  needed). Armed even with nothing running: the controller may start
  something here at any moment, and the watchdog must already be counting.
- not quorate (or the control loop is stuck, or a stop failed) while
  something runs, is being started or stopped here: **hold** (stay armed,
  do not feed; arm now if the watchdog was not armed, e.g. a daemon restarted
  in a minority next to resources still running). The no-quorum stop runs
  meanwhile; if it ends before the countdown, the next step disarms;
  otherwise the watchdog resets the node.
- nothing runs here and nothing is under way, and either there is no
  quorum or havmd is stopping cleanly: **disarm** (magic close) if armed,
  else **idle**. The node stays up, empty; a node that never ran anything
  and has no quorum is never armed.

A failed stop (with fencing enabled) is a hold whatever the quorum: only a
reset makes such a node safe, and the controller waits for it (escalation
of a failed stop to fencing, by the watchdog).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["feed", "hold", "disarm", "idle"]


@dataclass(frozen=True)
class WatchdogSnapshot:
    armed: bool
    quorate: bool
    running: tuple[str, ...] = ()  # resources present here (started, promoted, failed, stop-failed...)
    in_flight: int = 0  # agent actions under way here (a start not yet reported)
    stop_failed: tuple[str, ...] = ()  # resources whose stop failed here
    loop_age: float = 0.0  # seconds since the daemon's control loop last completed a round
    loop_limit: float = float("inf")  # beyond this the loop counts as hung
    stopping: bool = False  # havmd is stopping cleanly (resources before LEAVE)
    fencing_enabled: bool = True
    self_fenced: str = ""  # why this node fences itself ("" when it does not): never fed again


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(s: WatchdogSnapshot) -> Decision:
    if s.self_fenced:
        return Decision("hold", f"fencing itself ({s.self_fenced}): the watchdog is never fed again")
    busy = bool(s.running) or s.in_flight > 0
    if s.stop_failed and s.fencing_enabled:
        return Decision("hold", f"stop of {', '.join(s.stop_failed)} failed: only a reset makes this node safe")
    if s.loop_age > s.loop_limit:
        return Decision("hold" if s.armed or busy else "idle",
                        f"control loop silent for {s.loop_age:.1f}s (limit {s.loop_limit:g}s)")
    if not busy and (s.stopping or not s.quorate):
        why = "stopping cleanly" if s.stopping else "no quorum"
        return Decision("disarm" if s.armed else "idle", f"{why}, nothing runs here")
    if s.quorate:
        return Decision("feed", "quorate")
    what = ", ".join(s.running) or f"{s.in_flight} action(s) under way"
    return Decision("hold", f"no quorum while {what}: reset unless all stop in time")
