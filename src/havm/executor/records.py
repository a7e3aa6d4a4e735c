"""What the executor remembers: action records, per-resource local state."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from havm.agents.base import OCF

HISTORY_LEN = 500


@dataclass(frozen=True)
class ActionRequest:
    rsc: str
    agent: str  # full agent name, e.g. havm:vm, ocf:heartbeat:IPaddr2
    action: str  # start, stop, monitor, promote, demote, migrate_*, validate
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float = 20.0
    interval: float = 0.0  # >0 for recurring monitors; 0 for probes and one-shot actions
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionRecord:
    """One finished action, as shown in status and history."""

    node: str
    rsc: str
    action: str
    rc: int
    started_at: float  # wall clock
    duration: float
    output: str
    interval: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == OCF.SUCCESS

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["rc_text"] = OCF(self.rc).meaning if self.rc in OCF._value2member_map_ else "unknown"
        return d


# Roles (LocalState.role) of a copy that is present but must be stopped before the
# resource runs elsewhere; of those, the two ends of an unfinished live migration.
PRESENT_AND_FAILED = ("failed", "stop-failed", "migrated", "incoming")
MIGRATION_LEFTOVERS = ("migrated", "incoming")
PRESENT = ("started", "promoted", *PRESENT_AND_FAILED)  # a copy may run here
ROLES = ("started", "promoted", "stopped", *PRESENT_AND_FAILED)  # every role


@dataclass(frozen=True)
class LocalState:
    """What this node knows of one resource here.

    ``role``: started, promoted, stopped, failed (a monitor or start found it
    broken: it may still be partly running, so it must be stopped), or
    stop-failed (a stop failed: it may still run; only fencing makes it safe),
    migrated (a live migration's source after migrate_to: a stale copy until its
    stop), incoming (a migration's target after migrate_prepare: its copy runs
    once the stream ends, until migrate_from, migrate_abort or a stop settles it).
    """

    rsc: str
    role: str = "stopped"
    failcount: int = 0
    last_failure: float | None = None
    last_rc: int | None = None
    last_action: str | None = None
    probed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class History:
    def __init__(self, maxlen: int = HISTORY_LEN) -> None:
        self._records: deque[ActionRecord] = deque(maxlen=maxlen)

    def add(self, rec: ActionRecord) -> None:
        self._records.append(rec)

    def recent(self, rsc: str | None = None, limit: int = 50) -> list[ActionRecord]:
        recs: Iterable[ActionRecord] = self._records
        if rsc is not None:
            recs = [r for r in recs if r.rsc == rsc]
        return list(recs)[-limit:]
