"""Wait for the cluster to reach what an operator command asked for, showing progress."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from havm.commands.cluster import GetStatus
from havm.daemon.client import Client
from havm.errors import HavmError, Timeout

Check = Callable[[dict[str, Any]], bool]


def resource(st: dict[str, Any], rsc: str) -> dict[str, Any] | None:
    for r in st.get("resources", []):
        if r["id"] == rsc:
            return r
    return None


def describe(st: dict[str, Any], rscs: list[str]) -> str:
    parts = []
    for rsc in rscs:
        r = resource(st, rsc)
        if r is None:
            continue
        where = ",".join(r["nodes"]) or "-"
        busy = "; ".join(f"{a} on {n}" for n, a in r.get("in_flight", {}).items())
        parts.append(f"{rsc}: {r['state']} on {where}" + (f" ({busy})" if busy else ""))
    return "  ".join(parts)


def wait_for(client: Client, check: Check, rscs: list[str], timeout: float, what: str,
             quiet: bool = False) -> dict[str, Any]:
    """Poll status until ``check(status)``; print each new state line; bounded by ``timeout``."""
    t0 = time.monotonic()
    last = ""
    while True:
        try:
            st = client.run(GetStatus(), timeout=10)
        except HavmError as e:
            st = None
            line = f"(waiting: {e})"
        else:
            if check(st):
                if not quiet:
                    print(f"  {time.monotonic() - t0:6.1f}s  {describe(st, rscs)}", flush=True)
                    print(f"done: {what} ({time.monotonic() - t0:.1f}s)")
                return st
            line = describe(st, rscs)
        if line != last and not quiet:
            print(f"  {time.monotonic() - t0:6.1f}s  {line}", flush=True)
            last = line
        if time.monotonic() - t0 > timeout:
            raise Timeout(f"{what}: not reached within {timeout:g}s; the cluster keeps trying "
                          f"(see 'havm status')")
        time.sleep(0.25)


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr)
