"""An outside view of the QEMU guests on this machine: which copies exist, in which state.

For the lab's observer and tests ("no VM ever runs twice"). A live migration
briefly has two processes per VM (the target waits in ``inmigrate``, then the
source sits in ``postmigrate`` until it is quit), but only one of them runs
the guest: count copies whose QMP ``query-status`` says ``running``.
Processes are found through /proc (every namespace of this machine's PID
namespace); their QMP socket is read from their own command line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from havm.agents.process import pid_alive
from havm.agents.qmp import Qmp, QmpError

_NAME = re.compile(r"(?:^|,)guest=([^,]+)")


@dataclass(frozen=True)
class QemuCopy:
    pid: int
    name: str
    qmp_socket: str | None
    status: str  # query-status, or "unknown" if QMP does not answer

    @property
    def running(self) -> bool:
        return self.status == "running"


def _args(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def qemu_copies(name: str | None = None, qmp_timeout: float = 2.0) -> list[QemuCopy]:
    """Every live QEMU started with ``-name guest=...`` (optionally only ``name``)."""
    copies = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        args = _args(pid)
        if not args or "qemu-system" not in os.path.basename(args[0]) or not pid_alive(pid):
            continue
        pairs = list(zip(args, args[1:], strict=False))
        match = _NAME.search(dict(pairs).get("-name", ""))
        if match is None or (name is not None and match[1] != name):
            continue
        sockets = [v.removeprefix("unix:").split(",")[0] for k, v in pairs
                   if k == "-qmp" and v.startswith("unix:")]
        # Prefer the observers' monitor: QMP serves one client per socket at a time.
        sockets.sort(key=lambda path: not path.endswith("observe.sock"))
        socket = sockets[0] if sockets else None
        status = "unknown"
        if socket:
            try:
                with Qmp(socket, qmp_timeout) as client:
                    status = client.status()
            except QmpError:
                pass
        copies.append(QemuCopy(pid, match[1], socket, status))
    return sorted(copies, key=lambda c: (c.name, c.pid))


def running_copies(name: str | None = None) -> dict[str, list[QemuCopy]]:
    """VM name -> its copies that run the guest; more than one entry is a split brain."""
    result: dict[str, list[QemuCopy]] = {}
    for copy in qemu_copies(name):
        if copy.running:
            result.setdefault(copy.name, []).append(copy)
    return result
