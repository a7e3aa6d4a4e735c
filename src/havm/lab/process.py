"""Spawning, inspecting and signalling lab processes.

Lab daemons must outlive the command that starts them and must not become
zombies of a long-lived caller (a test run, a fault campaign): they are
started through ``sh -c 'CMD & echo $!'`` so that their parent exits at once
and they are reparented away from us, each in its own session (``setsid``)
so that its process group is exactly "the daemon and what it started".

A pid alone is not an identity: pids are reused. Every recorded process is
identified by (pid, start time in clock ticks since boot) and signalled only
while both match. A zombie counts as dead (this machine's pid 1 does not
always reap orphans).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from havm.errors import LabError

POLL = 0.02  # seconds between checks while waiting on processes


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    state: str  # one letter of /proc/PID/stat: R S D T t Z X ...
    start: int  # start time, clock ticks since boot
    pgid: int
    sid: int
    cpu_ticks: int = 0  # user + system time, clock ticks
    rss_pages: int = 0


def proc_info(pid: int) -> ProcInfo | None:
    """What /proc says about ``pid``, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    rest = raw[raw.rfind(")") + 2:].split()
    # rest[0] is field 3 (state); field N is rest[N - 3]
    return ProcInfo(pid=pid, state=rest[0], start=int(rest[19]), pgid=int(rest[2]), sid=int(rest[3]),
                    cpu_ticks=int(rest[11]) + int(rest[12]), rss_pages=int(rest[21]))


def usage(pids: Iterable[int]) -> dict[str, float]:
    """CPU seconds used so far and resident memory (KiB) of ``pids`` together."""
    ticks = os.sysconf("SC_CLK_TCK")
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    cpu = rss = 0
    for pid in pids:
        info = proc_info(pid)
        if info is not None:
            cpu += info.cpu_ticks
            rss += info.rss_pages
    return {"cpu_seconds": cpu / ticks, "rss_kb": rss * page_kb}


def start_time(pid: int) -> int | None:
    info = proc_info(pid)
    return info.start if info else None


def is_alive(pid: int | None, start: int | None = None) -> bool:
    """True if ``pid`` runs (stopped counts as running) and, if given, started at ``start``."""
    if pid is None:
        return False
    info = proc_info(pid)
    if info is None or info.state in ("Z", "X"):
        return False
    return start is None or info.start == start


def is_frozen(pid: int | None, start: int | None = None) -> bool:
    if not is_alive(pid, start):
        return False
    info = proc_info(pid)  # type: ignore[arg-type]
    return info is not None and info.state in ("T", "t")


def spawn_detached(argv: Sequence[str], log_path: str, prefix: Sequence[str] = (),
                   cwd: str | None = None, env: dict[str, str] | None = None) -> tuple[int, int]:
    """Start ``argv`` detached, in a new session, output appended to ``log_path``.

    ``prefix`` wraps the shell, e.g. ``nsenter --net=...`` to start inside a
    namespace. Returns (pid, start time) of the started process itself.
    """
    script = f'setsid "$@" >>{shlex.quote(log_path)} 2>&1 </dev/null & echo $!'
    full = [*prefix, "sh", "-c", script, "sh", *argv]
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=30, cwd=cwd, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"cannot start {' '.join(argv)}: {e}") from None
    out = proc.stdout.strip()
    if proc.returncode != 0 or not out.isdigit():
        raise LabError(f"cannot start {' '.join(argv)}: {proc.stderr.strip() or out or 'no pid reported'}")
    pid = int(out)
    start = start_time(pid)
    if start is None:
        # exited already: report it as started-and-dead, the caller reads the log
        return pid, -1
    return pid, start


def signal_pid(pid: int | None, sig: int, start: int | None = None) -> bool:
    """Send ``sig`` to ``pid`` if it is still the process we started. True if sent."""
    if pid is None or not is_alive(pid, start):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def signal_many(pids: Iterable[int], sig: int) -> list[int]:
    """Signal each pid (already vetted by the caller); return those signalled."""
    sent = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent.append(pid)
        except ProcessLookupError:
            pass
    return sent


def environ(pid: int) -> list[bytes]:
    """The environment of ``pid`` as ``NAME=value`` entries ([] if unreadable or gone)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def wait_stopped(pids: Iterable[int], stopped: bool, timeout: float = 5.0) -> list[int]:
    """Wait (bounded) until each live pid is stopped (or, with ``stopped=False``,
    running again): signals are delivered asynchronously. Returns the laggards."""
    remaining = list(pids)
    deadline = time.monotonic() + timeout
    while remaining:
        infos = [(p, proc_info(p)) for p in remaining]
        remaining = [p for p, i in infos
                     if i is not None and i.state not in ("Z", "X") and (i.state in ("T", "t")) != stopped]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(POLL / 4)
    return remaining


def group_members(*pgids: int) -> list[int]:
    """Live pids whose process group is one of ``pgids``."""
    wanted = set(pgids)
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = proc_info(int(entry))
            if info and info.pgid in wanted and info.state not in ("Z", "X"):
                members.append(info.pid)
    return members


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait (bounded) until none of ``pids`` is alive; return those still alive."""
    remaining = list(pids)
    deadline = time.monotonic() + timeout
    while remaining:
        remaining = [p for p in remaining if is_alive(p)]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    return remaining


def kill_all(list_pids: Callable[[], Iterable[int]], timeout: float = 5.0) -> list[int]:
    """SIGKILL whatever ``list_pids()`` returns until it returns nothing (bounded).

    Re-listing catches processes forked while we were killing. Returns the
    pids killed; raises LabError if some survive ``timeout``.
    """
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        pids = [p for p in list_pids() if p != os.getpid() and is_alive(p)]
        if not pids:
            return killed
        if time.monotonic() >= deadline:
            raise LabError(f"processes {pids} survive SIGKILL after {timeout:g}s (stuck in the kernel?)")
        for pid in signal_many(pids, signal.SIGKILL):
            if pid not in killed:
                killed.append(pid)
        wait_gone(pids, 0.5)


def log_tail(path: str, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' if absent)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
