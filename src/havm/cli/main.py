"""Entry point of the ``havm`` command.

Subcommands live in one module per area (``config_cmd``, ``status_cmd``,
``lab_cmd``, ``simulate_cmd``, ...). Each module has ``register(subparsers)``
which adds its parsers and sets ``func`` (taking the parsed args, returning an
exit status). Errors are translated here, once: a ``HavmError`` prints its
message and exits with its ``exit_status``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence

from havm import __version__
from havm.errors import HavmError

# Each module registers its subcommands. ONLY APPEND (order = order in --help).
COMMAND_MODULES = [
    "havm.cli.status_cmd",
    "havm.cli.config_cmd",
    "havm.cli.lab_cmd",
    "havm.cli.simulate_cmd",
    "havm.cli.import_cmd",
    "havm.cli.resource_cmd",
    "havm.cli.node_cmd",
]

EXIT_STATUS_HELP = """exit status:
  0   success
  1   error
  2   bad command-line usage
  3   invalid configuration (every problem is listed)
  4   no daemon reachable
  5   no quorum
  6   conflict (stale config epoch)
  7   not found
  8   timed out
  9   lab error
  10  not authorized
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="havm",
        description="Operate a havm high-availability cluster.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"havm {__version__}")
    parser.add_argument("--config", "-c", default=os.environ.get("HAVM_CONFIG", "/etc/havm/cluster.yaml"),
                        help="cluster configuration file (default: $HAVM_CONFIG or /etc/havm/cluster.yaml)")
    parser.add_argument("--lab", default=os.environ.get("HAVM_LAB"),
                        help="address the lab cluster in DIR instead (default: $HAVM_LAB)")
    parser.add_argument("--socket", default=os.environ.get("HAVM_SOCKET"),
                        help="talk to the daemon on this unix socket")
    parser.add_argument("--node", default=None, help="talk to this node's daemon (lab or config addresses)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # that part is not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HavmError as e:
        if getattr(args, "json", False):
            print(json.dumps({"error": {"code": e.code, "message": str(e)}}))
        else:
            print(f"havm: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
