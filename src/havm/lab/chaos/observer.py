"""The campaign's observer: outside the cluster, it samples every lab node's
QEMU processes continuously and records a timeline.

It never asks havm. Each sample lists the QEMU guests of the lab's namespaces
through /proc (``havm.lab.vms``) and asks each its run state over its
observers' QMP socket; a process stopped by SIGSTOP (a frozen node) is
recorded as ``frozen`` without asking (it cannot answer), or ``frozen:inmigrate``
if that node's copy of the VM was last seen waiting for an incoming migration (or
not seen yet, and its QEMU was started with ``-incoming``):
such a copy resumes only by receiving the rest of the stream, which pauses the
source first (a handover, not a second run). When a sample shows
a VM running on two nodes, the observer looks again at once and records that
second look too (``relook``): one sample asks the QEMUs one after the other,
so a live migration's switchover can show both copies running across it; a
real double run is still there on the second look (the checker wants both).

Only changes are stored (a sample equal to the previous one is counted, not
kept), so an hour of sampling every ~150 ms stays small.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from havm.lab import vms
from havm.lab.state import LabState

SAMPLE_INTERVAL = 0.15  # seconds between samples
QMP_TIMEOUT = 1.0  # seconds one QEMU gets to answer query-status


@dataclass(frozen=True)
class Copy:
    """One QEMU process of a VM as seen from outside."""

    vm: str
    node: str
    pid: int
    status: str  # QMP run state (running, inmigrate, postmigrate, paused...), frozen(:inmigrate), or unknown

    def to_json(self) -> dict[str, Any]:
        return {"vm": self.vm, "node": self.node, "pid": self.pid, "status": self.status}


@dataclass(frozen=True)
class Sample:
    t: float  # unix time
    copies: tuple[Copy, ...]
    relook: bool = False  # taken at once because the previous sample showed a double run

    def running_nodes(self, vm: str) -> list[str]:
        return sorted({c.node for c in self.copies if c.vm == vm and c.status == "running"})

    def doubles(self) -> list[str]:
        """VMs whose guest runs on two nodes or more in this sample."""
        return sorted({c.vm for c in self.copies if len(self.running_nodes(c.vm)) > 1})

    def held_twice(self) -> list[str]:
        """VMs running on one node while another node holds a copy that runs or is frozen
        (SIGSTOPped: it runs again on SIGCONT, so only a fence may let the VM start elsewhere)."""
        out = []
        for vm in sorted({c.vm for c in self.copies if c.status == "running"}):
            holders = {c.node for c in self.copies if c.vm == vm and c.status in ("running", "frozen")}
            if len(holders) > 1:
                out.append(vm)
        return out

    def key(self) -> tuple[tuple[str, str, int, str], ...]:
        return tuple((c.vm, c.node, c.pid, c.status) for c in self.copies)

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "type": "sample", "relook": self.relook,
                "copies": [c.to_json() for c in self.copies]}


@dataclass(frozen=True)
class Event:
    """Something the campaign did or saw (fault injected, undone, recovered...)."""

    t: float
    type: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "type": self.type, **self.detail}


def _proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


FROZEN_INCOMING = "frozen:inmigrate"


def frozen_status(before: str | None, incoming: bool = False) -> str:
    """The status of a frozen copy whose node's copy of the VM was last seen as ``before``
    (None: not seen), ``incoming`` if its QEMU was started to receive a migration.

    An incoming QEMU frozen before any look saw it (the freeze hit right after its launch)
    counts as incoming too. Were it frozen just after finishing a migration unseen, its
    thaw would show it running next to any other copy, which the relook confirms.
    """
    if before in ("inmigrate", FROZEN_INCOMING) or (before is None and incoming):
        return FROZEN_INCOMING
    return "frozen"


def _started_incoming(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"\0-incoming\0" in f.read()
    except OSError:
        return False


def scan(state: LabState, owner: Callable[[int], str | None], qmp_timeout: float = QMP_TIMEOUT,
         before: Sample | None = None) -> tuple[Copy, ...]:
    """Every QEMU guest process of the lab now, with its run state (``before``: the
    previous sample, for what a frozen copy was doing when it stopped; by VM and node,
    as QEMU's daemonizing changes the pid a first look may have seen)."""
    last = {(c.vm, c.node): c.status for c in before.copies} if before is not None else {}
    copies = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        guest = vms._qemu_guest(pid)  # the lab's own reader of QEMU command lines
        if guest is None:
            continue
        node = owner(pid)
        if node is None:
            continue
        proc = _proc_state(pid)
        if proc in ("Z", "X", "?"):
            continue
        # a stopped process cannot answer: asking would only stall the sample
        if proc in ("T", "t"):
            status = frozen_status(last.get((guest[0], node)), _started_incoming(pid))
        else:
            status = vms.qmp_status(guest[1], qmp_timeout)
        copies.append(Copy(guest[0], node, pid, status))
    return tuple(sorted(copies, key=lambda c: (c.vm, c.node, c.pid)))


class Observer:
    """A thread sampling the lab's QEMU processes every ``interval`` until ``stop``.

    ``timeline()`` returns the recorded samples and events, oldest first;
    ``latest`` is the last sample (stored or not). Events are added by the
    campaign with ``note``, so faults and samples share one clock and one list.
    """

    def __init__(self, lab_dir: str, interval: float = SAMPLE_INTERVAL) -> None:
        self.lab_dir = lab_dir
        self.interval = interval
        self.samples_taken = 0
        self.latest: Sample | None = None
        self.errors = 0
        self._entries: list[Sample | Event] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-observer", daemon=True)
        self._last_key: object = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def note(self, type: str, **detail: Any) -> Event:
        ev = Event(time.time(), type, detail)
        with self._lock:
            self._entries.append(ev)
        return ev

    def timeline(self) -> list[Sample | Event]:
        with self._lock:
            return list(self._entries)

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self.samples_taken += 1
            self.latest = sample
            if sample.key() != self._last_key or sample.relook or sample.doubles():
                self._entries.append(sample)
                self._last_key = sample.key()

    def _run(self) -> None:
        state = LabState.load(self.lab_dir)
        owner = vms._owner_of(state)  # pid -> lab node, by network namespace
        while not self._stop.is_set():
            started = time.monotonic()
            for attempt in (1, 2):
                try:
                    sample = Sample(time.time(), scan(state, owner, before=self.latest))
                    self._record(sample)
                    if sample.doubles():
                        self._record(Sample(time.time(), scan(state, owner, before=sample), relook=True))
                    break
                except Exception as e:  # the observer must outlive any one bad scan
                    # a scan races processes that come and go: scan again at once; only
                    # a scan that fails twice in a row is an error (both are noted)
                    what = f"{type(e).__name__}: {e}"
                    if attempt == 1:
                        self.note("observer-retry", error=what)
                    else:
                        self.errors += 1
                        self.note("observer-error", error=what)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
