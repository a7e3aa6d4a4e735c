"""Run one fence-agent process, bounded, without blocking the event loop.

The agent runs in a session and process group of its own; on timeout the
whole group is killed (fence_ipmilan runs ipmitool, which must not outlive
it) and reaped. Output is captured (both streams) for the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: the environment agents run with: what fence-agents need, nothing of the daemon's
AGENT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class RunResult:
    rc: int | None  # None: killed at the timeout, or could not be started
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    error: str = ""  # why it could not run

    @property
    def output(self) -> str:
        return "\n".join(s for s in (self.stderr.strip(), self.stdout.strip()) if s)


class AgentRunner(ABC):
    """Runs ``argv`` with ``stdin``; returns within ``timeout`` (plus a short
    grace to reap what it killed) whatever the process does."""

    @abstractmethod
    async def run(self, argv: Sequence[str], stdin: str, timeout: float) -> RunResult: ...


class ProcessRunner(AgentRunner):
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        base = {"PATH": AGENT_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                # fence-agents' own DeprecationWarning noise on newer Pythons
                "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        self.env = {**base, **(env or {})}

    async def run(self, argv: Sequence[str], stdin: str, timeout: float) -> RunResult:
        t0 = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.env, start_new_session=True)
        except OSError as e:
            return RunResult(None, "", "", time.monotonic() - t0, error=f"cannot run {argv[0]}: {e.strerror}")
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
        except TimeoutError:
            _kill_group(proc.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5.0)  # reaped: no zombie left behind
            return RunResult(None, "", "", time.monotonic() - t0, timed_out=True,
                             error=f"{os.path.basename(argv[0])} did not finish within {timeout:g}s (killed)")
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        finally:
            # whatever the agent left in its group (an ipmitool child) goes with it
            _kill_group(proc.pid)
        return RunResult(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                         time.monotonic() - t0)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
