"""``havm simulate``: run the scheduler on a config and a state, print the transition.

Inputs are loaded at this edge and handed to the pure planner. A config is our
YAML; a ``.xml`` file is a Pacemaker CIB, read by the CIB importer through
``havm.importers.cib.load_cib_simulation(path) -> (ClusterSpec, State)`` (its
status section gives the state). ``--node-fail`` and friends change the state
before planning, in the order given on the command line: fail, up, standby, op-fail.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from typing import Any

from havm.errors import UsageError
from havm.scheduler import events
from havm.scheduler.apply import apply
from havm.scheduler.model import ClusterSpec, State
from havm.scheduler.plan import plan
from havm.scheduler.state_file import load_state, state_to_data


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


def load_input(path: str) -> tuple[ClusterSpec, State]:
    """(spec, state) from a cluster YAML or, through the CIB importer, a Pacemaker CIB."""
    if path.endswith(".xml"):
        try:
            cib = importlib.import_module("havm.importers.cib")
        except ModuleNotFoundError as e:
            raise UsageError(f"reading a Pacemaker CIB needs the CIB importer, which is missing ({e})") from None
        spec, state = cib.load_cib_simulation(path)
        return spec, state
    from havm.config.load import load_config
    return ClusterSpec.from_config(load_config(path, check_key=False).config), State()


def apply_events(spec: ClusterSpec, state: State, args: argparse.Namespace) -> State:
    for node in args.node_fail:
        state = events.node_fail(spec, state, node)
    for node in args.node_up:
        state = events.node_up(spec, state, node)
    for node in args.standby:
        state = events.standby(spec, state, node)
    for item in args.op_fail:
        parts = item.rsplit(":", 2)
        if len(parts) != 3 or not all(parts):
            raise UsageError(f"--op-fail expects RSC:OP:NODE such as vm1:monitor:n2, got {item!r}")
        state = events.op_fail(spec, state, *parts)
    return state


def run(args: argparse.Namespace) -> int:
    path = args.simulate_config or args.config
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    spec, state = load_input(path)
    if args.state:
        state = load_state(args.state)
    state = apply_events(spec, state, args)
    transition = plan(spec, state)
    if args.json:
        doc = transition.to_json()
        if args.scores:
            doc["scores"] = {rid: {n: row.on(n) for n in spec.node_names()} for rid, row in transition.scores.items()}
        if args.show_state:
            doc["state_after"] = state_to_data(apply(state, transition))
        print(json.dumps(doc, indent=2))
    elif args.dot:
        print(transition.to_dot())
    else:
        print(transition.format_text(spec.node_names(), show_scores=args.scores))
        if args.show_state:
            import yaml
            print("State after:")
            print(yaml.safe_dump(state_to_data(apply(state, transition)), sort_keys=False).rstrip())
    return 0
