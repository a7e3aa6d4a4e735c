"""Deliver one alert: run a script, or POST a webhook. Never raises; always bounded.

Guarantees: ``run_script`` returns within ``timeout`` plus the time to reap
(past the timeout the script's whole process group gets SIGKILL, so children
it forked die too); its output is kept up to ``MAX_OUTPUT`` bytes, the rest
read and dropped (a chatty script cannot fill the daemon's memory).
``post_webhook`` returns within ``timeout``, does not follow redirects, and
counts any 2xx answer as delivered. Both report what happened as a
``Delivery`` (ok, one-line detail, duration) instead of raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from havm import __version__

MAX_OUTPUT = 4096
# variables a script inherits from havmd (nothing else of the daemon's environment)
INHERITED = ("PATH", "LANG", "LC_ALL", "TZ")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Delivery:
    alert: str
    seq: int  # the event's
    kind: str  # the event's
    ok: bool
    detail: str  # "exit 0", "HTTP 204", "timed out after 5s", ...
    duration: float
    output: str = ""


async def _read_bounded(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


async def _feed(stdin: asyncio.StreamWriter | None, data: bytes) -> None:
    if stdin is None:
        return
    # a script that does not read its stdin (or exits early) must not fail the delivery
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(data)
        await stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.close()


def script_env(extra: Mapping[str, str], alert_vars: Mapping[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(extra)
    env.update(alert_vars)
    return {k: v.replace("\0", "") for k, v in env.items()}


async def run_script(path: str, document: Mapping[str, Any], env: Mapping[str, str], timeout: float,
                     alert: str = "", seq: int = 0, kind: str = "") -> Delivery:
    started = time.monotonic()

    def done(ok: bool, detail: str, output: bytes = b"") -> Delivery:
        return Delivery(alert, seq, kind, ok, detail, time.monotonic() - started,
                        output.decode(errors="replace").strip())

    try:
        proc = await asyncio.create_subprocess_exec(
            path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=dict(env), start_new_session=True, cwd="/")
    except OSError as e:
        return done(False, f"cannot run {path}: {e.strerror or e}")
    data = json.dumps(document, default=str).encode() + b"\n"
    reader = asyncio.ensure_future(_read_bounded(proc.stdout, MAX_OUTPUT))
    try:
        await asyncio.wait_for(asyncio.gather(_feed(proc.stdin, data), proc.wait()), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the script and what it forked
        await proc.wait()
        output = await _reap_output(reader)
        return done(False, f"timed out after {timeout:g}s (process group killed)", output)
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        reader.cancel()
        raise
    output = await _reap_output(reader)
    rc = proc.returncode
    if rc == 0:
        return done(True, "exit 0", output)
    return done(False, f"exit {rc}" if rc is not None and rc > 0 else f"killed by signal {-(rc or 0)}", output)


async def _reap_output(reader: asyncio.Future[bytes]) -> bytes:
    """The output read so far; a grandchild still holding the pipe open cannot hold us."""
    try:
        return await asyncio.wait_for(asyncio.shield(reader), 1.0)
    except TimeoutError:
        reader.cancel()
        return b"(output still open when the script exited)"


async def post_webhook(session: aiohttp.ClientSession, url: str, document: Mapping[str, Any],
                       headers: Mapping[str, str], timeout: float, alert: str = "", seq: int = 0,
                       kind: str = "") -> Delivery:
    started = time.monotonic()
    body = json.dumps(document, default=str).encode()
    all_headers = {"Content-Type": "application/json", "User-Agent": f"havm/{__version__}", **headers}
    try:
        async with asyncio.timeout(timeout):
            async with session.post(url, data=body, headers=all_headers, allow_redirects=False) as r:
                answer = await r.content.read(MAX_OUTPUT)
                ok = 200 <= r.status < 300
                detail = f"HTTP {r.status}"
    except TimeoutError:
        return Delivery(alert, seq, kind, False, f"timed out after {timeout:g}s", time.monotonic() - started)
    except (aiohttp.ClientError, OSError, ValueError) as e:
        return Delivery(alert, seq, kind, False, f"{type(e).__name__}: {e}", time.monotonic() - started)
    return Delivery(alert, seq, kind, ok, detail, time.monotonic() - started,
                    answer.decode(errors="replace").strip())
