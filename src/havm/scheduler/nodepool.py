"""Which usable node is best when scores tie: a heap instead of a scan.

Most resources score most nodes equally (the base score); among those the
placement strategy decides: fewest resources (default, utilization), most free
capacity (balanced) or least free capacity that still fits (minimal), then the
node's position in the config. The pool keeps usable nodes in a heap keyed by
that order, updated in O(log n) when a node receives or loses a resource, so
choosing a node for one resource costs O(log n + nodes it must skip).
"""

from __future__ import annotations

import heapq

TYPE_CHECKING = False  # collections.abc imports collections: 8 M instructions at start-up
if TYPE_CHECKING:
    from collections.abc import Container, Mapping


class NodePool:
    def __init__(self, usable: list[bool], capacity: list[Mapping[str, int]], strategy: str) -> None:
        self.n = len(usable)
        self.usable = usable
        self.strategy = strategy
        self.use_capacity = strategy != "default"
        self.capacity = [dict(c) for c in capacity]
        self.free = [dict(c) for c in capacity]
        self.count = [0] * self.n
        # capacity held for running resources not yet placed, by priority: a resource
        # may only take room held for resources of lower priority
        self.reserved: list[dict[int, dict[str, int]]] = [{} for _ in range(self.n)]
        self.priority = 0  # priority of the resource being placed
        self.respect_equal = True  # may it take room held by resources of its own priority?
        self._key: list[tuple[int, ...]] = [self._compute(i) for i in range(self.n)]
        self._heap = [(self._key[i], i) for i in range(self.n) if usable[i]]
        heapq.heapify(self._heap)

    def _permille_free(self, i: int) -> int:
        free = self.free[i]
        permille = 0
        for d, c in self.capacity[i].items():  # (loops, not generators: called per placement)
            if c > 0:
                permille += free.get(d, 0) * 1000 // c
        return permille

    def _compute(self, i: int) -> tuple[int, ...]:
        if self.strategy == "balanced":
            return (-self._permille_free(i), self.count[i], i)
        if self.strategy == "minimal":
            return (self._permille_free(i), -self.count[i], i)
        return (self.count[i], i)

    def key(self, i: int) -> tuple[int, ...]:
        return self._key[i]

    def fits(self, i: int, need: Mapping[str, int]) -> bool:
        """Capacity left on node i for ``need`` (a dimension a node does not declare is 0)."""
        if not self.use_capacity or not need:
            return True
        free = self.free[i]
        held = self.reserved[i]
        if held:
            for d, v in need.items():
                if v > 0:
                    room = free.get(d, 0) - sum(r.get(d, 0) for p, r in held.items()
                                                if p > self.priority or (p == self.priority and self.respect_equal))
                    if room < v:
                        return False
            return True
        for d, v in need.items():
            if v > 0 and free.get(d, 0) < v:
                return False
        return True

    def reserve(self, i: int, priority: int, need: Mapping[str, int], sign: int = 1) -> None:
        """Hold (sign 1) or release (sign -1) room on node i for a resource running there."""
        if not self.use_capacity or not need:
            return
        held = self.reserved[i].setdefault(priority, {})
        for d, v in need.items():
            held[d] = held.get(d, 0) + sign * v
        if not any(held.values()):
            del self.reserved[i][priority]

    def take(self, i: int, need: Mapping[str, int], resources: int = 1) -> None:
        self.count[i] += resources
        if self.use_capacity:
            free = self.free[i]
            for d, v in need.items():
                free[d] = free.get(d, 0) - v
        self._update(i)

    def give_back(self, i: int, need: Mapping[str, int], resources: int = 1) -> None:
        self.count[i] -= resources
        if self.use_capacity:
            free = self.free[i]
            for d, v in need.items():
                free[d] = free.get(d, 0) + v
        self._update(i)

    def _update(self, i: int) -> None:
        k = self._compute(i)
        if k != self._key[i]:
            self._key[i] = k
            if self.usable[i]:
                heapq.heappush(self._heap, (k, i))
        if len(self._heap) > 8 * self.n + 64:  # drop stale entries now and then
            self._heap = [(self._key[j], j) for j in range(self.n) if self.usable[j]]
            heapq.heapify(self._heap)

    def best(self, exclude: Container[int], need: Mapping[str, int]) -> int | None:
        """The best usable node not in ``exclude`` with room for ``need``."""
        heap = self._heap
        skipped: list[tuple[tuple[int, ...], int]] = []
        found = None
        while heap:
            entry = heap[0]
            k, i = entry
            if k != self._key[i]:
                heapq.heappop(heap)  # stale
                continue
            if i in exclude or not self.fits(i, need):
                skipped.append(heapq.heappop(heap))
                continue
            found = i
            break
        for e in skipped:
            heapq.heappush(heap, e)
        return found
