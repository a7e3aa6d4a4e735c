"""systemd's readiness protocol (``sd_notify``) without libsystemd: one datagram.

With ``Type=notify`` systemd starts havmd with ``$NOTIFY_SOCKET`` (a path, or
``@name`` for the abstract namespace) and waits for ``READY=1`` before it calls
the unit started: units ordered after havmd (and ``systemctl start`` itself)
then find the API answering. havmd says ``READY=1`` once it has started (the
API is served, the membership thread runs: the ``daemon.started`` event),
``STATUS=...`` when quorum or the controller changes (shown by ``systemctl
status havmd``), and ``STOPPING=1`` when asked to stop.

Guarantee: ``notify`` never raises; without ``$NOTIFY_SOCKET`` (not under
systemd, or ``Type=simple``) it does nothing and returns False.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping

from havm.events.log import Event

log = logging.getLogger("havm.daemon.sdnotify")


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (``KEY=VALUE`` lines) to systemd; True if it was sent."""
    addr = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]  # abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(state.encode())
        return True
    except OSError as e:
        log.warning("cannot notify systemd at %s: %s", addr.lstrip("\0"), e)
        return False


def status_text(ev: Event) -> str | None:
    """The ``STATUS=`` line an event deserves, or None."""
    if ev.kind == "daemon.started":
        return f"running as {ev.node}; waiting for quorum"
    if ev.kind in ("quorum.gained", "quorum.lost"):
        return ev.text
    if ev.kind == "controller.changed":
        return ev.text
    return None


def systemd_notifier(env: Mapping[str, str] | None = None) -> Callable[[Event], None]:
    """An event-log subscriber telling systemd READY=1 at start and STATUS on changes.

    Quick and non-blocking (one local datagram), as event subscribers must be."""

    def on_event(ev: Event) -> None:
        text = status_text(ev)
        if text is None:
            return
        ready = "READY=1\n" if ev.kind == "daemon.started" else ""
        notify(f"{ready}STATUS={text}\nMAINPID={os.getpid()}" if ready else f"STATUS={text}", env)

    return on_event
