"""A synchronous face on the ``qemu.qmp`` asyncio client.

Agents are called from executor worker threads and must be plain blocking
calls, so each ``Qmp`` owns a private event loop and runs every QMP exchange
to completion on it, each bounded by a timeout. Do not call it from inside a
running event loop (use ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from havm.errors import HavmError

# qemu.qmp logs every failed connect at ERROR level; our callers report failures themselves.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

CONNECT_RETRY = 0.1


class QmpError(HavmError):
    """QMP could not be reached, timed out, or QEMU answered with an error."""

    code = "qmp"


class Qmp:
    """One QMP connection to one QEMU; use as a context manager."""

    def __init__(self, socket_path: Path | str, timeout: float = 5.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient("havm")
        self._connected = False
        self.attempts = 0  # connection attempts the last connect() needed

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        limit = self.timeout if timeout is None else timeout
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coro, limit))
        except TimeoutError:
            raise QmpError(f"QMP at {self.socket_path}: no answer within {limit:.1f}s") from None
        except (QMPError, OSError, EOFError) as exc:
            raise QmpError(f"QMP at {self.socket_path}: {exc or type(exc).__name__}") from exc

    def connect(self) -> Qmp:
        """Connect and negotiate, retrying until ``timeout``.

        Retried because QEMU sometimes drops a fresh QMP session during
        negotiation (seen on a migration target right after switchover,
        "Negotiation failed"); a second attempt a moment later succeeds.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            self.attempts += 1
            try:
                self._run(self._client.connect(self.socket_path),
                          max(0.1, deadline - time.monotonic()))
                break
            except QmpError:
                if time.monotonic() + CONNECT_RETRY >= deadline:
                    raise
                self._client = QMPClient("havm")  # a failed client is not reusable
                time.sleep(CONNECT_RETRY)
        self._connected = True
        return self

    def execute(self, command: str, arguments: dict[str, Any] | None = None,
                timeout: float | None = None) -> Any:
        return self._run(self._client.execute(command, arguments), timeout)

    def next_event(self, names: set[str], timeout: float) -> dict[str, Any] | None:
        """The next event of this session named in ``names``, or None after ``timeout``."""

        async def wanted() -> dict[str, Any]:
            while True:
                event = await self._client.events.get()
                if event["event"] in names:
                    return dict(event)

        try:
            result: dict[str, Any] = self._loop.run_until_complete(
                asyncio.wait_for(wanted(), timeout))
            return result
        except TimeoutError:
            return None
        except (QMPError, OSError, EOFError) as exc:
            raise QmpError(f"QMP at {self.socket_path}: {exc or type(exc).__name__}") from exc

    def status(self) -> str:
        """``query-status`` run state: running, paused, inmigrate, postmigrate, shutdown..."""
        return str(self.execute("query-status")["status"])

    def close(self) -> None:
        if self._connected:
            try:
                self._run(self._client.disconnect(), 2.0)
            except QmpError:
                pass
            self._connected = False
        self._loop.close()

    def __enter__(self) -> Qmp:
        try:
            return self.connect()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def qmp_status(socket_path: Path | str, timeout: float = 5.0) -> str:
    """Connect, ``query-status``, disconnect. Raises QmpError."""
    with Qmp(socket_path, timeout) as qmp:
        return qmp.status()
