"""Membership, quorum and controller: pure decisions, and the view snapshot.

**Members** = this node + every peer that is alive (or late) in our failure
detector *and* whose latest heartbeat lists us among the nodes it hears. The
rule is mutual on purpose: a peer we hear but that does not hear us (a one-way
link, a firewall) cannot work with us, so it is not a member. A fresh peer
becomes a member one keepalive after it first hears us; initdead only delays
declaring peers dead, it never makes an unheard peer a member.

**Quorum**: one vote per node by default (``Node.votes``); quorate iff the
members' votes are more than half of all configured votes. An exact half
(only possible with an even total) is decided by the tiebreaker, when
``quorum.two_node`` is set or the cluster has more than two nodes (a plain
two-node cluster without ``two_node`` needs both nodes):

- ``lowest-node``: the half holding the lowest-named configured node wins;
- ``ping``: a half keeps quorum while it reaches one of the ping targets;
- ``none``: neither half is quorate.

A tiebreaker is consulted only once the detector has *settled* (every peer
heard or initdead passed): a node booting alone must not take quorum (and
start resources) before its peer had a chance to be heard (corosync's
wait_for_all).

**Controller**: without quorum, none. With quorum, the lowest-named node among
our members *and the members they report*. With a clean partition that is the
lowest member of our side; with a non-transitive split (A-B broken, both hear
C) every node still names the same controller (A), instead of A and B each
thinking they are it. ``agreed`` says whether every member reports exactly our
member set; the daemon should treat ``agreed is False`` as "membership still
settling or connectivity non-transitive".
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from havm.config.schema import ClusterConfig

#: upper bounds (seconds) of the send and receive lateness histograms, and their labels
LATENESS_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)
LATENESS_LABELS = ("1ms", "5ms", "10ms", "50ms", "100ms", "500ms", "1s", "inf")


@dataclass(frozen=True)
class QuorumDecision:
    quorate: bool
    votes: int  # votes of the members
    expected: int  # all configured votes
    reason: str  # majority | minority | tiebreaker:<type>:<won|lost|waiting>


def compute_members(me: str, alive: set[str], hears_of: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """Me plus the alive peers whose latest heartbeat says they hear me."""
    return frozenset({me} | {p for p in alive if me in hears_of.get(p, frozenset())})


def votes_held(config: ClusterConfig, nodes: Iterable[str]) -> tuple[int, int]:
    """(votes of ``nodes``, votes of the whole cluster): a majority is 2 * held > total."""
    names = set(nodes)
    return sum(n.votes for n in config.nodes if n.name in names), sum(n.votes for n in config.nodes)


def decide_quorum(config: ClusterConfig, members: frozenset[str], settled: bool,
                  ping_reachable: bool | None) -> QuorumDecision:
    """Apply the vote rule and, on an exact half, the tiebreaker (see module doc)."""
    votes, expected = votes_held(config, members)
    if 2 * votes > expected:
        return QuorumDecision(True, votes, expected, "majority")
    tiebreaker = config.quorum.tiebreaker
    applies = config.quorum.two_node or len(config.nodes) > 2
    if 2 * votes < expected or not applies or tiebreaker.type == "none":
        return QuorumDecision(False, votes, expected, "minority")
    kind = f"tiebreaker:{tiebreaker.type}"
    if not settled:
        return QuorumDecision(False, votes, expected, f"{kind}:waiting")
    if tiebreaker.type == "lowest-node":
        won = min(config.node_names) in members
    else:
        won = bool(ping_reachable)
    return QuorumDecision(won, votes, expected, f"{kind}:{'won' if won else 'lost'}")


def choose_controller(quorate: bool, members: frozenset[str],
                      reported: Mapping[str, frozenset[str]]) -> str | None:
    """Lowest-named node among our members and the members they report; None without quorum."""
    if not quorate:
        return None
    candidates = set(members)
    for peer in members:
        candidates |= reported.get(peer, frozenset())
    return min(candidates)


def views_agree(me: str, members: frozenset[str], reported: Mapping[str, frozenset[str]]) -> bool:
    """Every member (other than me) reports exactly my member set."""
    return all(reported.get(p) == members for p in members if p != me)


@dataclass(frozen=True)
class PeerView:
    name: str
    state: str  # alive | late | dead | unknown
    member: bool
    links: Mapping[str, str]  # link name -> up | down | unknown
    last_heard_age: float | None  # seconds since last heard on any link; None if never
    generation: int | None
    restarts: int  # restarts seen since we started (a larger generation)
    left: bool  # said LEAVE (stopped on purpose) and not heard since
    hears: tuple[str, ...]  # from its latest heartbeat
    members: tuple[str, ...]  # its membership, from its latest heartbeat
    quorate: bool | None  # its quorum, from its latest heartbeat
    app: Mapping[str, Any] = field(default_factory=dict)  # its app info, from its latest heartbeat
    # Our wall clock minus the timestamp of its latest packet: clock skew plus
    # one-way delay. Seconds here mean unsynchronised clocks (fix NTP: logs and
    # fencing records of the two nodes will not line up).
    clock_offset: float | None = None
    # Per link: seconds since its latest heartbeat there (None: never heard there), and
    # how late each heartbeat arrived there (the gap since the previous one minus
    # keepalive; a lost packet shows as one keepalive late). For metrics.
    link_ages: Mapping[str, float | None] = field(default_factory=dict)
    receive_lateness: Mapping[str, Lateness] = field(default_factory=dict)


@dataclass(frozen=True)
class Lateness:
    """Counts per upper bound (``LATENESS_LABELS``, not cumulative) since start, and their sum."""

    histogram: Mapping[str, int] = field(default_factory=dict)
    total: float = 0.0


class LatenessTally:
    """The running count behind a ``Lateness``: each event counted in the ``LATENESS_BOUNDS``
    bucket its lateness falls in, and the sum. Mutable, owned by the membership thread (its
    send jitter, each peer's receive lateness per link); views carry ``snapshot``s."""

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENESS_BOUNDS) + 1)
        self.total = 0.0

    def add(self, lateness: float) -> None:
        self.counts[bisect.bisect_left(LATENESS_BOUNDS, lateness)] += 1
        self.total += lateness

    def snapshot(self) -> Lateness:
        return Lateness(dict(zip(LATENESS_LABELS, self.counts, strict=True)), self.total)


