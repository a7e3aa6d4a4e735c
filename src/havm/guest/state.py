"""Reading the guest's visible state (boot_id, counter) from serial or HTTP."""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

from havm.guest.build import STATE_PATH

_SERIAL = re.compile(r"havm: (?:up )?boot_id=([0-9a-f-]{36}) counter=(\d+)")


@dataclass(frozen=True)
class GuestState:
    boot_id: str
    counter: int


def parse_state(text: str) -> GuestState:
    """Parse the ``key=value`` body of ``GET /cgi-bin/state``."""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    try:
        return GuestState(fields["boot_id"].strip(), int(fields["counter"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"not a havm guest state: {text[:200]!r}") from exc


def parse_serial_states(text: str) -> list[GuestState]:
    """Every state line the guest printed on its serial console, in order."""
    return [GuestState(m[1], int(m[2])) for m in _SERIAL.finditer(text)]


def fetch_state(host: str, port: int, timeout: float = 2.0) -> GuestState:
    """GET the state over TCP (raises OSError if the service does not answer)."""
    url = f"http://{host}:{port}{STATE_PATH}"
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback/lab only)
        return parse_state(resp.read().decode())
