"""havm node standby|online|maintenance|unmaintenance NODE."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from havm.cli.target import connect
from havm.cli.wait import wait_for
from havm.commands.cluster import GetStatus
from havm.commands.resource import ChangeNode

HELP = {
    "standby": "drain NODE: move its resources away (live-migrating those that allow it) and run nothing there",
    "online": "let NODE run resources again (with auto-failback, its resources come back)",
    "maintenance": "leave NODE's resources alone: neither monitored into recovery, started nor stopped",
    "unmaintenance": "end maintenance on NODE",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("node", help="put nodes in standby, online or maintenance",
                       description="Change a node's state. A configuration change made through the "
                                   "controller; by default waits until it is carried out.")
    nsub = p.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    for op, text in HELP.items():
        sp = nsub.add_parser(op, help=text, description=text[0].upper() + text[1:] + ".")
        sp.add_argument("node_arg", metavar="NODE")
        sp.add_argument("--no-wait", action="store_true")
        sp.add_argument("--timeout", type=float, default=300.0)
        sp.add_argument("--json", action="store_true")
        sp.set_defaults(func=cmd_node, op=op)


def cmd_node(args: argparse.Namespace) -> int:
    _, client = connect(args)
    by = f"{os.environ.get('SUDO_USER') or os.environ.get('USER') or 'root'}@cli"
    node = args.node_arg
    result = client.run(ChangeNode(args.op, node, by=by), timeout=60)
    if not args.json:
        a, e, d = result["version"]
        print(f"node {args.op} {node}: "
              f"{'committed as configuration ' + f'{a}.{e}:{d[:8]}' if result['changed'] else 'already so'}")
    if args.no_wait or args.op in ("maintenance", "unmaintenance"):
        if args.json:
            print(json.dumps(result, indent=2))
        return 0

    def check(st: dict[str, Any]) -> bool:
        res = st.get("resources", [])
        if any(r.get("in_flight") for r in res):
            return False
        if args.op == "standby":
            return all(node not in r["nodes"] for r in res)
        return any(n["name"] == node and n["state"] == "online" and not n.get("standby") for n in st["nodes"])

    rscs = [r["id"] for r in client.run(GetStatus())["resources"]]
    st = wait_for(client, check, rscs, args.timeout, f"node {args.op} {node}", quiet=args.json)
    if args.json:
        print(json.dumps({"result": result, "nodes": st["nodes"]}, indent=2))
    return 0
