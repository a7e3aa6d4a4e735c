"""``python -m havm.membership``: run membership alone, without the rest of havmd.

For checking heartbeat networks (firewalls, multicast, broadcast) before a
cluster goes live, for the netns acceptance tests and for benchmarks. Logs
membership events to stderr; with ``--status-file`` it keeps the latest view
there as JSON (written atomically every ``--interval``); with ``--print`` it
prints one summary line per interval on stdout.

Exit status: 0 stopped (duration over, SIGTERM or SIGINT), 3 invalid
configuration or key, 1 a link could not be set up.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any

from havm.config.load import load_config, read_key
from havm.errors import HavmError
from havm.membership.thread import MembershipThread
from havm.membership.transport import TransportError
from havm.membership.view import MembershipView


def summary(view: MembershipView) -> dict[str, Any]:
    return {"node": view.node, "members": list(view.members), "quorate": view.quorate,
            "controller": view.controller, "agreed": view.agreed,
            "peers": {p.name: p.state for p in view.peers},
            "links": {lk.name: lk.state for lk in view.links}}


def write_atomically(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, default=str)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m havm.membership", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", "-c", required=True)
    p.add_argument("--node", "-n", default=None, help="this node (default: hostname)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: run until signalled)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between status writes")
    p.add_argument("--status-file", default=None)
    p.add_argument("--print", action="store_true", help="print a summary line every interval")
    p.add_argument("--realtime", type=int, default=None, metavar="PRIORITY",
                   help="run the membership thread under SCHED_RR at this priority (1-99; needs root)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = p.parse_args(argv)
    node = args.node or socket.gethostname().split(".")[0]
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {node} %(name)s %(levelname)s: %(message)s")
    log = logging.getLogger("havm.membership")
    try:
        loaded = load_config(args.config)
        key = read_key(loaded.key_path())
        thread = MembershipThread.for_node(loaded.config, node, key,
                                           app_info=lambda: {"pid": os.getpid()},
                                           realtime_priority=args.realtime)
        thread.start()
    except HavmError as e:
        log.error("cannot start: %s", e)
        return e.exit_status
    except (TransportError, KeyError) as e:
        log.error("cannot start: %s", e)
        return 1
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    remaining = args.duration if args.duration > 0 else float("inf")
    try:
        while remaining > 0 and not done.is_set():
            view = thread.snapshot()
            if args.status_file:
                write_atomically(args.status_file, view.to_dict())
            if args.print:
                print(json.dumps(summary(view)), flush=True)
            step = min(args.interval, remaining)
            done.wait(step)
            remaining -= step
    finally:
        thread.stop()
        if args.status_file:
            write_atomically(args.status_file, thread.snapshot().to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
