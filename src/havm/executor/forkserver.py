"""A warm process that forks one child per native agent action.

Why: starting a Python interpreter per action costs ~80 ms of CPU on an idle
machine (and seconds on a loaded one); recurring monitors of many resources
would keep a core busy. This worker imports the agents once; each action is
then a fork (a few ms). The guarantees of ``invoke`` are kept: every action
runs in its own session (process group) that a timeout can SIGKILL whole.

Protocol over a unix socket pair: the daemon sends one JSON line (the
runner's request); the worker forks, and answers with a JSON line
``{"pid": N}`` carrying the read end of the child's stdout+stderr pipe as an
SCM_RIGHTS file descriptor. The child prints what ``runner`` prints. The
worker is single-threaded (safe to fork) and reaps children automatically.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from typing import Any

PRELOAD = ("havm.agents.base", "havm.agents.dummy", "havm.executor.runner", "havm.executor.registry")
OPTIONAL_PRELOAD = ("havm.agents.qemu",)
MAX_MSG = 1 << 20


def _child(req: dict[str, Any], w: int, sock: socket.socket) -> None:
    try:
        os.setsid()
        sock.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # agents wait for their own subprocesses
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(w)
        from havm.executor import runner

        runner.run_and_print(req)
    except BaseException:  # noqa: BLE001 - the child must never return into the server loop
        pass
    finally:
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(0)


def serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return  # the daemon is gone: so are we
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                req = json.loads(line)
            except ValueError:
                sock.sendall(b'{"error": "bad request"}\n')
                continue
            r, w = os.pipe()
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _child(req, w, sock)
            os.close(w)
            socket.send_fds(sock, [json.dumps({"pid": pid}).encode() + b"\n"], [r])
            os.close(r)


def main() -> int:
    fd = int(sys.argv[1])
    sock = socket.socket(fileno=fd)
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    for name in OPTIONAL_PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an agent that cannot load fails on use, with its error
            pass
    serve(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
