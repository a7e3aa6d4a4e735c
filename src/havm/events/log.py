"""The node's event log: an append-only record of what happened, as it happened.

Every node keeps its own log (``state_dir/events.jsonl``, one JSON object per
line, appended and flushed as each event happens; rotated to ``events.jsonl.1``
past ``max_bytes``). The cluster's history is the merge of every member's log
by time (``havm history`` gathers them as ``havm status`` gathers reports).

Guarantees: ``emit`` never raises (a full disk or a bad subscriber is logged
and the event still reaches the other subscribers); events of one node are
numbered without gaps (``seq`` continues across daemon restarts); subscribers
are called synchronously on the emitting thread, in order, so they must be
quick (queue the event, don't process it there).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from havm.clock import Clock, SystemClock

log = logging.getLogger("havm.events")

KINDS = {
    "node.join": "a node became a member",
    "node.leave": "a member left or was lost",
    "quorum.gained": "this node's partition became quorate",
    "quorum.lost": "this node's partition lost quorum",
    "controller.changed": "another node became the controller",
    "controller.term": "the controller claimed a term from a majority before its first change (term, granted)",
    "action": "an agent action finished (rsc, op, node, rc, ok, duration)",
    "resource.changed": "a resource's state on this node changed outside an action (monitor)",
    "fence": "a fencing attempt finished (node, device, ok)",
    "fence.abandoned": "a fence given up before an attempt: its target rejoined, or this node left office",
    "fence.watchdog-wait": "recovery waits for a lost node's watchdog (node, remaining seconds)",
    "fence.self": "this node was asked to fence itself: its watchdog is no longer fed (reset_in, requested_by)",
    "watchdog.armed": "this node's watchdog was armed (timeout, reason)",
    "watchdog.disarmed": "this node's watchdog was disarmed cleanly: nothing runs here (reason)",
    "watchdog.expiry-wait": "this node stopped feeding its watchdog: reset unless it can disarm first",
    "watchdog.feeding": "this node feeds its watchdog again after a hold",
    "watchdog.error": "the watchdog cannot be armed or fed (the node is not protected)",
    "config.changed": "a new configuration version was committed (version, by, comment, diff)",
    "daemon.started": "havmd started",
    "daemon.stopped": "havmd stopped",
}


@dataclass(frozen=True)
class Event:
    seq: int
    time: float  # wall clock, seconds since the epoch
    node: str  # where it was recorded
    kind: str
    text: str  # one line for people
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "node": self.node, "kind": self.kind,
                "text": self.text, "fields": dict(self.fields)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Event:
        if not isinstance(d, Mapping):
            raise ValueError("an event must be a JSON object")
        try:
            return cls(int(d["seq"]), float(d["time"]), str(d["node"]), str(d["kind"]), str(d.get("text", "")),
                       dict(d.get("fields") or {}))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"bad event {str(d)[:120]}: {e}") from None

    def matches(self, since: float | None = None, kinds: Iterable[str] = (), resource: str | None = None,
                node: str | None = None) -> bool:
        if since is not None and self.time < since:
            return False
        kinds = tuple(kinds)
        if kinds and not any(self.kind == k or self.kind.startswith(k + ".") for k in kinds):
            return False
        if resource is not None and self.fields.get("rsc") != resource:
            return False
        return node is None or node in (self.node, self.fields.get("node"), self.fields.get("target"))


Subscriber = Callable[[Event], None]


class EventLog:
    def __init__(self, node: str, path: str | None = None, clock: Clock | None = None, keep: int = 2000,
                 max_bytes: int = 16 << 20) -> None:
        self.node = node
        self.path = path
        self.clock = clock or SystemClock()
        self.max_bytes = max_bytes
        self._recent: deque[Event] = deque(maxlen=keep)
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._seq = 0
        if path:
            self._load(path)

    def _load(self, path: str) -> None:
        for p in (path + ".1", path):
            try:
                with open(p, encoding="utf-8") as f:
                    for line in f:
                        try:
                            ev = Event.from_json(json.loads(line))
                        except ValueError:  # a torn last line after a crash: skip it
                            continue
                        self._recent.append(ev)
                        self._seq = max(self._seq, ev.seq)
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("cannot read the event log %s: %s", p, e.strerror)

    def subscribe(self, cb: Subscriber) -> Callable[[], None]:
        """Call ``cb`` for every later event; returns the function that unsubscribes."""
        with self._lock:
            self._subscribers.append(cb)

        def unsubscribe() -> None:
            with self._lock:
                if cb in self._subscribers:
                    self._subscribers.remove(cb)
        return unsubscribe

    def emit(self, kind: str, text: str, **fields: Any) -> Event:
        with self._lock:
            self._seq += 1
            ev = Event(self._seq, self.clock.wall(), self.node, kind, text, fields)
            self._recent.append(ev)
            self._append(ev)
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(ev)
            except Exception:  # noqa: BLE001 - one bad subscriber must not stop the others
                log.exception("event subscriber %r failed on %s", cb, kind)
        return ev

    def _append(self, ev: Event) -> None:
        if not self.path:
            return
        try:
            line = json.dumps(ev.to_json(), default=str, separators=(",", ":")) + "\n"
            try:
                if os.path.getsize(self.path) + len(line) > self.max_bytes:
                    os.replace(self.path, self.path + ".1")
            except FileNotFoundError:
                pass
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as e:
            log.error("cannot append to the event log %s: %s (event %s kept in memory)", self.path, e.strerror,
                      ev.kind)

    def recent(self, since: float | None = None, kinds: Iterable[str] = (), resource: str | None = None,
               node: str | None = None, limit: int | None = None) -> list[Event]:
        with self._lock:
            out = [e for e in self._recent if e.matches(since, kinds, resource, node)]
        return out[-limit:] if limit else out


def merge(*logs: Iterable[Event]) -> list[Event]:
    """Several nodes' events as one history, oldest first (ties: node, then seq)."""
    return sorted((e for events in logs for e in events), key=lambda e: (e.time, e.node, e.seq))
