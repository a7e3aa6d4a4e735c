"""The daemon's generation (incarnation) number, strictly increasing across restarts.

Peers refuse packets of a generation older than the newest they saw from us
(stale-generation), so a restarted daemon must come back with a larger one.
Wall-clock nanoseconds at start usually are; but a clock stepped backwards (an
RTC reset at boot, before NTP) would make our heartbeats look stale to every
peer that remembers us, and we would be declared dead. ``next_generation``
therefore also remembers the last value in a file and never goes below it.
"""

from __future__ import annotations

from havm.clock import Clock
from havm.durable import atomic_write


def next_generation(path: str, clock: Clock) -> int:
    """max(wall-clock ns, last stored + 1), stored atomically in ``path`` before it is returned."""
    last = 0
    try:
        with open(path, encoding="ascii") as f:
            last = int(f.read().strip() or 0)
    except FileNotFoundError:
        pass
    except ValueError:
        last = 0  # a corrupt file: wall clock only (logged by nobody: harmless)
    generation = max(int(clock.wall() * 1e9), last + 1)
    atomic_write(path, f"{generation}\n".encode("ascii"), 0o644)
    return generation
