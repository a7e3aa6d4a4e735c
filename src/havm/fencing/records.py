"""What fencing did, as small frozen records: kept in the history, shown in
``havm status``, returned by ``havm node fence``.

``FenceAttempt`` is one try of one device (the off action and its
confirmation); ``FenceOutcome`` is one fence operation (levels, retries and
delay included). Their ``to_json`` keys are part of the status document
(docs/status.md): add, never rename.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OUTPUT_TAIL = 600  # characters of the agent's output kept per attempt


def tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


@dataclass(frozen=True)
class DeviceResult:
    """What a device reports for one off request.

    ``ok`` only when the node is confirmed off (the device's guarantee).
    ``rc`` is the off action's exit status (None if it never exited: timeout,
    not found); ``already_off`` when the device found the node off before acting.
    """

    ok: bool
    rc: int | None = None
    output: str = ""
    already_off: bool = False
    error: str = ""


@dataclass(frozen=True)
class FenceAttempt:
    node: str
    device: str
    agent: str
    level: int  # 1-based
    attempt: int  # 1-based try of this device within the operation
    action: str
    ok: bool
    rc: int | None
    output: str  # tail of what the agent printed (stderr and stdout)
    error: str  # why it failed, in a sentence ("" when ok)
    already_off: bool
    started: float  # wall clock (UNIX seconds)
    duration: float  # seconds
    requested_by: str
    executor: str  # the node that ran the agent

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FenceAttempt:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class FenceOutcome:
    node: str
    ok: bool
    requested_by: str
    executor: str
    started: float
    duration: float
    delay: float  # seconds waited before the first attempt
    level: int | None  # the level that succeeded
    already_off: bool
    attempts: tuple[FenceAttempt, ...] = field(default_factory=tuple)
    error: str = ""
    # why the fence was given up before an attempt ("n1 is a member again"), "" if it was not:
    # not ok, and not a failure either: the node was NOT fenced and must not be taken as off
    abandoned: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["attempts"] = [a.to_json() for a in self.attempts]
        return d
