"""The agent interface: how havm starts, stops, watches and moves one resource.

An agent instance manages one resource (``resource_id``) on the local node, with
the parameters of its definition. The executor calls the actions below,
never two at once for the same resource, each under a timeout of its own (the
executor enforces it), possibly each in a fresh process: agents keep no state
in memory between calls (it lives in files, processes, the system). Calls are
plain blocking calls. Every action returns an ``AgentResult`` whose ``data``
is JSON-serializable; agents report failure through its ``rc``, not by
raising (an exception escaping an action is a bug the executor turns into
ERR_GENERIC).

The return codes and their meanings are OCF's (Open Cluster Framework, as used
by Heartbeat and Pacemaker), so ``ocf`` agents and native agents read alike.

Guarantees every agent gives:

* ``start``: on OCF_SUCCESS the resource runs here and a ``monitor`` right after
  returns OCF_SUCCESS. Starting a running resource is a success (idempotent).
* ``stop``: idempotent; on OCF_SUCCESS nothing of the resource runs here any
  more (no process, no half-started copy). Stopping a stopped resource is a
  success. A stop that fails means "may still run": the cluster must fence.
* ``monitor``: never changes state. OCF_SUCCESS = running and healthy;
  OCF_NOT_RUNNING = cleanly stopped; anything else = failed (e.g. ERR_GENERIC
  for a crashed process or a guest that does not answer).
* ``validate``: checks the parameters and the local prerequisites (binaries,
  files) without changing anything.
* ``meta_data``: the OCF XML description of the agent (parameters, actions).
* Live migration, in phases run on two nodes (Ganeti's hv_base order):
  ``migrate_check(target)`` on the source changes nothing;
  ``migrate_prepare(source)`` on the target makes it ready to receive and
  returns in ``data`` what the source needs (qemu: ``{"uri": "tcp:IP:PORT",
  "host": IP, "port": PORT}``);
  ``migrate_to(target, prepared)`` on the source, with that ``data``, moves
  the resource; after it the source's copy is *not* yet removed (qemu: it is
  paused in ``postmigrate``; ``data`` has QEMU's ``total_ms``/``downtime_ms``);
  ``migrate_from(source)`` on the target confirms the resource runs there;
  then ``stop`` on the source cleans it up. If ``migrate_prepare``,
  ``migrate_to`` or ``migrate_from`` fails, ``migrate_abort`` on the target
  removes the incoming copy and, only once that succeeded, ``migrate_recover``
  on the source makes sure the source copy runs again: exactly one copy runs
  whatever phase failed (``havm.agents.migrate.live_migrate`` is the reference
  sequence). Between ``migrate_to`` and the source's ``stop`` a source monitor
  reports failure (qemu: ERR_GENERIC, ``data.status == "postmigrate"``): the
  executor suspends recurring monitors of a resource while it migrates.
  Agents that cannot migrate return OCF_ERR_UNIMPLEMENTED from these.
* ``promote``/``demote``: for multi-state resources; others return
  OCF_ERR_UNIMPLEMENTED.

Long actions take ``progress``, a callback receiving short human-readable
lines ("migrating: 45% transferred"); it must be cheap and must not raise.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar

Progress = Callable[[str], None]

OUTPUT_TAIL_CHARS = 2000


class OCF(IntEnum):
    """OCF return codes. Their numeric values are fixed by the OCF standard."""

    SUCCESS = 0
    """The action succeeded; for monitor: the resource runs and is healthy."""
    ERR_GENERIC = 1
    """The action failed (a soft error: a retry or a move elsewhere may help)."""
    ERR_ARGS = 2
    """Bad or missing parameters for this action (the call itself is wrong)."""
    ERR_UNIMPLEMENTED = 3
    """The agent does not implement this action."""
    ERR_PERM = 4
    """Not permitted (insufficient privileges); retrying here will not help."""
    ERR_INSTALLED = 5
    """A required binary or file is missing on this node; try another node."""
    ERR_CONFIGURED = 6
    """The resource's configuration is invalid: fatal on every node."""
    NOT_RUNNING = 7
    """monitor/probe: the resource is cleanly stopped here (not an error)."""
    RUNNING_PROMOTED = 8
    """monitor: the resource runs here in the promoted (master) role."""
    FAILED_PROMOTED = 9
    """monitor: the resource failed while promoted."""

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    OCF.SUCCESS: "success",
    OCF.ERR_GENERIC: "generic error",
    OCF.ERR_ARGS: "invalid arguments",
    OCF.ERR_UNIMPLEMENTED: "action not implemented",
    OCF.ERR_PERM: "insufficient privileges",
    OCF.ERR_INSTALLED: "not installed",
    OCF.ERR_CONFIGURED: "not configured",
    OCF.NOT_RUNNING: "not running",
    OCF.RUNNING_PROMOTED: "running promoted",
    OCF.FAILED_PROMOTED: "failed promoted",
}


