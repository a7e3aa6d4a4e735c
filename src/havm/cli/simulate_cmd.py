"""``havm simulate``: run the scheduler on a config and a state, print the transition.

Inputs are loaded at this edge and handed to the pure planner. A config is our
YAML; a ``.xml`` file is a Pacemaker CIB, read by the CIB importer through
``havm.importers.cib.load_cib_simulation(path) -> (ClusterSpec, State)`` (its
status section gives the state). ``--node-fail`` and friends change the state
before planning, in the order given on the command line: fail, up, standby, op-fail.
"""

from __future__ import annotations

import gc
import os

from havm.scheduler.model import ClusterSpec, State
from havm.scheduler.plan import plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

# Only what every run needs is imported at the top: on a large CIB the whole run
# should take a fraction of Pacemaker's, and importing pydantic, yaml or the full
# importer alone would cost more than planning 500 resources.


def _usage(message: str) -> Exception:
    from havm.errors import UsageError

    return UsageError(message)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate", help="show what the scheduler would do",
        description="Plan a transition for CONFIG (cluster YAML or Pacemaker CIB XML) and a state, "
                    "and print the actions in order, their dependencies and the resulting placement.")
    p.add_argument("simulate_config", nargs="?", metavar="CONFIG",
                   help="cluster YAML or CIB XML (default: the global --config)")
    p.add_argument("--state", "-s", metavar="FILE", help="state snapshot (YAML/JSON; see docs/config-resources.md)")
    p.add_argument("--node-fail", action="append", default=[], metavar="NODE", help="NODE stops answering (unclean)")
    p.add_argument("--node-up", action="append", default=[], metavar="NODE", help="NODE joins, running nothing")
    p.add_argument("--standby", action="append", default=[], metavar="NODE", help="put NODE in standby")
    p.add_argument("--op-fail", action="append", default=[], metavar="RSC:OP:NODE",
                   help="operation OP of RSC failed on NODE (monitor, start, stop, ...)")
    p.add_argument("--scores", action="store_true", help="show every resource's score on every node")
    p.add_argument("--dot", action="store_true", help="print the action graph in Graphviz dot")
    p.add_argument("--json", action="store_true", help="print the transition as JSON (schema in docs)")
    p.add_argument("--show-state", action="store_true", help="also print the state after the transition")
    p.set_defaults(func=run)


_FLAGS = {"--scores", "--dot", "--json", "--show-state"}


class QuickArgs:
    """The parsed arguments of ``havm simulate FILE [--json] [--scores] [--dot] [--show-state]``."""

    def __init__(self, path: str, flags: set[str]) -> None:
        self.simulate_config = path
        self.config = path
        self.state = None
        self.node_fail: list[str] = []
        self.node_up: list[str] = []
        self.standby: list[str] = []
        self.op_fail: list[str] = []
        self.scores = "--scores" in flags
        self.dot = "--dot" in flags
        self.json = "--json" in flags
        self.show_state = "--show-state" in flags


def quick_args(argv: list[str]) -> QuickArgs | None:
    """``argv`` (after the command word) if it is only an existing file and plain flags, else None.

    The common invocation then needs no argparse (which imports gettext, locale and
    shutil, and builds every parser: a sizeable part of a run on 500 resources);
    anything else (help, events, --state, global options, errors) goes through argparse.
    """
    if not argv or argv[0].startswith("-") or not os.path.isfile(argv[0]) or \
            any(a not in _FLAGS for a in argv[1:]) or len(set(argv[1:])) != len(argv) - 1:
        return None
    return QuickArgs(argv[0], set(argv[1:]))


def load_input(path: str) -> tuple[ClusterSpec, State]:
    """(spec, state) from a cluster YAML or a Pacemaker CIB.

    A CIB goes through the lean reader (``havm.importers.cib_spec``) when it can
    read it, else through the full importer (same result, slower).
    """
    if path.endswith(".xml"):
        try:
            from havm.importers import cib_spec
        except ModuleNotFoundError as e:
            raise _usage(f"reading a Pacemaker CIB needs the CIB importer, which is missing ({e})") from None
        with open(path, "rb") as f:
            data = f.read()
        try:
            return cib_spec.load_cib_spec(data)
        except cib_spec.Unsupported:
            from havm.importers.cib import load_cib_simulation

            spec, state = load_cib_simulation(path)
            return spec, state
    from havm.config.load import load_config
    return ClusterSpec.from_config(load_config(path, check_key=False).config), State()


def apply_events(spec: ClusterSpec, state: State, args: argparse.Namespace | QuickArgs) -> State:
    if not (args.node_fail or args.node_up or args.standby or args.op_fail):
        return state
    from havm.scheduler import events

    for node in args.node_fail:
        state = events.node_fail(spec, state, node)
    for node in args.node_up:
        state = events.node_up(spec, state, node)
    for node in args.standby:
        state = events.standby(spec, state, node)
    for item in args.op_fail:
        parts = item.rsplit(":", 2)
        if len(parts) != 3 or not all(parts):
            raise _usage(f"--op-fail expects RSC:OP:NODE such as vm1:monitor:n2, got {item!r}")
        state = events.op_fail(spec, state, *parts)
    return state


class no_cyclic_gc:
    """Within: no cyclic garbage collection; after: as before.

    ``havm simulate`` builds a few hundred thousand objects, none of them in a cycle
    worth collecting, and frees them all at exit: the collector would walk them again
    and again for nothing (1-2% of a 500-resource run). Restored on the way out for
    callers in a longer-lived process (tests, the API).
    """

    def __enter__(self) -> None:
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.was_enabled:
            gc.enable()


def run(args: argparse.Namespace | QuickArgs) -> int:
    with no_cyclic_gc():
        return _simulate(args)


def _simulate(args: argparse.Namespace | QuickArgs) -> int:
    path = args.simulate_config or args.config
    if not os.path.exists(path):
        raise _usage(f"{path}: no such file")
    spec, state = load_input(path)
    if args.state:
        from havm.scheduler.state_file import load_state

        state = load_state(args.state)
    state = apply_events(spec, state, args)
    transition = plan(spec, state)
    if args.json:
        import json

        doc = transition.to_json()
        if args.scores:
            doc["scores"] = {rid: {n: row.on(n) for n in spec.node_names()} for rid, row in transition.scores.items()}
        if args.show_state:
            doc["state_after"] = _state_after(state, transition)
        print(json.dumps(doc, indent=2))
    elif args.dot:
        print(transition.to_dot())
    else:
        print(transition.format_text(spec.node_names(), show_scores=args.scores))
        if args.show_state:
            import yaml
            print("State after:")
            print(yaml.safe_dump(_state_after(state, transition), sort_keys=False).rstrip())
    return 0


def _state_after(state: State, transition: Any) -> dict[str, Any]:
    from havm.scheduler.apply import apply
    from havm.scheduler.state_file import state_to_data

    return state_to_data(apply(state, transition))
