"""The membership service of one node: heartbeats out, heartbeats in, one view.

``MembershipService`` owns the mutable state (detector, anti-replay, peers'
latest heartbeats, counters) and publishes an immutable ``MembershipView``
after every change. Its two entry points do all the work synchronously, so
unit tests drive them with a ManualClock and a FakeNetwork, without a loop:

- ``tick()``: send the heartbeat round if due, apply the detector's timers;
- ``on_datagram(data, link, source)``: check and account one received packet.

``run()`` is the production driver: it opens the transport and calls ``tick``
at the fixed heartbeat cadence (and at detector deadlines) on an asyncio loop.
``MembershipThread`` (thread.py) runs it on a dedicated thread.

Thread-safety: ``snapshot``, ``subscribe``, ``update_config`` and ``stop`` may be
called from any thread; everything else runs on the membership thread.
Subscribers are called on the membership thread, outside the lock, and must be
quick (hand the view to a queue).
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from havm.clock import Clock
from havm.config.schema import ClusterConfig
from havm.membership.detector import DetectorEvent, FailureDetector, LinkStatus, PeerStatus
from havm.membership.packet import Heartbeat, MessageType, PacketCodec, PacketError, Reason
from havm.membership.replay import ReplayGuard, Verdict
from havm.membership.tiebreak import PingProber, Prober
from havm.membership.transport import Transport
from havm.membership.view import (
    JitterStats,
    Lateness,
    LatenessTally,
    LinkView,
    MembershipView,
    PeerView,
    Traffic,
    choose_controller,
    compute_members,
    decide_quorum,
    views_agree,
)

log = logging.getLogger("havm.membership")

MAX_APP_INFO_BYTES = 400
JITTER_WINDOW = 240  # rounds: two minutes at the default keepalive
Subscriber = Callable[[MembershipView], None]
DROP_LOG_INTERVAL = 60.0
# Drops worth a warning (rate-limited), and what they usually mean.
DROP_WARNINGS = {
    Reason.BAD_MAC: "wrong cluster key on a sender, or forged packets",
    Reason.OTHER_CLUSTER: "another cluster shares this network and port",
    Reason.UNKNOWN_NODE: "a node holding the key is missing from this node's configuration",
    Reason.BAD_VERSION: "a node runs another havm protocol version",
    Reason.WRONG_LINK: "links are cross-wired or share a broadcast port",
    Reason.STALE_GENERATION: "replayed packets, or a peer's clock went backwards across a restart",
}


@dataclass
class _PeerInfo:
    generation: int | None = None
    restarts: int = 0
    heartbeat: Heartbeat | None = None
    last_seq: dict[int, int] = field(default_factory=dict)  # link -> last accepted seq
    clock_offset: float | None = None  # our wall clock minus its timestamp, latest packet


class MembershipService:
    def __init__(self, config: ClusterConfig, node: str, key: bytes, clock: Clock, transport: Transport,
                 app_info: Callable[[], Mapping[str, Any]] | None = None, *,
                 prober: Prober | None = None, generation: int | None = None) -> None:
        """``generation`` defaults to wall-clock nanoseconds now; a daemon may pass a
        persisted, strictly increasing value to survive a clock set backwards.
        ``prober`` defaults to a PingProber when the tiebreaker is ``ping``."""
        config.node(node)  # KeyError early if the node is not configured
        self.node = node
        self.clock = clock
        self.transport = transport
        self._key = key
        self._app_info = app_info or dict
        self.generation = generation if generation is not None else int(clock.wall() * 1e9)
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._started = clock.monotonic()
        self._seq = 0
        self._next_send = self._started
        self._awake = self._started  # when this thread last ran (a tick or a datagram): it listened until then
        self._resumed: tuple[float, float] | None = None  # (when, how long) of the last long stall
        self._guard = ReplayGuard()
        self._peers: dict[str, _PeerInfo] = {}
        self._drops: Counter[str] = Counter()
        self._sent = [0] * len(config.links)
        self._received = [0] * len(config.links)
        self._lost = [0] * len(config.links)
        self._traffic = {"sent_packets": 0, "sent_bytes": 0, "received_packets": 0, "received_bytes": 0,
                         "send_errors": 0, "own_packets": 0}
        self._jitter: deque[float] = deque(maxlen=JITTER_WINDOW)
        self._jitter_tally = LatenessTally()  # every round since start, by LATENESS_BOUNDS bucket
        self._app: dict[str, Any] = {}
        self._app_error_logged = False
        self._stopping: asyncio.Event | None = None
        self._dirty = False  # a publish is pending (run() coalesces bursts of packets)
        self._last_ping: bool | None = None
        self._drop_log: dict[str, tuple[float | None, int]] = {}  # reason -> (last warned, drops since)
        self._leave_on_stop = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self.config = config
        self._codec = PacketCodec(key, config.cluster, config.node_names, len(config.links))
        self._detector = FailureDetector(config.timing, self._peer_names(config),
                                         [lk.name for lk in config.links], self._started)
        self._peers = {p: _PeerInfo() for p in self._peer_names(config)}
        self.prober = prober if prober is not None else self._prober_for(config, None)
        self._view = self._build_view(self._started, None)

    def _peer_names(self, config: ClusterConfig) -> list[str]:
        return [n for n in config.node_names if n != self.node]

    # -- public API (any thread) ----------------------------------------------
    def snapshot(self) -> MembershipView:
        """A fresh view (ages and counters as of now); immutable, safe from any thread."""
        with self._lock:
            return self._build_view(self.clock.monotonic(), self._probe())

    @property
    def next_heartbeat_at(self) -> float:
        """Monotonic time the next heartbeat round is scheduled for."""
        with self._lock:
            return self._next_send

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(view)`` (on the membership thread) whenever members, quorum,
        controller, view agreement, a peer's state/links/generation/app info or a
        link's state change."""
        with self._lock:
            self._subscribers.append(callback)

    def update_config(self, config: ClusterConfig) -> None:
        """Follow a new configuration: nodes added/removed, votes, timing, quorum.

        Links (names, modes, ports) cannot change while running: raises ValueError
        saying a restart is needed. Added peers get initdead from now.
        """
        if [lk.model_dump() for lk in config.links] != [lk.model_dump() for lk in self.config.links]:
            raise ValueError("heartbeat links changed: restart havmd to apply")
        if config.cluster != self.config.cluster:
            raise ValueError("the cluster name changed: restart havmd to apply")
        if self.node not in config.node_names:
            raise ValueError(f"this node ({self.node}) is not in the new configuration")
        with self._lock:
            now = self.clock.monotonic()
            self.config = config
            self._codec = PacketCodec(self._key, config.cluster, config.node_names, len(config.links))
            peers = self._peer_names(config)
            for gone in set(self._peers) - set(peers):
                self._guard.forget(gone)
                del self._peers[gone]
            for new in peers:
                self._peers.setdefault(new, _PeerInfo())
            self._detector.timing = config.timing
            self._detector.set_peers(peers, now)
            self.transport.set_config(config)
            old_prober, self.prober = self.prober, self._prober_for(config, self.prober)
        if old_prober is not self.prober:
            if old_prober is not None:
                old_prober.stop()
            if self.prober is not None and self._loop is not None:
                self.prober.start()
        loop = self._loop
        if loop is not None and loop.is_running():
            # Subscribers are promised the membership thread.
            loop.call_soon_threadsafe(lambda: self._publish(self.clock.monotonic()))
        else:
            self._publish(now)

    @staticmethod
    def _prober_for(config: ClusterConfig, current: Prober | None) -> Prober | None:
        """Keep the current prober unless the ping tiebreaker was added, removed or retargeted."""
        tiebreaker = config.quorum.tiebreaker
        if tiebreaker.type != "ping":
            return current if not isinstance(current, PingProber) else None
        if isinstance(current, PingProber) and (current.targets, current.interval) == (
                list(tiebreaker.targets), tiebreaker.interval):
            return current
        if current is not None and not isinstance(current, PingProber):
            return current  # an injected prober (tests) stays
        return PingProber(tiebreaker.targets, tiebreaker.interval)

    def stop(self, leave: bool = True) -> None:
        """Ask ``run()`` to return (thread-safe); with ``leave``, it first sends LEAVE so
        peers mark us dead at once. ``leave=False`` stops like a crash (tests, benchmarks)."""
        self._leave_on_stop = leave
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop is already closed: run() has returned
                pass

    # -- production driver ----------------------------------------------------
    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Open the transport, heartbeat on a fixed cadence until ``stop()``, then LEAVE.

        ``ready`` is called once the transport is open (sockets bound); errors
        opening it (TransportError) propagate before that.
        """
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self.transport.open(self.on_datagram)
        with self._lock:
            self._awake = self.clock.monotonic()  # the time before run() was not a stall
        if ready is not None:
            ready()
        if self.prober is not None:
            self.prober.start()
        try:
            while not self._stopping.is_set():
                try:
                    self.tick()
                except Exception:  # never stop heartbeating because of one bad round
                    log.exception("membership tick failed; continuing")
                delay = max(0.0, self.next_wakeup() - self.clock.monotonic())
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                except TimeoutError:
                    pass
            if self._leave_on_stop:
                self.leave()
        finally:
            if self.prober is not None:
                self.prober.stop()
            self.transport.close()

    def next_wakeup(self) -> float:
        """When ``tick`` next has something to do: the next send or detector deadline."""
        with self._lock:
            deadline = self._detector.next_deadline(self.clock.monotonic())
            return self._next_send if deadline is None else min(self._next_send, deadline)

    # -- the work (membership thread) -----------------------------------------
    def tick(self) -> None:
        """Send the heartbeat round if due; apply timers; publish the view if it changed."""
        now = self.clock.monotonic()
        # The daemon's callable runs outside our lock: it may take locks of its own.
        app = self._current_app_info() if now >= self._next_send else None
        with self._lock:
            self._note_stall(now)
            if app is not None:
                lateness = now - self._next_send
                self._jitter.append(lateness)
                self._jitter_tally.add(lateness)
                self._send_round(MessageType.HEARTBEAT, now, app)
                # Fixed cadence: the next round is due one keepalive after the
                # *scheduled* time, so late wake-ups do not accumulate drift;
                # rounds missed entirely (a stalled process) are skipped.
                keepalive = self.config.timing.keepalive
                self._next_send += keepalive
                if self._next_send <= now:
                    skipped = int((now - self._next_send) // keepalive) + 1
                    self._next_send += skipped * keepalive
                    log.warning("heartbeat: %d round(s) skipped, the membership thread was stalled", skipped)
            events = self._detector.evaluate(now)
            ping = self._probe()
            # Between changes only ages move, which the published view does not
            # track (snapshot() computes them fresh): skip the rebuild.
            dirty = bool(events) or ping != self._last_ping or self._dirty
        self._log_events(events)
        if dirty:
            self._publish(now)

    def _note_stall(self, now: float) -> None:
        """The thread runs at least once a keepalive (each send is a wake-up). A longer gap
        since it last ran, with a round skipped, means it was stalled (SIGSTOP, swapping, a
        paused VM) and heard nothing meanwhile: that time is not peers' silence. Without
        this a node resuming from a freeze declared its peers dead at once (it had not
        listened), won quorum alone and fenced a healthy peer (chaos finding 3)."""
        keepalive = self.config.timing.keepalive
        gap = now - self._awake
        self._awake = now
        if gap >= self.config.timing.deadtime / 2:
            self._resumed = (now, gap)  # long enough to have been declared dead: listen first (_staleness)
        if gap > 2 * keepalive:
            stall = gap - keepalive  # a normal sleep is at most one keepalive
            self._detector.stalled(stall, now)
            log.warning("membership thread stalled %.2fs: peers' silence is judged from what it heard "
                        "before and after, not during the stall", stall)

    def leave(self) -> None:
        """Tell peers we stop on purpose (they mark us dead without waiting deadtime)."""
        with self._lock:
            self._send_round(MessageType.LEAVE, self.clock.monotonic())

    def on_datagram(self, data: bytes, link: int, source: tuple[str, int]) -> None:
        """Check one datagram and apply it. Never raises for bad input: drops are counted."""
        now = self.clock.monotonic()
        events: list[DetectorEvent] = []
        with self._lock:
            self._note_stall(now)
            self._traffic["received_packets"] += 1
            self._traffic["received_bytes"] += len(data)
            try:
                changed = self._accept(data, link, now, events)
            except PacketError as e:
                if e.reason == Reason.OWN:  # broadcast/multicast loop back: expected, not a drop
                    self._traffic["own_packets"] += 1
                else:
                    self._drops[e.reason] += 1
                    self._log_drop(e, link, source, now)
                return
        self._log_events(events)
        if changed:
            self._publish_soon(now)

    def _log_drop(self, error: PacketError, link: int, source: tuple[str, int], now: float) -> None:
        """Warn about drops that mean misconfiguration or attack, at most once a minute per reason."""
        if error.reason not in DROP_WARNINGS:
            log.debug("dropped packet from %s on link %d: %s", source, link, error)
            return
        last, count = self._drop_log.get(error.reason, (None, 0))
        count += 1
        if last is not None and now - last < DROP_LOG_INTERVAL:
            self._drop_log[error.reason] = (last, count)
            return
        log.warning("dropped %d packet(s) in the last minute: %s (latest from %s:%s on link %s: %s)",
                    count, DROP_WARNINGS[error.reason], source[0], source[1],
                    self.config.links[link].name, error)
        self._drop_log[error.reason] = (now, 0)

    def _probe(self) -> bool | None:
        return self.prober.reachable() if self.prober is not None else None

    def _publish_soon(self, now: float) -> None:
        """Publish now, or (under run()) once after the current burst of datagrams:
        a reader wake-up may carry hundreds of packets, one view rebuild is enough."""
        loop = self._loop
        if loop is None or not loop.is_running():
            self._publish(now)
            return
        with self._lock:
            if self._dirty:
                return
            self._dirty = True
        loop.call_soon(lambda: self._publish(self.clock.monotonic()))

    def _accept(self, data: bytes, link: int, now: float, events: list[DetectorEvent]) -> bool:
        """Returns whether the packet may have changed the view."""
        packet = self._codec.decode(data)
        if packet.sender == self.node:
            raise PacketError(Reason.OWN)
        if packet.link != link:
            raise PacketError(Reason.WRONG_LINK, f"sent on link {packet.link}, received on link {link}")
        heartbeat = Heartbeat.from_payload(packet.payload) if packet.type == MessageType.HEARTBEAT else None
        verdict = self._guard.check(packet.sender, packet.generation, packet.seq, link)
        info = self._peers[packet.sender]
        changed = False
        if verdict == Verdict.RESTART:
            info.restarts += 1
            info.last_seq.clear()
            info.heartbeat = None
            changed = True
            log.warning("peer %s restarted (generation %d -> %d)", packet.sender, info.generation or 0,
                        packet.generation)
        info.generation = packet.generation
        info.clock_offset = self.clock.wall() - packet.timestamp
        previous = info.last_seq.get(link)
        if previous is not None and packet.seq > previous + 1:
            self._lost[link] += min(packet.seq - previous - 1, 1000)
        info.last_seq[link] = max(packet.seq, previous or 0)
        self._received[link] += 1
        if packet.type == MessageType.LEAVE:
            self._guard.retire(packet.sender, packet.generation)
            info.heartbeat = None
            events.extend(self._detector.left(packet.sender, now))
            return True
        assert heartbeat is not None
        before_status = self._detector.status(packet.sender)
        before_link = self._detector.link_status(packet.sender, link)
        events.extend(self._detector.heard(packet.sender, link, now))
        old = info.heartbeat
        info.heartbeat = heartbeat
        return (changed or bool(events) or old is None
                or old.hears != heartbeat.hears or old.members != heartbeat.members
                or old.quorate != heartbeat.quorate or old.app != heartbeat.app
                or before_status != self._detector.status(packet.sender)
                or before_link != self._detector.link_status(packet.sender, link))

    def _send_round(self, mtype: MessageType, now: float, app: Mapping[str, Any] | None = None) -> None:
        self._seq += 1
        payload: dict[str, Any] = {}
        if mtype == MessageType.HEARTBEAT:
            view = self._view
            hears = tuple(p for p in self._detector.peers
                          if self._detector.status(p) in (PeerStatus.ALIVE, PeerStatus.LATE))
            payload = Heartbeat(hears, view.members, view.quorate, app or {}).to_payload(self.node)
        wall = self.clock.wall()
        for index in range(len(self.config.links)):
            try:
                data = self._codec.encode(mtype, self.node, self.generation, self._seq, wall, index, payload)
            except PacketError as e:
                # Too many long node names, or app info: better a heartbeat without
                # app info than none (no heartbeat = declared dead = fenced).
                log.error("heartbeat too large, sending it without app info: %s", e)
                payload = {**payload, "a": {}}
                try:
                    data = self._codec.encode(mtype, self.node, self.generation, self._seq, wall, index, payload)
                except PacketError as e2:
                    log.error("heartbeat not sent: %s", e2)
                    self._traffic["send_errors"] += 1
                    continue
            result = self.transport.send(index, data)
            self._sent[index] += result.datagrams
            self._traffic["sent_packets"] += result.datagrams
            self._traffic["sent_bytes"] += result.datagrams * len(data)
            self._traffic["send_errors"] += result.errors

    def _current_app_info(self) -> dict[str, Any]:
        try:
            info = dict(self._app_info())
            size = len(json.dumps(info, separators=(",", ":")))
            if size > MAX_APP_INFO_BYTES:
                raise ValueError(f"app info is {size} bytes, at most {MAX_APP_INFO_BYTES} fit a heartbeat")
        except Exception as e:
            if not self._app_error_logged:  # once per episode, not twice a second
                log.error("app info unavailable, sending the last good one: %s", e)
                self._app_error_logged = True
            return self._app
        self._app = info
        self._app_error_logged = False
        return info

    # -- the view ---------------------------------------------------------------
    def _build_view(self, now: float, ping: bool | None) -> MembershipView:
        det = self._detector
        alive = {p for p in det.peers if det.status(p) in (PeerStatus.ALIVE, PeerStatus.LATE)}
        hears_of = {p: i.heartbeat.hears_set for p, i in self._peers.items() if i.heartbeat}
        reported = {p: i.heartbeat.members_set for p, i in self._peers.items() if i.heartbeat}
        members = compute_members(self.node, alive, hears_of)
        quorum = decide_quorum(self.config, members, det.settled(), ping)
        controller = choose_controller(quorum.quorate, members, reported)
        link_names = [lk.name for lk in self.config.links]
        peers = []
        for name in det.peers:
            info = self._peers[name]
            last = det.last_heard(name)
            hb = info.heartbeat
            peers.append(PeerView(
                name=name, state=det.status(name).value, member=name in members,
                links={lk: det.link_status(name, i).value for i, lk in enumerate(link_names)},
                last_heard_age=None if last is None else now - last,
                generation=info.generation, restarts=info.restarts, left=det.has_left(name),
                hears=hb.hears if hb else (), members=hb.members if hb else (),
                quorate=hb.quorate if hb else None, app=hb.app if hb else {},
                clock_offset=info.clock_offset, link_ages=self._link_ages(name, link_names, now),
                receive_lateness=self._receive_lateness(name, link_names)))
        links = []
        for i, lk in enumerate(self.config.links):
            statuses = [det.link_status(p, i) for p in det.peers]
            up = statuses.count(LinkStatus.UP)
            # "down" only when a peer reachable another way is silent on this link:
            # with every peer dead we cannot tell a dead link from dead peers.
            down = any(det.link_status(p, i) == LinkStatus.DOWN for p in alive)
            state = "up" if up or not statuses else "down" if down else "unknown"
            links.append(LinkView(lk.name, lk.mode, state == "up", up, len(statuses),
                                  self._sent[i], self._received[i], self._lost[i], state))
        jitter = sorted(self._jitter)
        sent = self._jitter_tally.snapshot()
        jitter_stats = JitterStats(len(jitter), statistics.median(jitter), jitter[int(0.99 * (len(jitter) - 1))],
                                   jitter[-1], sent.histogram, sent.total) if jitter else JitterStats(
                                       histogram=sent.histogram, total=sent.total)
        return MembershipView(
            node=self.node, cluster=self.config.cluster, generation=self.generation, seq=self._seq,
            at=self.clock.wall(), uptime=now - self._started, members=tuple(sorted(members)),
            quorate=quorum.quorate, votes=quorum.votes, expected_votes=quorum.expected,
            quorum_reason=quorum.reason, controller=controller,
            agreed=views_agree(self.node, members, reported), settled=det.settled(),
            peers=tuple(peers), links=tuple(links),
            traffic=Traffic(drops=dict(self._drops), **self._traffic), jitter=jitter_stats,
            stale=self._staleness(now))

    def _staleness(self, now: float) -> str:
        """Why this node's view may be out of date, or "" (MembershipView.stale). Peers
        declare a node dead after deadtime of silence; a node silent for less than half of
        it cannot have been, so only a longer gap counts. Asked from the control thread, it
        also covers the moments after a SIGCONT before this thread has run again."""
        timing = self.config.timing
        quiet = now - self._awake
        if quiet >= timing.deadtime / 2:
            return f"the membership thread has not run for {quiet:.2f}s"
        if self._resumed is not None:
            when, gap = self._resumed
            if now - when < 2 * timing.keepalive:
                return f"resumed {now - when:.2f}s ago from a {gap:.2f}s stall: listening to peers again"
        return ""

    def _link_ages(self, peer: str, link_names: list[str], now: float) -> dict[str, float | None]:
        ages: dict[str, float | None] = {}
        for i, lk in enumerate(link_names):
            last = self._detector.last_heard_on(peer, i)
            ages[lk] = None if last is None else now - last
        return ages

    def _receive_lateness(self, peer: str, link_names: list[str]) -> dict[str, Lateness]:
        return {lk: self._detector.receive_lateness(peer, i) for i, lk in enumerate(link_names)}

    def _publish(self, now: float) -> None:
        with self._lock:
            old = self._view
            self._last_ping = self._probe()
            view = self._build_view(now, self._last_ping)
            self._view = view
            self._dirty = False
            subscribers = list(self._subscribers)
        if view.key == old.key:
            return
        self._log_changes(old, view)
        for callback in subscribers:
            try:
                callback(view)
            except Exception:
                log.exception("membership subscriber %r failed", callback)

    def _log_events(self, events: list[DetectorEvent]) -> None:
        for event in events:
            level = logging.WARNING if event.kind in ("late", "dead", "link-down") else logging.INFO
            log.log(level, "%s", event.describe())

    def _log_changes(self, old: MembershipView, new: MembershipView) -> None:
        if old.members != new.members:
            log.info("members: %s", ", ".join(new.members))
        if old.quorate != new.quorate:
            if new.quorate:
                log.info("quorum gained (%d of %d votes, %s)", new.votes, new.expected_votes, new.quorum_reason)
            else:
                log.warning("quorum lost (%d of %d votes, %s)", new.votes, new.expected_votes, new.quorum_reason)
        if old.controller != new.controller:
            log.info("controller: %s -> %s", old.controller, new.controller)
        for link_old, link_new in zip(old.links, new.links, strict=False):
            if link_old.state == "down" and link_new.state == "up":
                log.info("link %s is up", link_new.name)
            elif link_new.state == "down" and link_old.state != "down":
                log.warning("link %s is down: no peer heard on it, peers answer on other links", link_new.name)
