"""The cluster's history: every member's event log, merged (``havm history``, GET /v1/history).

Each member answers with its own events matching the filter (signed
``POST /internal/events``); the node asked merges them by time. Members that
do not answer are named in the result, so a gap in the history is visible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from havm.commands.base import Command
from havm.errors import UsageError

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100000

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class GetHistory(Command):
    """Events since ``since`` (unix time), optionally only of one resource, of some
    kinds (``node`` matches node.join and node.leave) or about one node; the newest
    ``limit`` of them, oldest first."""

    name = "history"
    since: float | None = None
    resource: str | None = None
    kinds: list[str] | None = None
    node: str | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise UsageError(f"history: limit must be between 1 and {MAX_LIMIT}, got {self.limit}")


def parse_since(text: str, now: float) -> float:
    """``--since`` / ``?since=``: a unix time (``1763790000``), or an age (``90s``, ``10m``, ``2h``, ``1d``, ``1w``)."""
    t = text.strip()
    m = _DURATION.match(t)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        value = float(t)
    except ValueError:
        raise UsageError(f"since {text!r}: expected a unix time or an age such as 90s, 10m, 2h, 1d") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"since {text!r}: expected a finite number")
    return value
