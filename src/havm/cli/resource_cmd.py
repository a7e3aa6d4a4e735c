"""havm resource start|stop|move|migrate|ban|clear|cleanup|manage|unmanage RSC [NODE]."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from havm.cli.target import connect
from havm.cli.wait import resource, wait_for
from havm.commands.resource import ChangeResource, CleanupResource

HELP = {
    "start": "let the resource run (clears a stop)",
    "stop": "stop the resource everywhere and keep it stopped (target role stopped)",
    "move": "run the resource on NODE (stop there, start here), until 'clear'",
    "migrate": "live-migrate the resource to NODE (needs meta.allow_migrate), until 'clear'",
    "ban": "never run the resource on NODE, until 'clear'",
    "clear": "remove the constraints that move, migrate and ban made",
    "cleanup": "forget the resource's failures (on NODE or everywhere) and re-probe it",
    "manage": "let havm start and stop the resource again",
    "unmanage": "leave the resource alone: havm neither starts nor stops it",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("resource", help="start, stop, move, migrate, ban, clear, clean up resources",
                       description="Operate on one resource. Changes are configuration changes made "
                                   "through the controller; by default the command waits until the "
                                   "cluster has carried them out and shows progress.")
    rsub = p.add_subparsers(dest="resource_command", metavar="ACTION", required=True)
    for op, text in HELP.items():
        sp = rsub.add_parser(op, help=text, description=text[0].upper() + text[1:] + ".")
        sp.add_argument("resource")
        if op in ("move", "migrate", "ban"):
            sp.add_argument("node_arg", metavar="NODE")
        elif op == "cleanup":
            sp.add_argument("node_arg", metavar="NODE", nargs="?", default=None)
        sp.add_argument("--no-wait", action="store_true", help="return once the change is committed")
        sp.add_argument("--timeout", type=float, default=180.0, help="how long to wait (seconds, default 180)")
        sp.add_argument("--json", action="store_true", help="print the result as JSON")
        sp.set_defaults(func=cmd_resource, op=op)


def _check(op: str, rsc: str, node: str | None) -> Any:
    def check(st: dict[str, Any]) -> bool:
        r = resource(st, rsc)
        if r is None:
            return False
        if r.get("in_flight"):
            return False
        if op == "stop":
            return r["state"] == "stopped"
        if op in ("start", "clear", "manage", "cleanup"):
            return r["state"] == "started" and not r.get("failed_on")
        if op in ("move", "migrate"):
            return r["nodes"] == [node]
        if op == "ban":
            return node not in r["nodes"]
        return True
    return check


def cmd_resource(args: argparse.Namespace) -> int:
    _, client = connect(args)
    by = f"{os.environ.get('SUDO_USER') or os.environ.get('USER') or 'root'}@cli"
    node = getattr(args, "node_arg", None)
    if args.op == "cleanup":
        result = client.run(CleanupResource(args.resource, node), timeout=30)
    else:
        result = client.run(ChangeResource(args.op, args.resource, node, by=by), timeout=60)
    if not args.json:
        if args.op == "cleanup":
            print(f"cleaned up {args.resource} on {', '.join(result['nodes']) or 'no node'}")
        else:
            a, e, d = result["version"][:3]
            print(f"{args.op} {args.resource}{' ' + node if node else ''}: "
                  f"{'committed as configuration ' + f'{a}.{e}:{d[:8]}' if result['changed'] else 'already so'}")
    if args.no_wait or args.op == "unmanage":
        if args.json:
            print(json.dumps(result, indent=2))
        return 0
    st = wait_for(client, _check(args.op, args.resource, node), [args.resource], args.timeout,
                  f"{args.op} {args.resource}", quiet=args.json)
    if args.json:
        print(json.dumps({"result": result, "resource": resource(st, args.resource)}, indent=2))
    return 0
