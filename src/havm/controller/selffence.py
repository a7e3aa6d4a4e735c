"""Watchdog fencing on the controller's side: when a lost node counts as fenced.

A node that no fence device can fence, in a cluster with a watchdog, fences
itself: it feeds its watchdog only while quorate, so once cut off it either
stops everything or is reset. Nobody can confirm that; the survivors wait
``fencing_watchdog_timeout`` instead (validated to exceed the watchdog's
timeout + feed interval + deadtime, docs/watchdog.md).

The wait is measured by *this* node's own observation, and only while it was
in a quorate partition: the clock of node X starts when we are quorate and
X is lost to our whole partition (not our member, and no member of ours still
lists it among its members: with a non-transitive split, a member that still
hears X means X may still be quorate with it and feeding its watchdog). It
restarts from zero whenever X is seen again or we lose quorum. A controller
that takes office after the loss therefore never inherits a shorter wait
than its own: at worst it waits longer. Pure: the clock's readings come in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


def lost_to_partition(view: Any, node: str) -> bool:
    """``node`` is neither our member nor listed as a member by any of our members."""
    if node in view.members:
        return False
    return not any(p.member and node in getattr(p, "members", ()) for p in view.peers)


@dataclass
class LossClock:
    """When this node, while quorate, saw each other node lost to its whole partition."""

    since: dict[str, float] = field(default_factory=dict)

    def observe(self, view: Any, me: str, nodes: Iterable[str], now: float) -> None:
        if not view.quorate:
            self.since.clear()  # our observation of others is worth nothing without quorum
            return
        for n in nodes:
            if n == me:
                continue
            if lost_to_partition(view, n):
                self.since.setdefault(n, now)
            else:
                self.since.pop(n, None)

    def waited(self, node: str, now: float) -> float | None:
        """Seconds since ``node`` was lost (by our own observation); None if it is not lost."""
        since = self.since.get(node)
        return None if since is None else now - since


@dataclass(frozen=True)
class FenceVerdict:
    """What fencing ``node`` amounts to now: ``fenced`` (counts as off), ``wait``
    (watchdog fencing, ``remaining`` seconds to go), ``device`` (a device must
    do it), ``impossible`` (no device and no watchdog: never recovered)."""

    node: str
    state: str
    remaining: float = 0.0
    reason: str = ""


def fence_verdict(node: str, self_fencing: bool, has_device: bool, waited: float | None,
                  timeout: float) -> FenceVerdict:
    if has_device:
        return FenceVerdict(node, "device")
    if not self_fencing:
        return FenceVerdict(node, "impossible", reason=f"no fence device can fence {node} and there is no "
                                                       "watchdog: its resources stay stopped until it returns")
    if waited is None:
        return FenceVerdict(node, "wait", timeout, f"{node} is still a member, or seen by one: its watchdog may "
                                                   f"still be fed; fencing_watchdog_timeout ({timeout:g}s) "
                                                   "starts once it is lost to this whole partition")
    if waited >= timeout:
        return FenceVerdict(node, "fenced", reason=f"{node} lost for {waited:.1f}s >= fencing_watchdog_timeout "
                                                   f"{timeout:g}s: its watchdog has reset it (or it stopped "
                                                   "everything and disarmed)")
    return FenceVerdict(node, "wait", timeout - waited,
                        f"waiting for {node}'s watchdog: {timeout - waited:.1f}s of fencing_watchdog_timeout "
                        f"{timeout:g}s left")
