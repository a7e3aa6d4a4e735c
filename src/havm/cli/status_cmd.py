"""havm status: a one-shot view in the spirit of crm_mon; --watch is live (cli/watch.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from havm.cli.target import connect
from havm.commands.base import Command
from havm.commands.cluster import GetStatus
from havm.daemon.client import Client
from havm.errors import HavmError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "status", help="show the cluster: quorum, controller, nodes, links, resources",
        description="Show the cluster as one node sees it: quorum, controller, members, each node's "
                    "state and per-link health, dropped-packet counters, configuration version and "
                    "resources. Works against any node (--lab DIR --node N, --socket, --config).",
        epilog="--json prints the status document described in docs/status.md (schema 1). "
               "--watch on a terminal is a full-screen live view (q quits) that also lists what "
               "changed since it started (failures, nodes lost, resources moved) and the last hour's "
               "failures and fencing from the cluster's history; on a pipe it "
               "prints the status every --interval seconds (--json: one document per line).")
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    p.add_argument("--watch", "-w", action="store_true", help="live view until q / Ctrl-C")
    p.add_argument("--interval", type=float, default=1.0, help="refresh interval for --watch (seconds)")
    p.add_argument("--count", type=int, default=None, metavar="N",
                   help="with --watch on a pipe or with --json: stop after N refreshes")
    p.set_defaults(func=cmd_status)


class _Source:
    """The daemon the watch loops ask: the one that answered, until it stops answering."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client: Client | None = None
        self.timeout = max(2.0, 2 * args.interval)

    def _run(self, command: Command) -> Any:
        if self.client is None:
            _, self.client = connect(self.args)
        try:
            return self.client.run(command, timeout=self.timeout)
        except HavmError:
            self.client = None
            raise

    def status(self) -> dict[str, Any]:
        return self._run(GetStatus())  # type: ignore[no-any-return]

    def history(self) -> list[dict[str, Any]]:
        """The last hour's events of the kinds the live view shows (failures, fencing)."""
        from havm.cli.watch import HISTORY_KINDS, HISTORY_WINDOW
        from havm.commands.history import GetHistory

        got = self._run(GetHistory(since=time.time() - HISTORY_WINDOW, kinds=list(HISTORY_KINDS), limit=200))
        return list(got.get("events", []))


def cmd_status(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        args.interval = 1.0
    if not args.watch:
        _, client = connect(args)
        st = client.run(GetStatus())
        print(json.dumps(st, indent=2) if args.json else render(st))
        return 0
    source = _Source(args)
    if args.json:
        return _watch_json(source.status, args.interval, args.count)
    if sys.stdout.isatty() and sys.stdin.isatty() and args.count is None:
        from havm.cli.watch import run_curses

        return run_curses(source.status, args.interval, render, source.history)
    from havm.cli.watch import run_plain

    return run_plain(source.status, args.interval, render, sys.stdout, count=args.count)


def _watch_json(fetch: Callable[[], dict[str, Any]], interval: float, count: int | None) -> int:
    """One status document per line (errors as {"error": ...} lines), for scripts."""
    done = 0
    while count is None or done < count:
        try:
            out = json.dumps(fetch())
        except HavmError as e:
            out = json.dumps({"error": {"code": e.code, "message": str(e)}})
        print(out, flush=True)
        done += 1
        if count is None or done < count:
            time.sleep(interval)
    return 0


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
        f"{' (term ' + str(st['controller_term']) + ')' if st.get('controller') and st.get('controller_term') else ''}"
        f"{'' if st.get('view_agreed', True) else '   (views not yet agreed)'}"
        + (f"\n  controller waits for actions under way: {'; '.join(st['controller_waiting'])}"
           if st.get("controller_waiting") else ""),
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
            if r.get("migrating"):
                extra.append(f"migrating {r['migrating'].get('from') or '?'} -> {r['migrating']['to']}")
            if r.get("in_flight"):
                extra.append("now: " + ", ".join(f"{a} on {n}" for n, a in r["in_flight"].items()))
            lines.append(f"  {r['id']:<16} {r.get('state', '?').upper():<9} {where:<12} {r.get('agent', '')}"
                         f"{'  [' + '; '.join(extra) + ']' if extra else ''}")
    lines += _fencing_lines(st.get("fencing") or {})
    lines += _watchdog_lines(st.get("watchdog") or {})
    return "\n".join(lines)


def _watchdog_lines(w: dict[str, Any]) -> list[str]:
    """Fences that wait for a watchdog or cannot happen (loudly), then this node's watchdog."""
    lines = []
    for node, f in (w.get("fence_waits") or {}).items():
        if f["state"] == "impossible":
            lines.append(f"CANNOT FENCE {node}: {f['reason']}")
        else:
            lines.append(f"FENCING {node} BY ITS WATCHDOG: {f['reason']}")
    if w.get("enabled"):
        state = "armed" if w.get("armed") else "disarmed"
        lines.append(f"Watchdog: {state} ({w.get('backend')}, timeout {w.get('timeout') or '-'}s): "
                     f"{w.get('decision') or '-'}, {w.get('reason') or 'not checked yet'}")
    return [""] + lines if lines else []


def _fencing_lines(f: dict[str, Any], shown: int = 5) -> list[str]:
    """Failing fences first and loudly (their nodes' resources wait), then the last attempts."""
    lines = []
    for x in f.get("failing", []):
        lines.append(f"FENCING {x['node']} FAILING: {x['failed_attempts']} attempt(s) since "
                     f"{time.strftime('%H:%M:%S', time.localtime(x['since']))}, last {x['last_device'] or '-'}: "
                     f"{x['last_error']} (its resources are not recovered until it is confirmed off)")
    history = f.get("history", [])
    if history:
        lines.append("Fencing history (newest first):")
        for a in history[:shown]:
            lines.append(f"  {time.strftime('%H:%M:%S', time.localtime(a['started']))} {a['node']:<8} "
                         f"{a['device'] or '-':<12} {'OFF' if a['ok'] else 'FAILED':<6} by {a['executor']} "
                         f"for {a['requested_by']} ({a['duration']:.2f}s){': ' + a['error'] if a['error'] else ''}")
    return [""] + lines if lines else []
