"""The action graph's order: the walk in graph.py against the textbook algorithm.

``GraphBuilder._toposort`` walks the (rank, id) order and keeps a heap only for
actions reached before their predecessors; it must give exactly what Kahn's
algorithm with a heap of all ready actions gives (the lowest (rank, id) ready
action first), and None for a cycle.
"""

from __future__ import annotations

import heapq
import random

import pytest

from havm.scheduler.graph import GraphBuilder
from havm.scheduler.transition import OP_RANK, Action


def _kahn(actions: dict[str, Action], edges: dict[str, set[str]]) -> list[str] | None:
    ids = [a for _, a in sorted((OP_RANK.get(actions[a].op, 99), a) for a in edges)]
    num = {a: k for k, a in enumerate(ids)}
    waiting = [len(edges[a]) for a in ids]
    children: list[list[int]] = [[] for _ in ids]
    for a, befores in edges.items():
        for b in befores:
            children[num[b]].append(num[a])
    ready = [k for k, w in enumerate(waiting) if w == 0]
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(ids[k])
        for c in children[k]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, c)
    return order if len(order) == len(ids) else None


def _random_graph(rng: random.Random) -> GraphBuilder:
    g = GraphBuilder.__new__(GraphBuilder)  # only the graph: no placement behind it
    g.actions, g.edges = {}, {}
    for i in range(rng.randint(0, 30)):
        aid = f"r{rng.randint(0, 99)}_{i}"
        g.actions[aid] = Action(aid, rng.choice(list(OP_RANK)), "n1")
        g.edges[aid] = set()
    ids = list(g.actions)
    for _ in (range(rng.randint(0, 3 * len(ids))) if len(ids) > 1 else ()):
        before, after = rng.sample(ids, 2)
        if rng.random() < 0.97 and ids.index(before) > ids.index(after):
            before, after = after, before  # mostly acyclic, in any (rank, id) direction
        g.edges[after].add(before)
    return g


@pytest.mark.parametrize("seed", range(4))
def test_walk_orders_as_kahn(seed: int) -> None:
    rng = random.Random(seed)
    cycles = 0
    for _ in range(500):
        g = _random_graph(rng)
        want = _kahn(g.actions, g.edges)
        cycles += want is None
        assert g._toposort() == want
    assert 0 < cycles < 500  # both outcomes were exercised
