"""Probers for the ``ping`` tiebreaker, run off the membership event loop.

A ``Prober`` answers "can this node reach at least one tiebreaker target?"
from its latest probe, instantly: the membership loop must never wait for a
ping. ``PingProber`` probes in its own thread with the system ``ping``;
``FakeProber`` is set by tests.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence

log = logging.getLogger("havm.membership")


class Prober(ABC):
    """Guarantees: ``reachable`` never blocks and never raises; before the first
    probe has finished it returns None (unknown, treated as unreachable)."""

    def start(self) -> None:  # noqa: B027 - optional hook
        """Begin probing (idempotent)."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop probing and release threads (idempotent)."""

    @abstractmethod
    def reachable(self) -> bool | None: ...


class FakeProber(Prober):
    def __init__(self, reachable: bool | None = True) -> None:
        self.result = reachable

    def reachable(self) -> bool | None:
        return self.result


class PingProber(Prober):
    """Every ``interval`` seconds, ``ping -c1 -W1`` each target until one answers."""

    def __init__(self, targets: Sequence[str], interval: float = 1.0, timeout: float = 1.0) -> None:
        self.targets = list(targets)
        self.interval = interval
        self.timeout = timeout
        self._result: bool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ping = shutil.which("ping")

    def start(self) -> None:
        if self._thread is not None:
            return
        if self._ping is None:
            log.error("tiebreaker: 'ping' not found in PATH; targets count as unreachable")
        self._thread = threading.Thread(target=self._loop, name="havm-tiebreak-ping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 2)
            self._thread = None

    def reachable(self) -> bool | None:
        return self._result

    def probe_once(self) -> bool:
        if self._ping is None:
            return False
        wait = str(max(1, round(self.timeout)))
        for target in self.targets:
            try:
                done = subprocess.run([self._ping, "-n", "-q", "-c1", "-W", wait, target],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      timeout=self.timeout + 2, check=False)
            except (OSError, subprocess.SubprocessError):
                continue
            if done.returncode == 0:
                return True
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            result = self.probe_once()
            if result != self._result:
                log.info("tiebreaker: ping targets %s %s", ",".join(self.targets),
                         "reachable" if result else "unreachable")
            self._result = result
            self._stop.wait(self.interval)