@dataclass(frozen=True)
class AgentResult:
    """What one agent action produced.

    ``output`` is the tail of what the action logged (at most OUTPUT_TAIL_CHARS),
    for status displays and action history. ``data`` carries structured results
    some actions return (``migrate_prepare``: the incoming address;
    ``migrate_to``: QEMU's measured ``downtime_ms``/``total_ms``).
    """

    rc: OCF
    output: str = ""
    duration: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == OCF.SUCCESS

    def __str__(self) -> str:
        tail = self.output.strip().splitlines()[-1:] if self.output.strip() else []
        last = f": {tail[0]}" if tail else ""
        return f"rc={int(self.rc)} ({self.rc.meaning}) in {self.duration:.3f}s{last}"


class ActionLog:
    """Collects an action's output lines and forwards them to ``progress``."""

    def __init__(self, progress: Progress | None = None) -> None:
        self._lines: list[str] = []
        self._progress = progress
        self._started = time.monotonic()

    def __call__(self, line: str) -> None:
        self._lines.append(line)
        if self._progress is not None:
            try:
                self._progress(line)
            except Exception:  # noqa: BLE001 - a broken display must not break the action
                self._progress = None

    def result(self, rc: OCF, data: Mapping[str, Any] | None = None) -> AgentResult:
        text = "\n".join(self._lines)
        return AgentResult(
            rc=rc,
            output=text[-OUTPUT_TAIL_CHARS:],
            duration=time.monotonic() - self._started,
            data=dict(data or {}),
        )


class Agent(ABC):
    """One resource, managed on the local node. See the module docstring for guarantees."""

    #: The name the configuration refers to (``agent: qemu``).
    kind: ClassVar[str] = ""

    def __init__(self, resource_id: str, params: Mapping[str, Any]) -> None:
        self.resource_id = resource_id
        self.params = dict(params)

    @abstractmethod
    def start(self, progress: Progress | None = None) -> AgentResult: ...

    @abstractmethod
    def stop(self, progress: Progress | None = None) -> AgentResult: ...

    @abstractmethod
    def monitor(self) -> AgentResult: ...

    @abstractmethod
    def validate(self) -> AgentResult: ...

    @abstractmethod
    def meta_data(self) -> str: ...

    def _unimplemented(self, action: str) -> AgentResult:
        return AgentResult(OCF.ERR_UNIMPLEMENTED, f"{self.kind}: {action} not implemented")

    # Live migration (see the module docstring for the order and guarantees).
    def migrate_check(self, target: str) -> AgentResult:
        return self._unimplemented("migrate_check")

    def migrate_prepare(self, source: str, progress: Progress | None = None) -> AgentResult:
        return self._unimplemented("migrate_prepare")

    def migrate_to(
        self, target: str, prepared: Mapping[str, Any], progress: Progress | None = None
    ) -> AgentResult:
        return self._unimplemented("migrate_to")

    def migrate_from(self, source: str, progress: Progress | None = None) -> AgentResult:
        return self._unimplemented("migrate_from")

    def migrate_abort(self, progress: Progress | None = None) -> AgentResult:
        return self._unimplemented("migrate_abort")

    def migrate_recover(self, progress: Progress | None = None) -> AgentResult:
        return self._unimplemented("migrate_recover")

    def promote(self, progress: Progress | None = None) -> AgentResult:
        return self._unimplemented("promote")

    def demote(self, progress: Progress | None = None) -> AgentResult:
        return self._unimplemented("demote")
