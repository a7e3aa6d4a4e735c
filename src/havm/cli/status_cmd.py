"""havm status: a one-shot (or --watch) view in the spirit of crm_mon."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from havm.cli.target import connect
from havm.commands.cluster import GetStatus
from havm.errors import HavmError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "status", help="show the cluster: quorum, controller, nodes, links, resources",
        description="Show the cluster as one node sees it: quorum, controller, members, each node's "
                    "state and per-link health, dropped-packet counters, configuration version and "
                    "resources. Works against any node (--lab DIR --node N, --socket, --config).",
        epilog="--json prints the status document described in docs/status.md (schema 1).")
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    p.add_argument("--watch", "-w", action="store_true", help="refresh until interrupted")
    p.add_argument("--interval", type=float, default=1.0, help="refresh interval for --watch (seconds)")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        args.interval = 1.0
    if not args.watch:
        _, client = connect(args)
        st = client.run(GetStatus())
        print(json.dumps(st, indent=2) if args.json else render(st))
        return 0
    while True:
        try:
            _, client = connect(args)
            st = client.run(GetStatus())
            out = json.dumps(st) if args.json else render(st)
        except HavmError as e:
            out = f"havm: {e}"
        if args.json:
            print(out, flush=True)
        else:
            sys.stdout.write("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S  ") + out + "\n")
            sys.stdout.flush()
        time.sleep(args.interval)


def _age(s: float | None) -> str:
    if s is None:
        return "never"
    return f"{s * 1000:.0f}ms ago" if s < 1 else f"{s:.1f}s ago"


def render(st: dict[str, Any]) -> str:
    q = st["quorum"]
    cfg = st["config"]
    lines = [
        f"Cluster {st['cluster']}  (seen from {st['node']})",
        f"Quorum: {'yes' if q['quorate'] else 'NO'} ({q['votes']} of {q['expected_votes']} votes"
        f"{', two-node' if q.get('two_node') else ''})"
        f"   Controller: {st['controller'] or '-'}"
        f"{'' if st.get('view_agreed', True) else '   (views not yet agreed)'}",
        f"Config: {cfg['version']}{'' if cfg.get('in_sync', True) else '  (members differ: catching up)'}"
        f"   changed by {cfg.get('changed_by') or '-'}",
        "",
        "Nodes:",
    ]
    for n in st["nodes"]:
        links = "  ".join(f"{k}:{v}" for k, v in n.get("links", {}).items())
        flags = []
        if n.get("self"):
            flags.append("this node")
        if n.get("late"):
            flags.append("LATE")
        if n.get("restarts"):
            flags.append(f"restarted {n['restarts']}x")
        heard = "" if n.get("self") else f"  heard {_age(n.get('last_heard_s'))}"
        lines.append(f"  {n['name']:<12} {n['state'].upper():<8} {links}{heard}"
                     f"{'  [' + ', '.join(flags) + ']' if flags else ''}")
    lines.append("")
    lines.append("Links:")
    for lk in st["links"]:
        lines.append(f"  {lk['name']:<12} {lk['state'].upper():<9} {lk['mode']} port {lk['port']}"
                     f"  peers up {lk['peers_up']}/{lk['peers_total']}")
    pk = st["packets"]
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(pk.get("dropped", {}).items()) if v) or "none"
    lines.append("")
    lines.append(f"Packets: sent {pk['sent']}, received {pk['received']}, dropped: {dropped}")
    hb = st.get("heartbeat", {})
    jit = hb.get("send_jitter_ms") or {}
    if jit:
        lines.append(f"Heartbeat: every {hb.get('keepalive_s')}s, dead after {hb.get('deadtime_s')}s; "
                     f"send jitter median {jit.get('median', 0):.2f}ms max {jit.get('max', 0):.2f}ms")
    res = st.get("resources") or []
    lines.append("")
    if not res:
        lines.append("Resources: none configured")
    else:
        lines.append("Resources:")
        for r in res:
            where = ", ".join(r.get("nodes") or []) or "-"
            extra = []
            if r.get("promoted"):
                extra.append(f"promoted on {', '.join(r['promoted'])}")
            if r.get("failed_on"):
                extra.append(f"FAILED on {', '.join(r['failed_on'])}")
            if r.get("failcounts"):
                extra.append("failures " + ", ".join(f"{n}:{c if c < 1000000 else 'INFINITY'}"
                                                     for n, c in r["failcounts"].items()))
            if r.get("in_flight"):
                extra.append("now: " + ", ".join(f"{a} on {n}" for n, a in r["in_flight"].items()))
            lines.append(f"  {r['id']:<16} {r.get('state', '?').upper():<9} {where:<12} {r.get('agent', '')}"
                         f"{'  [' + '; '.join(extra) + ']' if extra else ''}")
    return "\n".join(lines)