@dataclass(frozen=True)
class LinkView:
    name: str
    mode: str
    up: bool  # up for at least one peer (or no peer to hear)
    peers_up: int
    peers_total: int
    sent: int  # packets we sent on it
    received: int  # valid packets we received on it
    lost: int  # estimated packets lost towards us (gaps in peers' seqs)
    # up: some peer heard on it; down: silent for every peer while some alive peer is
    # heard on another link; unknown: no alive peer to judge by (startup, all peers dead)
    state: str = "unknown"


@dataclass(frozen=True)
class JitterStats:
    """Heartbeat send times against their fixed schedule, in seconds.

    count/median/p99/max cover the recent window (the last JITTER_WINDOW rounds);
    ``histogram`` counts every round since start by upper bound ("1ms", "5ms",
    ..., "inf"), not cumulative across buckets: subtract two snapshots to
    measure any interval.
    """

    count: int = 0
    median: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    histogram: Mapping[str, int] = field(default_factory=dict)
    total: float = 0.0  # sum of every round's lateness since start (histogram's sum)


@dataclass(frozen=True)
class Traffic:
    sent_packets: int = 0
    sent_bytes: int = 0
    received_packets: int = 0  # datagrams, valid or not
    received_bytes: int = 0
    send_errors: int = 0
    own_packets: int = 0  # our own broadcast/multicast packets looped back (ignored, not drops)
    drops: Mapping[str, int] = field(default_factory=dict)  # reason code -> count


@dataclass(frozen=True)
class MembershipView:
    """One immutable snapshot of this node's membership. Do not mutate the mappings."""

    node: str
    cluster: str
    generation: int
    seq: int  # last heartbeat round sent
    at: float  # wall-clock time the snapshot was taken
    uptime: float  # seconds since the service started
    members: tuple[str, ...]  # sorted, includes this node
    quorate: bool
    votes: int
    expected_votes: int
    quorum_reason: str
    controller: str | None
    agreed: bool
    # Every peer heard or declared dead (initdead over): before that, a node that
    # booted alone must not act on "the others are gone".
    settled: bool
    peers: tuple[PeerView, ...]
    links: tuple[LinkView, ...]
    traffic: Traffic
    jitter: JitterStats
    # Why this node's own view may be out of date ("" when current): its membership
    # thread did not run for deadtime/2 or more (peers may have declared it dead
    # meanwhile), or it resumed from such a stall and has not listened for 2 x keepalive
    # yet. Such a node starts nothing, for anyone, until this clears.
    stale: str = ""

    @property
    def not_current(self) -> str:
        """``stale`` said in a sentence naming this node ("" when current)."""
        return f"{self.node}'s membership view is not current ({self.stale})" if self.stale else ""

    @property
    def is_controller(self) -> bool:
        return self.controller == self.node

    def peer(self, name: str) -> PeerView:
        for p in self.peers:
            if p.name == name:
                return p
        raise KeyError(name)

    def advertised(self, name: str, key: str) -> object:
        """What peer ``name`` advertises under ``key`` in its app info (from its latest
        heartbeat); None if it advertises nothing there or is not a peer. As sent by the
        peer: the caller checks its type."""
        try:
            return self.peer(name).app.get(key)
        except KeyError:
            return None

    @cached_property
    def key(self) -> tuple[Any, ...]:
        """What subscribers are told about: members, quorum, controller, agreement, and
        per peer its state, links, generation and app info; per link its state."""
        return (self.members, self.quorate, self.controller, self.agreed,
                tuple((p.name, p.state, p.member, p.links, p.generation, p.app) for p in self.peers),
                tuple((lk.name, lk.state) for lk in self.links))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the daemon's API and ``havm status``)."""
        d = asdict(self)
        d["is_controller"] = self.is_controller
        return d
