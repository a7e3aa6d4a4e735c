"""Entry point of the ``havm`` command.

Subcommands live in one module per area (``config_cmd``, ``status_cmd``,
``lab_cmd``, ``simulate_cmd``, ...), listed in ``COMMANDS``. Each module has
``register(subparsers)`` which adds its parsers and sets ``func`` (taking the
parsed args, returning an exit status); only the module of the command being
run is imported. Errors are translated here, once: a ``HavmError`` prints its
message and exits with its ``exit_status``.
"""

from __future__ import annotations

import os
import sys

from havm import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

# Which module defines each command, and its one-line help: the parser imports
# only the module of the command being run (importing them all costs ~1 s:
# pydantic, the scheduler, the importers, the lab). ONLY APPEND.
COMMANDS: dict[str, tuple[str, str]] = {
    "status": ("havm.cli.status_cmd", "show the cluster: quorum, controller, nodes, links, resources"),
    "config": ("havm.cli.config_cmd", "validate, show, apply and diff the cluster configuration"),
    "keygen": ("havm.cli.config_cmd", "create a new cluster key file (mode 0600)"),
    "lab": ("havm.cli.lab_cmd", "run a local lab cluster of real havmd processes"),
    "simulate": ("havm.cli.simulate_cmd", "plan offline: what the cluster would do from a given state"),
    "import": ("havm.cli.import_cmd", "convert a Pacemaker CIB or a Heartbeat /etc/ha.d into cluster.yaml"),
    "resource": ("havm.cli.resource_cmd", "start, stop, move, migrate, ban, clear, clean up resources"),
    "node": ("havm.cli.node_cmd", "put nodes in standby, online or maintenance"),
    "bootstrap": ("havm.cli.bootstrap_cmd", "write the configuration and key of a new cluster from a list of hosts"),
    "completion": ("havm.cli.completion_cmd", "print a shell completion script (bash, zsh, fish)"),
    "token": ("havm.cli.token_cmd", "create, list and revoke REST API tokens (roles read, admin)"),
    "history": ("havm.cli.history_cmd", "show the cluster's events: membership, quorum, actions, fencing, config changes"),
}

EXIT_STATUS_HELP = """exit status:
  0   success
  1   error
  2   bad command-line usage
  3   invalid configuration (every problem is listed)
  4   no daemon reachable
  5   no quorum (or not yet: try again)
  6   conflict (stale config epoch)
  7   not found
  8   timed out
  9   lab error
  10  not authorized
  11  the guest image could not be built (lab up --vms)
  130 interrupted (Ctrl-C)
--json: commands that report something print JSON on stdout, errors as
{"error": {"code": ..., "message": ...}}; see docs/cli.md
"""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` only that command's module is imported (the
    others appear in --help by name and one line)."""
    import argparse  # here (and importlib): havm simulate's fast path does without them
    import importlib

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
    wanted = COMMANDS[command][0] if command in COMMANDS else None
    modules = [wanted] if wanted else []
    for name, (module_name, text) in COMMANDS.items():
        if module_name != wanted:
            sub.add_parser(name, help=text, add_help=False)
    for module_name in modules:
        importlib.import_module(module_name).register(sub)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The first argument that names a command (global options may come before it)."""
    takes_value = {"--config", "-c", "--lab", "--socket", "--node"}
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in takes_value:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:  # fast path: `havm simulate FILE [--json...]` needs no argparse
        from havm.cli.simulate_cmd import no_cyclic_gc, quick_args, run
        with no_cyclic_gc():
            quick = quick_args(argv[1:])
            if quick is not None:
                status = _run(run, quick)
                if from_command_line:
                    _exit_now(status)
                return status
    parser = build_parser(_command_word(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return _run(args.func, args)


def _exit_now(status: int) -> None:
    """End the process without tearing the interpreter down.

    Only after ``havm simulate``'s fast path, which starts no thread, registers no
    atexit work and holds no file open for writing but stdout/stderr: freeing the
    plan's few hundred thousand objects one by one at exit would cost a tenth of
    the run on a large CIB, for nothing.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away (havm simulate | head)
            pass
    os._exit(status)


def _run(func: Callable[[Any], int | None], args: Any) -> int:
    try:
        return int(func(args) or 0)
    except Exception as e:
        # imported here, not at the top: a command that succeeds (havm simulate on a
        # large CIB) does not pay for the error classes' imports
        from havm.errors import HavmError
        if isinstance(e, BrokenPipeError):
            return 0
        if not isinstance(e, HavmError):
            raise
        import json
        if getattr(args, "json", False):
            print(json.dumps({"error": {"code": e.code, "message": str(e)}}))
        else:
            print(f"havm: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
