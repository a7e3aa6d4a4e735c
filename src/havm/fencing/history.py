"""The fencing history of one node: the last attempts it ran, persisted.

Kept in ``STATE_DIR/fencing-history.json`` (``havm.durable.atomic_write``), so
it survives a daemon restart: after a power cycle the operator still sees
who fenced whom, when, through which device, and how it went. Each node
keeps the attempts it ran itself; ``havm status`` merges every member's.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable

from havm.durable import atomic_write
from havm.fencing.records import FenceAttempt

log = logging.getLogger("havm.fencing")

HISTORY_FILE = "fencing-history.json"
HISTORY_SIZE = 100  # attempts kept per node
SCHEMA = 1


class FenceHistory:
    def __init__(self, path: str | None, size: int = HISTORY_SIZE) -> None:
        """``path`` None: in memory only (tests, tools)."""
        self.path = path
        self.size = size
        self._attempts: list[FenceAttempt] = self._load()

    def _load(self) -> list[FenceAttempt]:
        if self.path is None or not os.path.exists(self.path):
            return []
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            return [FenceAttempt.from_json(a) for a in data.get("attempts", [])][-self.size:]
        except (OSError, ValueError, TypeError, AttributeError) as e:
            # a damaged history must not keep the daemon from starting (or fencing)
            log.error("fencing history %s is unreadable (%s): starting a new one", self.path, e)
            return []

    def add(self, attempts: Iterable[FenceAttempt]) -> None:
        self._attempts.extend(attempts)
        del self._attempts[:-self.size]
        self._save()

    def attempts(self) -> list[FenceAttempt]:
        """Oldest first."""
        return list(self._attempts)

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"schema": SCHEMA, "attempts": [a.to_json() for a in self._attempts]}
        try:
            atomic_write(self.path, json.dumps(data).encode(), 0o644)
        except OSError as e:  # a history that cannot be saved must not stop a fence
            log.error("cannot save the fencing history to %s: %s", self.path, e)


def summarize(attempts: Iterable[FenceAttempt], limit: int = 20) -> dict[str, object]:
    """The status document's ``fencing`` part from attempts gathered on any nodes
    (duplicates removed): the newest ``limit`` first, and the nodes whose fencing
    is failing (their newest attempt failed), with how many attempts failed since
    their last success."""
    unique = {(a.executor, a.node, a.device, a.started, a.attempt): a for a in attempts}
    ordered = sorted(unique.values(), key=lambda a: a.started)
    failing: dict[str, dict[str, object]] = {}
    for a in ordered:
        if a.ok:
            failing.pop(a.node, None)
            continue
        f = failing.setdefault(a.node, {"node": a.node, "failed_attempts": 0, "since": a.started})
        f["failed_attempts"] = int(f["failed_attempts"]) + 1  # type: ignore[call-overload]
        f.update(last_device=a.device, last_error=a.error, last_at=a.started)
    return {"history": [a.to_json() for a in reversed(ordered[-limit:])],
            "failing": sorted(failing.values(), key=lambda f: str(f["node"]))}
