"""Bounded polling for tests of real daemons: wait until a condition holds, or fail saying what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from havm.errors import HavmError

T = TypeVar("T")

# a daemon that is starting, stopping or being killed answers with one of these for a while
TRANSIENT = (HavmError, OSError, ValueError, KeyError)


def wait_until(cond: Callable[[], T], timeout: float, what: str, every: float = 0.1,
               transient: tuple[type[BaseException], ...] = TRANSIENT,
               detail: Callable[[], str] | None = None) -> T:
    """Poll ``cond()`` until it returns something truthy (returned); at most ``timeout`` seconds.
    ``transient`` errors count as "not yet"; ``detail()`` is added to the timeout's message."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except transient as e:
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}"
                         + (f"\n{detail()}" if detail else ""))
