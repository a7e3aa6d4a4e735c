"""``havmd``: the havm node daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from havm import __version__
from havm.config.load import load_config, read_key
from havm.daemon.logtarget import make_handler
from havm.daemon.sdnotify import notify, systemd_notifier
from havm.errors import HavmError, UsageError


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="havmd",
        description="The havm node daemon: heartbeat membership and quorum, the replicated "
                    "configuration, the API on a unix socket and TCP, and (on the controller) "
                    "the scheduler that keeps resources running.",
        epilog="exit status: 0 stopped cleanly, 2 usage, 3 invalid configuration or unsafe key file, "
               "1 other error")
    p.add_argument("--version", action="version", version=f"havmd {__version__}")
    p.add_argument("--config", "-c", default="/etc/havm/cluster.yaml",
                   help="bootstrap configuration (default /etc/havm/cluster.yaml); once the cluster has "
                        "a stored configuration, the stored one wins (see 'havm config apply')")
    p.add_argument("--node", "-n", default=None, help="this node's name in the configuration (default: hostname)")
    p.add_argument("--state-dir", default=None, help="override daemon.state_dir")
    p.add_argument("--socket", default=None, help="override daemon.socket")
    p.add_argument("--run-dir", default=None, help="override daemon.run_dir (volatile resource state)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-target", default=os.environ.get("HAVM_LOG_TARGET", "auto"),
                   metavar="auto|stderr|journal|file:PATH",
                   help="where to log (default $HAVM_LOG_TARGET or auto: the journal's native socket when "
                        "stderr goes to the journal, as under systemd, else stderr); file:PATH is "
                        "logrotate-friendly")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    node = args.node or socket.gethostname().split(".")[0]
    log = logging.getLogger("havm.daemon")
    try:
        logging.basicConfig(level=args.log_level.upper(), handlers=[make_handler(args.log_target, node)])
        loaded = load_config(args.config)
        key = read_key(loaded.key_path())
        if node not in loaded.config.node_names:
            raise UsageError(f"this node is {node!r}, which is not in {args.config} "
                             f"(nodes: {', '.join(loaded.config.node_names)}); use --node")
        from havm.daemon.node import NodeDaemon

        daemon = NodeDaemon(loaded, node, key,
                            state_dir=args.state_dir or loaded.config.daemon.state_dir,
                            socket_path=args.socket or loaded.config.daemon.socket,
                            # several daemons on one machine (a lab) each get their own state dir:
                            # give each its own run dir too, unless told otherwise
                            run_dir=args.run_dir or (os.path.join(args.state_dir, "run") if args.state_dir
                                                     else loaded.config.daemon.run_dir))
    except HavmError as e:
        log.error("cannot start: %s", e)
        return e.exit_status

    daemon.events.subscribe(systemd_notifier())  # READY=1 once started, STATUS on quorum changes

    def stop() -> None:
        notify("STOPPING=1")
        daemon.stop()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        await daemon.run()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
