"""Anti-replay: per peer and link, accept only a seq newer than any accepted.

A sender numbers its heartbeat rounds: one seq per round, the same seq on every
link (so per-link gaps reveal per-link loss). A receiver keeps, per peer, the
newest generation seen, and per link the highest seq accepted; a packet is
accepted only if its seq is above it.

Why no reordering window (as IPsec has): a heartbeat is a snapshot of its
sender's view, so an older one carries stale news and is worth nothing once a
newer one arrived; and a window lets an attacker replay, once, a recorded
packet the receiver never got (e.g. one the attacker dropped), whose stale view
("I hear nobody") would change membership. Found by sending exactly that at
running daemons (tests/daemon/test_hostile_packets.py).

Why the generation: seq restarts at 1 when the daemon restarts. The generation
(wall-clock nanoseconds at start) grows across restarts, so a recorded packet
of an older incarnation is refused as stale-generation, and a larger one is a
restart of the peer, reported as such.

Failure story handled: a peer that sent LEAVE and stopped must not be revived
by a reordered or replayed heartbeat of the same incarnation: ``retire``
refuses every later packet of that generation.

Known limit: after *our* restart the guard is empty, so a packet recorded from a
peer's current incarnation could be replayed once per link at us; it would make
that peer look alive for at most deadtime. Heartbeat has the same limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from havm.membership.packet import PacketError, Reason

WINDOW = 64  # width of the loss-accounting history kept per link (not a reordering allowance)


class Verdict(Enum):
    FIRST = "first"  # first packet ever from this peer (since we started)
    ACCEPT = "accept"
    RESTART = "restart"  # a newer generation: the peer's daemon restarted


@dataclass
class _LinkWindow:
    highest: int = 0
    seen: int = 0  # bit i set: seq (highest - i) accepted

    def admit(self, seq: int) -> bool:
        if seq <= self.highest:
            return False  # a replay, or a reordered and therefore stale heartbeat
        shift = seq - self.highest
        self.seen = ((self.seen << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
        self.highest = seq
        return True


@dataclass
class _PeerState:
    generation: int
    retired: bool = False
    links: dict[int, _LinkWindow] = field(default_factory=dict)


class ReplayGuard:
    """Freshness check of authenticated packets. Not thread-safe; one per receiving node."""

    def __init__(self) -> None:
        self._peers: dict[str, _PeerState] = {}

    def check(self, peer: str, generation: int, seq: int, link: int) -> Verdict:
        """Admit the packet or raise PacketError(replay | stale-generation)."""
        state = self._peers.get(peer)
        verdict = Verdict.ACCEPT
        if state is None:
            state = _PeerState(generation)
            verdict = Verdict.FIRST
        elif generation < state.generation:
            raise PacketError(Reason.STALE_GENERATION,
                              f"{peer} generation {generation} < current {state.generation}")
        elif generation > state.generation:
            state = _PeerState(generation)
            verdict = Verdict.RESTART
        elif state.retired:
            raise PacketError(Reason.STALE_GENERATION, f"{peer} generation {generation} has left")
        window = state.links.get(link)
        if window is None:
            window = _LinkWindow()
        if not window.admit(seq):
            raise PacketError(Reason.REPLAY, f"{peer} seq {seq} on link {link} already seen or too old")
        # Commit only once admitted: a refused packet changes no state.
        state.links[link] = window
        self._peers[peer] = state
        return verdict

    def retire(self, peer: str, generation: int) -> None:
        """The peer left on purpose: refuse any further packet of this generation."""
        state = self._peers.get(peer)
        if state is not None and state.generation == generation:
            state.retired = True

    def generation(self, peer: str) -> int | None:
        state = self._peers.get(peer)
        return state.generation if state else None

    def forget(self, peer: str) -> None:
        """Drop all state of a peer removed from the configuration."""
        self._peers.pop(peer, None)
