"""What is mounted where, and which processes use a mounted filesystem.

Read from /proc only (``/proc/self/mountinfo``, ``/proc/PID/{cwd,root,exe,fd,maps}``),
so the fs agent needs no fuser and sees exactly the kernel's view of its own
mount namespace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str
    mountpoint: str
    fstype: str
    source: str
    options: str


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        f = left.split()
        r = right.split()
        if len(f) < 6 or len(r) < 2:
            continue
        major, _, minor = f[2].partition(":")
        entries.append(MountEntry(int(f[0]), int(f[1]), int(major), int(minor), _unescape(f[3]),
                                  _unescape(f[4]), r[0], _unescape(r[1]), f[5]))
    return entries


def read_mounts(path: str = "/proc/self/mountinfo") -> list[MountEntry]:
    with open(path) as f:
        return parse_mountinfo(f.read())


def mounts_at(directory: str, entries: Iterable[MountEntry]) -> list[MountEntry]:
    """Mounts whose mount point is ``directory``, bottom first (the last one is visible)."""
    return [e for e in entries if e.mountpoint == directory]


def users_of(major: int, minor: int, skip: Iterable[int] = ()) -> dict[int, str]:
    """Processes holding files of the filesystem ``major:minor``: pid -> what (cwd, fd 3, ...).

    Like ``fuser -m``, but keyed on the device number of the mount itself, so a
    process that only uses the parent filesystem is never listed (``fuser -km
    /dir`` on a directory that is *not* a mount point would kill every user of
    the root filesystem).
    """
    dev = os.makedev(major, minor)
    skipped = set(skip) | {os.getpid()}
    found: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in skipped:
            continue
        pid = int(name)
        what = _uses(pid, dev, f"{major:02x}:{minor:02x}")
        if what:
            found[pid] = what
    return found


def _uses(pid: int, dev: int, maps_dev: str) -> str | None:
    base = f"/proc/{pid}"
    for link in ("cwd", "root", "exe"):
        try:
            if os.stat(f"{base}/{link}").st_dev == dev:
                return link
        except OSError:
            continue
    try:
        fds = os.listdir(f"{base}/fd")
    except OSError:
        fds = []
    for fd in fds:
        try:
            if os.stat(f"{base}/fd/{fd}").st_dev == dev:
                return f"fd {fd}"
        except OSError:
            continue
    try:
        with open(f"{base}/maps") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                if len(parts) >= 5 and parts[3] == maps_dev and parts[4] != "0":
                    return "mapped file"
    except OSError:
        pass
    return None
