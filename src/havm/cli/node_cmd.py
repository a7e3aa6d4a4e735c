"""havm node standby|online|maintenance|unmaintenance|fence NODE."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from havm.cli.target import candidates, connect
from havm.cli.wait import wait_for
from havm.commands.cluster import GetStatus
from havm.commands.fence import FenceNode
from havm.commands.resource import ChangeNode
from havm.errors import NotReachable, UsageError

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
    f = nsub.add_parser("fence", help="power NODE off now through its fence devices",
                        description="Power NODE off through its fence devices (levels, retries and delay "
                                    "as configured) and report the outcome; recorded in the fencing "
                                    "history of 'havm status'. Run by the controller (by another member if "
                                    "NODE is the controller); needs a quorate partition. A node never "
                                    "fences itself: with --lab another node is asked. A node no device can "
                                    "fence, in a cluster with a watchdog, is asked to stop feeding its "
                                    "watchdog and counts as off fencing_watchdog_timeout after it "
                                    "acknowledged. Exit 0 once NODE is confirmed off (also if it was off "
                                    "already), 1 if fencing failed.")
    f.add_argument("node_arg", metavar="NODE")
    f.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    f.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the outcome")
    f.add_argument("--json", action="store_true", help="print the outcome (attempts included) as JSON")
    f.set_defaults(func=cmd_fence)


def _who() -> str:
    return f"{os.environ.get('SUDO_USER') or os.environ.get('USER') or 'root'}@cli"


def cmd_node(args: argparse.Namespace) -> int:
    _, client = connect(args)
    node = args.node_arg
    result = client.run(ChangeNode(args.op, node, by=_who()), timeout=60)
    if not args.json:
        a, e, d = result["version"][:3]
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


def cmd_fence(args: argparse.Namespace) -> int:
    node = args.node_arg
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"fencing powers {node} off: confirm with --yes")
        answer = input(f"Power {node} off now (every VM on it dies)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not fenced")
            return 1
    client = _other_than(args, node)
    out = client.run(FenceNode(node, by=_who()), timeout=args.timeout)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for a in out["attempts"]:
            print(f"  level {a['level']} {a['device'] or '-'} attempt {a['attempt']}: "
                  f"{'off' if a['ok'] else 'FAILED'} ({a['duration']:.2f}s)"
                  + (f": {a['error']}" if a["error"] else ""))
        if out["ok"]:
            print(f"{node} is off{' (it was already off)' if out['already_off'] else ''}, "
                  f"confirmed by level {out['level']} ({out['duration']:.2f}s, run by {out['executor']})")
        else:
            print(f"FENCING {node} FAILED: {out['error']}", file=sys.stderr)
    return 0 if out["ok"] else 1


def _other_than(args: argparse.Namespace, node: str) -> Any:
    """A daemon to ask that is not ``node`` (a node never fences itself)."""
    if args.lab and not args.node:
        for name, client in candidates(args):
            if name == node:
                continue
            try:
                client.request("GET", "/v1/config", timeout=3.0)
                return client
            except NotReachable:
                continue
        raise NotReachable(f"no node of the lab other than {node} answers")
    return connect(args)[1]
