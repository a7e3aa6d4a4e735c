"""Read a lab's daemon logs as timed events: the demo, benches and tests measure
detection, fencing and recovery from them (every node logs on this machine's clock).

Log lines look like ``2026-11-22 04:50:45,041 n2 havm.controller WARNING: fencing n1``;
the texts matched here (``peer X is dead``, ``fenced X: confirmed off``,
``start R: rc=0 (success) in Ts``, ``transition: ...``) are a contract: change
them only together with their readers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\S+) "


@dataclass(frozen=True)
class LogEvent:
    at: float  # unix time
    node: str
    match: re.Match[str]  # group 1: the stamp, 2: the node, then the pattern's own groups


def parse_stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def node_log(lab_dir: str, node: str) -> list[str]:
    p = Path(lab_dir) / "nodes" / node / "havmd.log"
    return p.read_text(errors="replace").splitlines() if p.exists() else []


def events(lab_dir: str, pattern: str, after: float | None = None,
           nodes: list[str] | None = None) -> list[LogEvent]:
    """Every line of the nodes' logs matching ``pattern`` (after the stamp and node
    name), oldest first; only those at or after ``after`` if given."""
    rx = re.compile(STAMP + pattern)
    out = []
    for log in sorted(Path(lab_dir, "nodes").glob("*/havmd.log")):
        node = log.parent.name
        if nodes is not None and node not in nodes:
            continue
        for line in log.read_text(errors="replace").splitlines():
            m = rx.match(line)
            if m:
                at = parse_stamp(m.group(1))
                if after is None or at >= after:
                    out.append(LogEvent(at, node, m))
    return sorted(out, key=lambda e: e.at)


def first(lab_dir: str, pattern: str, after: float | None = None, nodes: list[str] | None = None
          ) -> LogEvent | None:
    found = events(lab_dir, pattern, after, nodes)
    return found[0] if found else None
