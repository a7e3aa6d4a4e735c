"""An in-memory network for unit tests: no sockets, no sleeps, full control.

``FakeNetwork`` connects ``FakeTransport``s of several nodes. Sent datagrams are
queued with a delivery time (from the injected clock) and delivered by
``deliver()``, so a test decides exactly when packets arrive. Faults:
``partition`` (groups that cannot talk), ``cut`` (one link between two nodes,
one or both directions), ``set_delay``, ``drop_next``; ``inject`` puts any
bytes (forged, replayed) in front of a node.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

from havm.clock import Clock
from havm.membership.transport import Receiver, SendResult, Transport


class FakeNetwork:
    def __init__(self, clock: Clock, links: int = 1) -> None:
        self.clock = clock
        self.links = links
        self._receivers: dict[str, Receiver] = {}
        self._queue: list[tuple[float, int, str, int, bytes, str]] = []
        self._order = itertools.count()
        self._groups: list[set[str]] | None = None
        self._cut: set[tuple[int, str, str]] = set()
        self._delay = 0.0
        self._drop_next = 0
        self.captured: list[tuple[str, int, bytes]] = []  # (sender, link, data), every send
        self.delivered = 0

    def transport(self, node: str) -> FakeTransport:
        return FakeTransport(self, node)

    # -- faults ---------------------------------------------------------------
    def partition(self, *groups: Iterable[str]) -> None:
        """Only nodes inside the same group can talk; a node in no group is isolated."""
        self._groups = [set(g) for g in groups]

    def heal(self) -> None:
        """Undo partitions and cut links."""
        self._groups = None
        self._cut.clear()

    def cut(self, link: int, a: str, b: str, both_ways: bool = True) -> None:
        self._cut.add((link, a, b))
        if both_ways:
            self._cut.add((link, b, a))

    def restore(self, link: int, a: str, b: str) -> None:
        self._cut.discard((link, a, b))
        self._cut.discard((link, b, a))

    def set_delay(self, seconds: float) -> None:
        self._delay = seconds

    def drop_next(self, count: int = 1) -> None:
        self._drop_next += count

    def can_reach(self, link: int, src: str, dst: str) -> bool:
        if (link, src, dst) in self._cut:
            return False
        if self._groups is None:
            return True
        return any(src in g and dst in g for g in self._groups)

    # -- traffic --------------------------------------------------------------
    def _send(self, src: str, link: int, data: bytes) -> SendResult:
        self.captured.append((src, link, data))
        sent = 0
        for dst in self._receivers:
            if dst == src:
                continue
            sent += 1
            if self._drop_next > 0:
                self._drop_next -= 1
                continue
            if not self.can_reach(link, src, dst):
                continue
            due = self.clock.monotonic() + self._delay
            heapq.heappush(self._queue, (due, next(self._order), dst, link, data, src))
        return SendResult(sent, 0)

    def inject(self, dst: str, link: int, data: bytes, source: str = "fake") -> None:
        """Queue arbitrary bytes for ``dst`` on ``link``, due now."""
        heapq.heappush(self._queue, (self.clock.monotonic(), next(self._order), dst, link, data, source))

    def deliver(self) -> int:
        """Deliver every queued datagram that is due; returns how many."""
        now = self.clock.monotonic()
        count = 0
        while self._queue and self._queue[0][0] <= now:
            _, _, dst, link, data, src = heapq.heappop(self._queue)
            receiver = self._receivers.get(dst)
            if receiver is not None:
                receiver(data, link, (src, link))
                count += 1
        self.delivered += count
        return count


class FakeTransport(Transport):
    """A node's attachment to a FakeNetwork; same guarantees as Transport."""

    def __init__(self, network: FakeNetwork, node: str) -> None:
        self.network = network
        self.node = node
        self.closed = False

    async def open(self, receiver: Receiver) -> None:
        self.attach(receiver)

    def attach(self, receiver: Receiver) -> None:
        """Synchronous ``open`` for tests that drive a service without an event loop."""
        self.network._receivers[self.node] = receiver
        self.closed = False

    def send(self, link: int, data: bytes) -> SendResult:
        if self.closed:
            return SendResult(0, 1)
        return self.network._send(self.node, link, data)

    def close(self) -> None:
        self.closed = True
        self.network._receivers.pop(self.node, None)
