"""Start one agent action as a process and wait for it, killing it on timeout.

The action runs in a new session (its own process group). On timeout the
whole group gets SIGKILL, so nothing the action started lingers (except what
an agent deliberately daemonized, such as a QEMU guest, which is exactly what
``stop`` exists to clean up).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from havm.agents.base import OCF, OUTPUT_TAIL_CHARS
from havm.executor.registry import OCF_ROOT, AgentRef

Progress = Callable[[str], None]
META_DATA_CHARS = 1 << 20


class ForkServer:
    """Client side of ``forkserver``: one warm worker per daemon, started on first use.

    If the worker cannot be started or dies, ``spawn`` returns None and the
    caller falls back to one interpreter per action (slower, same guarantees).
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._proc = subprocess.Popen([sys.executable, "-m", "havm.executor.forkserver", str(child.fileno())],
                                      pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL)
        child.close()
        self._sock = parent

    def _spawn_blocking(self, payload: bytes) -> tuple[int, int]:
        assert self._sock is not None
        self._sock.sendall(payload + b"\n")
        msg, fds, _flags, _addr = socket.recv_fds(self._sock, 4096, 1)
        if not msg or not fds:
            raise OSError("fork server closed the connection")
        return int(json.loads(msg)["pid"]), fds[0]

    async def spawn(self, payload: bytes) -> tuple[int, int] | None:
        async with self._lock:
            for _ in range(2):
                if self._sock is None or self._proc is None or self._proc.poll() is not None:
                    try:
                        self._start()
                    except OSError:
                        return None
                try:
                    return await asyncio.to_thread(self._spawn_blocking, payload)
                except (OSError, ValueError, KeyError):
                    self.close()
            return None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None


# our action names -> OCF's (ONLY APPEND)
OCF_ACTION = {"start": "start", "stop": "stop", "monitor": "monitor", "validate": "validate-all",
              "meta_data": "meta-data", "promote": "promote", "demote": "demote",
              "migrate_to": "migrate_to", "migrate_from": "migrate_from"}


def ocf_env(ref: AgentRef, rsc: str, params: Mapping[str, Any], action: str, timeout: float,
            interval: float, args: Mapping[str, Any]) -> dict[str, str]:
    """The environment an OCF agent expects (as Pacemaker's executor sets it)."""
    _, provider, kind = ref.name.split(":", 2)
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "OCF_ROOT": OCF_ROOT,
        "OCF_FUNCTIONS_DIR": os.path.join(OCF_ROOT, "lib", "heartbeat"),
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "1",
        "OCF_RESOURCE_INSTANCE": rsc,
        "OCF_RESOURCE_TYPE": kind,
        "OCF_RESOURCE_PROVIDER": provider,
        "HA_RSCTMP": os.environ.get("HA_RSCTMP", "/run/resource-agents"),
        "OCF_RESKEY_CRM_meta_timeout": str(int(timeout * 1000)),
        "OCF_RESKEY_CRM_meta_interval": str(int(interval * 1000)),
        "OCF_RESKEY_CRM_meta_name": OCF_ACTION.get(action, action),
    }
    for k, v in params.items():
        env[f"OCF_RESKEY_{k}"] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    if "target" in args:
        env["OCF_RESKEY_CRM_meta_migrate_target"] = str(args["target"])
    if "source" in args:
        env["OCF_RESKEY_CRM_meta_migrate_source"] = str(args["source"])
    for k, v in args.get("meta", {}).items():
        env[f"OCF_RESKEY_CRM_meta_{k}"] = str(v)
    return env


async def invoke(ref: AgentRef, rsc: str, params: Mapping[str, Any], action: str, timeout: float,
                 interval: float = 0.0, args: Mapping[str, Any] | None = None,
                 progress: Progress | None = None, fork_server: ForkServer | None = None
                 ) -> tuple[int, str, dict[str, Any], float]:
    """Run the action; return (rc, output tail, data, duration).

    Native agents run in a child of ``fork_server`` when one is given (cheap),
    else in a fresh interpreter; OCF scripts are executed directly.
    """
    args = dict(args or {})
    t0 = time.monotonic()
    if ref.script is not None:
        if action not in OCF_ACTION:
            return int(OCF.ERR_UNIMPLEMENTED), f"OCF agents have no {action!r} action", {}, 0.0
        if not os.path.exists(ref.script):
            return int(OCF.ERR_INSTALLED), f"OCF agent {ref.script} is not installed on this node", {}, 0.0
        cmd = [ref.script, OCF_ACTION[action]]
        env = ocf_env(ref, rsc, params, action, timeout, interval, args)
        stdin = b""
    else:
        assert ref.native is not None
        cmd = [sys.executable, "-m", "havm.executor.runner"]
        env = dict(os.environ)
        if ref.service:
            params = {**params, "unit": ref.service}
        call_args = {k: v for k, v in args.items() if k != "meta"}
        stdin = json.dumps({"agent": ref.native, "resource": rsc, "params": dict(params), "action": action,
                            "args": call_args}, default=str).encode()
    fork = await fork_server.spawn(stdin) if ref.native and fork_server is not None else None
    if fork is not None:
        pid, fd = fork
        proc = None
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream),
                                                    os.fdopen(fd, "rb"))
    else:
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True)
        except OSError as e:
            return int(OCF.ERR_INSTALLED), f"cannot run {cmd[0]}: {e.strerror}", {}, time.monotonic() - t0
        pid = proc.pid
        assert proc.stdout is not None
        stream = proc.stdout
        transport = None
    lines: list[str] = []
    result: dict[str, Any] | None = None

    async def consume() -> None:
        nonlocal result
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.write(stdin)
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # it exited without reading its request: its output says why
            proc.stdin.close()
        async for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if ref.native and line.startswith("result: "):
                try:
                    result = json.loads(line[len("result: "):])
                except ValueError:
                    lines.append(line)
                continue
            if ref.native and line.startswith("progress: "):
                line = line[len("progress: "):]
                if progress is not None:
                    progress(line)
            lines.append(line)
        if proc is not None:
            await proc.wait()

    try:
        await asyncio.wait_for(consume(), timeout)
    except TimeoutError:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc is not None:
            await proc.wait()
        tail = "\n".join(lines)[-OUTPUT_TAIL_CHARS:]
        return int(OCF.ERR_GENERIC), f"{tail}\ntimed out after {timeout:g}s: process group killed".strip(), \
            {"timeout": True}, time.monotonic() - t0
    finally:
        if transport is not None:
            transport.close()
    duration = time.monotonic() - t0
    # meta-data is the agent's whole description: keep it whole (an action's log
    # only needs its tail)
    keep = META_DATA_CHARS if action == "meta_data" else OUTPUT_TAIL_CHARS
    if ref.script is not None:
        assert proc is not None
        rc = proc.returncode if proc.returncode is not None and 0 <= proc.returncode <= 255 else int(OCF.ERR_GENERIC)
        return rc, "\n".join(lines)[-keep:], {}, duration
    if result is None:
        return int(OCF.ERR_GENERIC), ("\n".join(lines) + "\nthe agent process ended without a result")[
            -OUTPUT_TAIL_CHARS:], {}, duration
    output = str(result.get("output", ""))
    agent_rc = result.get("rc")
    if not isinstance(agent_rc, int) or isinstance(agent_rc, bool) or not 0 <= agent_rc <= 255:
        return int(OCF.ERR_GENERIC), f"agent returned an invalid rc {agent_rc!r}", {}, duration
    raw_data = result.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    return agent_rc, output[-keep:], data, duration
