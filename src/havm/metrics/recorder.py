"""Counters and histograms fed by the node's event log.

Most metrics are read from snapshots at scrape time (membership view, local
resource report, configuration). What only exists as a stream (actions and
their durations, fencing results, events per kind) is accumulated here by a
subscriber of ``EventLog``: ``observe`` is called on the emitting thread, so it
only takes a lock and adds numbers (the log asks subscribers to be quick).

Counts start at zero when havmd starts (events replayed from the log file at
start are not counted again); Prometheus' ``rate``/``increase`` handle the reset.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from havm.events import Event, EventLog

#: upper bounds of the action duration histogram, seconds (a probe takes
#: milliseconds, a live migration minutes)
ACTION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True)
class Histogram:
    counts: tuple[int, ...]  # per bucket, not cumulative; last: above every bound
    total: float  # sum of the observed values


@dataclass(frozen=True)
class Recorded:
    """What the recorder has seen since the daemon started (an immutable copy)."""

    events: Mapping[str, int] = field(default_factory=dict)  # kind -> count
    actions: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # (agent, op, result) -> count
    action_durations: Mapping[tuple[str, str, str], Histogram] = field(default_factory=dict)
    # one per fence *attempt* (a device tried once): (target, device, success|failure) -> count
    fencing: Mapping[tuple[str, str, str], int] = field(default_factory=dict)


def action_result(ev: Event) -> str:
    """ok, failed (the agent answered an error code) or error (no answer: unreachable, timeout)."""
    if ev.fields.get("ok"):
        return "ok"
    return "error" if ev.fields.get("rc") is None else "failed"


class MetricsRecorder:
    def __init__(self, events: EventLog | None = None, agent_of: Callable[[str], str | None] = lambda rsc: None
                 ) -> None:
        """``agent_of(rsc)``: the resource's agent, for action events that do not name it."""
        self._lock = threading.Lock()
        self._events: Counter[str] = Counter()
        self._actions: Counter[tuple[str, str, str]] = Counter()
        self._durations: dict[tuple[str, str, str], tuple[list[int], float]] = {}
        self._fencing: Counter[tuple[str, str, str]] = Counter()
        self.agent_of = agent_of
        self.unsubscribe: Callable[[], None] = lambda: None
        if events is not None:
            self.unsubscribe = events.subscribe(self.observe)

    def observe(self, ev: Event) -> None:
        f = ev.fields
        with self._lock:
            self._events[ev.kind] += 1
            if ev.kind == "action":
                agent = f.get("agent") or self.agent_of(str(f.get("rsc"))) or "unknown"
                key = (str(agent), str(f.get("op") or "unknown"), action_result(ev))
                self._actions[key] += 1
                duration = f.get("duration")
                if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
                    counts, total = self._durations.get(key) or ([0] * (len(ACTION_BUCKETS) + 1), 0.0)
                    counts[bisect.bisect_left(ACTION_BUCKETS, duration)] += 1
                    self._durations[key] = (counts, total + float(duration))
            elif ev.kind == "fence" and "ok" in f:
                self._fencing[(str(f.get("target") or f.get("node") or "unknown"), str(f.get("device") or ""),
                               "success" if f.get("ok") else "failure")] += 1

    @classmethod
    def for_daemon(cls, daemon: Any) -> MetricsRecorder:
        """The recorder of a NodeDaemon: its events, agents looked up in its resource catalog."""
        def agent_of(rsc: str) -> str | None:
            run = daemon.local.catalog.get(rsc)
            return run.agent if run is not None else None
        return cls(daemon.events, agent_of)

    def snapshot(self) -> Recorded:
        with self._lock:
            return Recorded(dict(self._events), dict(self._actions),
                            {k: Histogram(tuple(c), t) for k, (c, t) in self._durations.items()},
                            dict(self._fencing))
