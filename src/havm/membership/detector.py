"""The failure detector: Heartbeat's timers applied to when each peer was last heard.

Pure logic: no clock, no socket. Callers pass ``now`` (monotonic seconds) to
every method, so tests drive it with exact times.

Semantics (``Timing``):

- a peer is **alive** while it was heard on any link within ``warntime``;
- **late** once silent on every link for ``warntime`` (one warning per episode:
  the episode ends when it is heard again);
- **dead** once silent on every link for ``deadtime``; a peer never heard since we
  started is **unknown** until ``initdead`` after our start, then dead;
- a peer that said LEAVE is dead at once (until heard again: a new incarnation).

Silence is what this node *listened* to: time it was not listening (its
membership thread stalled: SIGSTOP, swapping, a VM paused) is given with
``stalled`` and does not count. A node that resumes from a freeze would
otherwise declare every peer dead at once, win quorum alone and fence a
healthy peer (chaos finding 3). Time already listened to still counts, so
repeated stalls delay a verdict but never prevent one.

Per link: a link is **up** for a peer while that peer was heard on it within
``deadtime``, **down** after, **unknown** if never heard and still within
``initdead``. A node stays alive while any one of its links works; link events
are reported only for peers that stay alive, so a dead peer is one message,
not one per link.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from havm.config.cluster import Timing
from havm.membership.view import Lateness, LatenessTally


class PeerStatus(StrEnum):
    UNKNOWN = "unknown"
    ALIVE = "alive"
    LATE = "late"
    DEAD = "dead"


class LinkStatus(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class DetectorEvent:
    """A change worth a log line. kind: late, dead, alive, left, link-down, link-up."""

    kind: str
    peer: str
    link: str | None = None
    previous: str = ""
    silence: float | None = None

    def describe(self) -> str:
        silent = f" (silent {self.silence:.2f}s)" if self.silence is not None else ""
        if self.kind == "late":
            return f"peer {self.peer} is late{silent}"
        if self.kind == "dead":
            never = " (never heard since start)" if self.previous == PeerStatus.UNKNOWN else ""
            return f"peer {self.peer} is dead{silent}{never}"
        if self.kind == "alive":
            how = "joined" if self.previous == PeerStatus.UNKNOWN else "is back"
            return f"peer {self.peer} {how}"
        if self.kind == "left":
            return f"peer {self.peer} left (stopped on purpose)"
        return f"link {self.link} to peer {self.peer} is {self.kind.removeprefix('link-')}{silent}"


@dataclass
class _Peer:
    last: list[float | None]
    status: PeerStatus = PeerStatus.UNKNOWN
    links: list[LinkStatus] = field(default_factory=list)
    left: bool = False
    # per link: how late each heartbeat arrived (gap since the previous one minus
    # keepalive), for metrics
    lateness: list[LatenessTally] = field(default_factory=list)
    # per link: seconds this node did not listen since the peer was last heard on it
    deaf: list[float] = field(default_factory=list)

    def heard_credited(self) -> list[float | None]:
        """Per link: when the peer was last heard there, moved later by the time this
        node did not listen since (stall credit); None where never heard. Silence is
        measured from these times, so a stall of ours is never taken for the peer's
        silence (see the module doc)."""
        return [None if x is None else x + d for x, d in zip(self.last, self.deaf, strict=True)]


class FailureDetector:
    """Tracks every peer of one node. Not thread-safe: owned by the membership thread."""

    def __init__(self, timing: Timing, peers: Iterable[str], links: Sequence[str], start: float) -> None:
        self.timing = timing
        self.links = tuple(links)
        self.start = start
        self._peers: dict[str, _Peer] = {}
        self.set_peers(peers, start)

    # -- inputs ---------------------------------------------------------------
    def set_peers(self, peers: Iterable[str], now: float) -> None:
        """Add new peers (they get initdead from ``now``) and forget removed ones."""
        wanted = list(peers)
        for name in list(self._peers):
            if name not in wanted:
                del self._peers[name]
        for name in wanted:
            if name not in self._peers:
                self._peers[name] = _Peer([None] * len(self.links),
                                          links=[LinkStatus.UNKNOWN] * len(self.links),
                                          lateness=[LatenessTally() for _ in self.links],
                                          deaf=[0.0] * len(self.links))
        if now > self.start and any(p.status == PeerStatus.UNKNOWN for p in self._peers.values()):
            # A peer added by a config change deserves initdead from now, not from our start.
            self.start = now

    def heard(self, peer: str, link: int, now: float) -> list[DetectorEvent]:
        """A valid packet of ``peer`` arrived on ``link``; returns the changes it causes."""
        state = self._peers[peer]
        previous = state.last[link]
        if previous is not None and now > previous:
            state.lateness[link].add(now - previous - self.timing.keepalive)
        state.last[link] = now if previous is None else max(previous, now)
        state.deaf[link] = 0.0
        state.left = False
        return self._evaluate_peer(peer, state, now)

    def left(self, peer: str, now: float) -> list[DetectorEvent]:
        """The peer announced it is stopping: dead now, no deadtime wait."""
        state = self._peers[peer]
        state.left = True
        return self._evaluate_peer(peer, state, now)

    def stalled(self, seconds: float, now: float) -> None:
        """This node did not listen for the last ``seconds`` (up to ``now``): that time is
        not peers' silence. Call before ``evaluate`` at the wake-up."""
        for state in self._peers.values():
            for i, last in enumerate(state.last):
                if last is not None:
                    state.deaf[i] += seconds
        if self.start + self.timing.initdead > now - seconds:
            self.start += seconds  # initdead still running when the stall began: it did not listen either

    def evaluate(self, now: float) -> list[DetectorEvent]:
        """Apply the timers at ``now``; returns the transitions since the last call."""
        events: list[DetectorEvent] = []
        for name, state in self._peers.items():
            events.extend(self._evaluate_peer(name, state, now))
        return events

    # -- queries --------------------------------------------------------------
    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(self._peers)

    def status(self, peer: str) -> PeerStatus:
        return self._peers[peer].status

    def link_status(self, peer: str, link: int) -> LinkStatus:
        return self._peers[peer].links[link]

    def has_left(self, peer: str) -> bool:
        return self._peers[peer].left

    def last_heard_on(self, peer: str, link: int) -> float | None:
        return self._peers[peer].last[link]

    def receive_lateness(self, peer: str, link: int) -> Lateness:
        """How late heartbeats of ``peer`` arrived on ``link`` (per bucket, not cumulative; and their sum)."""
        return self._peers[peer].lateness[link].snapshot()

    def last_heard(self, peer: str) -> float | None:
        heard = [t for t in self._peers[peer].last if t is not None]
        return max(heard) if heard else None

    def settled(self) -> bool:
        """True once no peer is unknown: each was heard, or initdead has passed."""
        return all(p.status != PeerStatus.UNKNOWN for p in self._peers.values())

    def next_deadline(self, now: float) -> float | None:
        """The earliest future time at which ``evaluate`` could report a change."""
        t = self.timing
        times: list[float] = []
        for state in self._peers.values():
            if state.status == PeerStatus.UNKNOWN:
                times.append(self.start + t.initdead)
            heard = [x for x in state.heard_credited() if x is not None]
            if heard and not state.left:
                last = max(heard)
                times.extend((last + t.warntime, last + t.deadtime))
                times.extend(x + t.deadtime for x in heard)
            if any(s == LinkStatus.UNKNOWN for s in state.links):
                times.append(self.start + t.initdead)
        future = [x for x in times if x > now]
        return min(future) if future else None

    # -- the rules ------------------------------------------------------------
    def _evaluate_peer(self, name: str, state: _Peer, now: float) -> list[DetectorEvent]:
        t = self.timing
        in_initdead = now - self.start < t.initdead
        credited = state.heard_credited()
        heard = [x for x in credited if x is not None]
        silence = now - max(heard) if heard else None  # listened silence (stalls excluded)
        if state.left:
            status = PeerStatus.DEAD
        elif silence is None:
            status = PeerStatus.UNKNOWN if in_initdead else PeerStatus.DEAD
        elif silence >= t.deadtime:
            status = PeerStatus.DEAD
        elif silence >= t.warntime:
            status = PeerStatus.LATE
        else:
            status = PeerStatus.ALIVE

        events: list[DetectorEvent] = []
        before = state.status
        if status != before:
            if status == PeerStatus.DEAD:
                events.append(DetectorEvent("left" if state.left else "dead", name, previous=before.value,
                                            silence=silence))
            elif status == PeerStatus.LATE and before == PeerStatus.ALIVE:
                events.append(DetectorEvent("late", name, silence=silence))
            elif status in (PeerStatus.ALIVE, PeerStatus.LATE) and before in (PeerStatus.UNKNOWN, PeerStatus.DEAD):
                events.append(DetectorEvent("alive", name, previous=before.value))
            state.status = status

        stays_alive = before in (PeerStatus.ALIVE, PeerStatus.LATE) and status in (PeerStatus.ALIVE, PeerStatus.LATE)
        for i, (last, since) in enumerate(zip(state.last, credited, strict=True)):
            if state.left:
                link = LinkStatus.DOWN
            elif since is None:
                link = LinkStatus.UNKNOWN if in_initdead else LinkStatus.DOWN
            else:
                link = LinkStatus.UP if now - since < t.deadtime else LinkStatus.DOWN
            if link != state.links[i]:
                first_up = state.links[i] == LinkStatus.UNKNOWN and link == LinkStatus.UP
                if stays_alive and link != LinkStatus.UNKNOWN and not first_up:
                    events.append(DetectorEvent(
                        "link-" + link.value, name, self.links[i], previous=state.links[i].value,
                        silence=None if last is None else now - last))
                state.links[i] = link
        return events
