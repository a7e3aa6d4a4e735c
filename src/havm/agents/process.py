"""Finding and ending a VM's QEMU process by its pidfile, safely.

A pid alone is not an identity (pids are reused), so a process counts as the
VM's QEMU only if its command line carries the VM's own ``-pidfile`` path.
If the pidfile is gone but the process is not (someone cleaned the run dir),
``/proc`` is scanned for that command line, so stop never leaves a copy behind.
Zombies count as dead: a QEMU that exited but is not yet reaped runs nothing.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def owns_pidfile(pid: int, pidfile: Path) -> bool:
    args = _cmdline(pid)
    return any(a == "-pidfile" and b == str(pidfile) for a, b in zip(args, args[1:], strict=False))


def read_pid(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def scan_for(pidfile: Path) -> list[int]:
    """Every live process whose command line names ``pidfile`` (normally 0 or 1)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pid = int(entry)
            if pid_alive(pid) and owns_pidfile(pid, pidfile):
                found.append(pid)
    return sorted(found)


def find_vm_process(pidfile: Path) -> int | None:
    """The live QEMU owning ``pidfile``, or None."""
    pid = read_pid(pidfile)
    if pid is not None and pid_alive(pid) and owns_pidfile(pid, pidfile):
        return pid
    found = scan_for(pidfile)
    return found[0] if found else None


def wait_exit(pid: int, timeout: float, poll: float = 0.01) -> bool:
    """Wait up to ``timeout`` s for ``pid`` to die; True if it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def kill_and_wait(pid: int, timeout: float = 5.0) -> bool:
    """SIGKILL ``pid`` and wait for it to die; True if it is gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return wait_exit(pid, timeout)
