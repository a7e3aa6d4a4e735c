"""Running the membership service on its own thread and event loop.

Heartbeats must leave on time whatever the rest of the daemon does (a slow
API request, a scheduler run, a blocking QMP call): a late heartbeat round is
how a healthy node gets declared dead and fenced. So the service gets a
thread and an asyncio loop of its own; the daemon only reads snapshots.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from havm.clock import Clock, SystemClock
from havm.config.schema import ClusterConfig
from havm.membership.service import MembershipService, Subscriber
from havm.membership.transport import UdpTransport
from havm.membership.view import MembershipView

log = logging.getLogger("havm.membership")


class MembershipThread:
    """Owns one MembershipService and the thread running it.

    ``start()`` returns once every link's sockets are bound, or raises the
    error that prevented it (TransportError naming link and address).
    ``stop()`` sends LEAVE to the peers and joins the thread.
    """

    def __init__(self, service: MembershipService, realtime_priority: int | None = None) -> None:
        """``realtime_priority`` (1-99): run the membership thread under SCHED_RR at
        that priority, as Heartbeat and corosync do, so a busy machine cannot starve
        heartbeats into a false death. Needs root or CAP_SYS_NICE; if refused, a
        warning is logged and the thread runs at normal priority."""
        self.service = service
        self.realtime_priority = realtime_priority
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @classmethod
    def for_node(cls, config: ClusterConfig, node: str, key: bytes,
                 app_info: Callable[[], Mapping[str, Any]] | None = None,
                 clock: Clock | None = None, generation: int | None = None,
                 realtime_priority: int | None = None) -> MembershipThread:
        """The production setup: real UDP on the configured links, the system clock."""
        clock = clock or SystemClock()
        service = MembershipService(config, node, key, clock, UdpTransport(config, node), app_info,
                                    generation=generation)
        return cls(service, realtime_priority)

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise RuntimeError("membership thread already started")
        self._thread = threading.Thread(target=self._main, name="havm-membership", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"membership did not start within {timeout}s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error

    def _main(self) -> None:
        if self.realtime_priority is not None:
            try:
                # pid 0 = the calling thread (Linux schedules threads individually)
                os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(self.realtime_priority))
                log.info("membership thread runs under SCHED_RR priority %d", self.realtime_priority)
            except (OSError, AttributeError, ValueError) as e:
                log.warning("cannot give the membership thread realtime priority %d: %s",
                            self.realtime_priority, e)
        try:
            asyncio.run(self.service.run(ready=self._ready.set))
        except BaseException as e:  # reported by start(), or logged if after it
            self._error = e
            if self._ready.is_set():
                log.exception("membership thread died")
            self._ready.set()

    def stop(self, timeout: float = 5.0, leave: bool = True) -> None:
        """Send LEAVE (unless ``leave=False``), close the sockets and wait for the thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            return
        self.service.stop(leave)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("membership thread did not stop within %.1fs", timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """Why the thread died, if it did."""
        return self._error

    def snapshot(self) -> MembershipView:
        return self.service.snapshot()

    def subscribe(self, callback: Subscriber) -> None:
        self.service.subscribe(callback)

    def update_config(self, config: ClusterConfig) -> None:
        self.service.update_config(config)
