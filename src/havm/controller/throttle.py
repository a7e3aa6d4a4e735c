"""How many actions of a transition may run at once: Pacemaker's batch-limit,
node-action-limit and migration-limit.

Why: after a node failure every resource of the lost node is recovered in one
transition, and without a per-node bound all its VMs start on the survivors
at once (a boot storm that can push small hosts past their action timeouts).

The rules, as Pacemaker's controller applies them (controld_te_actions.c):

- ``batch``: resource actions running in the whole cluster;
- ``per_node``: resource actions running on one node; a live migration
  (``migrate_to``, ``migrate_from``) counts on both its source and its target;
- ``migrations``: live migrations running on one node, counted the same way;
- fencing is never throttled and takes no slot: a fence must not wait behind
  starts, and recovery of the fenced node's resources waits for it anyway;
- pseudo actions execute nothing, so they take no slot either.

:class:`Gate` holds the ready actions that wait for a slot and admits them in
transition order: the smallest index among those whose slots are free, so an
action blocked on a busy node never holds back one on an idle node, and the
same transition always launches in the same order.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from havm.config.resources import Properties
from havm.scheduler.transition import Action

MIGRATION_OPS = frozenset({"migrate_to", "migrate_from"})
DEFAULT_BATCH = 16  # the controller's fixed limit before batch_limit existed


@dataclass(frozen=True)
class Limits:
    """How many actions may run at once; ``None``: no limit of that kind."""

    batch: int | None = DEFAULT_BATCH
    per_node: int | None = None
    migrations: int | None = None

    def __post_init__(self) -> None:
        for name in ("batch", "per_node", "migrations"):
            value = getattr(self, name)
            if value is not None and value < 1:
                # a limit of 0 would never admit an action: the transition would hang
                raise ValueError(f"{name} limit must be at least 1 or None, got {value}")

    @classmethod
    def from_properties(cls, p: Properties) -> Limits:
        """The configured limits (-1 in the configuration means no limit)."""
        return cls(batch=p.batch_limit,
                   per_node=None if p.node_action_limit < 0 else p.node_action_limit,
                   migrations=None if p.migration_limit < 0 else p.migration_limit)


@dataclass(frozen=True, order=True)
class SlotKey:
    """What an action occupies while it runs: a slot on each of ``nodes``, and a
    migration slot on each too when ``migration``. Actions with the same key need
    the same slots, so a key's waiting actions are admitted in index order."""

    nodes: tuple[str, ...]
    migration: bool


def slot_key(a: Action) -> SlotKey | None:
    """The slots ``a`` needs, or None if it is never throttled (fence, pseudo)."""
    if a.pseudo or a.op == "fence":
        return None
    if a.op in MIGRATION_OPS:
        return SlotKey(tuple(sorted({n for n in (a.node, a.target) if n is not None})), True)
    return SlotKey((a.node,) if a.node is not None else (), False)


class Gate:
    """Running counts against :class:`Limits`, and the actions waiting for a slot.

    ``queue`` and ``release`` are O(log n); ``admit`` is O(k log k) for k keys
    with waiting actions (k is bounded by the nodes and migration pairs, not by
    the transition's size) plus O(log n) per action admitted.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._running = 0
        self._jobs: dict[str, int] = {}
        self._migrating: dict[str, int] = {}
        self._waiting: dict[SlotKey, list[int]] = {}  # key -> heap of transition indices

    def queue(self, index: int, key: SlotKey) -> None:
        heapq.heappush(self._waiting.setdefault(key, []), index)

    def admit(self) -> list[int]:
        """Take slots for waiting actions, smallest index first, while any fits;
        the admitted indices in that order. Admitting only takes slots, so a key
        that does not fit now cannot fit later in the same call."""
        admitted: list[int] = []
        heads = [(q[0], key) for key, q in self._waiting.items()]
        heapq.heapify(heads)
        while heads and not self._batch_full():
            _, key = heapq.heappop(heads)
            if not self._fits(key):
                continue
            q = self._waiting[key]
            admitted.append(heapq.heappop(q))
            self._take(key)
            if q:
                heapq.heappush(heads, (q[0], key))
            else:
                del self._waiting[key]
        return admitted

    def release(self, key: SlotKey) -> None:
        """An admitted action with this key finished (whatever its result)."""
        self._running -= 1
        for n in key.nodes:
            self._jobs[n] -= 1
            if key.migration:
                self._migrating[n] -= 1

    def _batch_full(self) -> bool:
        return self.limits.batch is not None and self._running >= self.limits.batch

    def _fits(self, key: SlotKey) -> bool:
        per_node, migrations = self.limits.per_node, self.limits.migrations
        if per_node is not None and any(self._jobs.get(n, 0) >= per_node for n in key.nodes):
            return False
        return not (key.migration and migrations is not None
                    and any(self._migrating.get(n, 0) >= migrations for n in key.nodes))

    def _take(self, key: SlotKey) -> None:
        self._running += 1
        for n in key.nodes:
            self._jobs[n] = self._jobs.get(n, 0) + 1
            if key.migration:
                self._migrating[n] = self._migrating.get(n, 0) + 1
