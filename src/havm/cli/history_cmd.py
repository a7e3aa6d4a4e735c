"""havm history: the cluster's events (every member's log, merged by time) -- docs/history.md.

The query is the ``GetHistory`` command (the same object GET /v1/history
builds); this module only turns arguments into it and events into lines.
``--follow`` asks again every ``--interval`` seconds for what happened since
the newest event shown (a little earlier, since members' clocks differ) and
prints what it has not shown yet.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from havm.cli.target import connect
from havm.commands.history import DEFAULT_LIMIT, GetHistory, parse_since
from havm.daemon.client import Client
from havm.errors import HavmError, UsageError

FOLLOW_OVERLAP = 5.0  # seconds asked again on each --follow round: members' clocks and logs lag a little
SEEN_KEEP = 10000  # events remembered to print each once while following

Fetch = Callable[[GetHistory], dict[str, Any]]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "history", help="show the cluster's events: membership, quorum, actions, fencing, config changes",
        description="Show what happened in the cluster, oldest first: every member's event log merged by "
                    "time (node joins and losses, quorum, controller changes, every agent action with its "
                    "result and duration, resource failures, fencing attempts, configuration changes with "
                    "who and the diff). Members that do not answer are named on stderr.",
        epilog="--json prints {\"events\": [...], \"nodes\": {member: \"ok\" | why not}}; each event is "
               "{seq, time, node, kind, text, fields} (docs/history.md). With --follow, --json prints one "
               "event per line. Global --node picks the daemon asked; the --node after 'history' filters.")
    p.add_argument("--since", metavar="AGE|TIME",
                   help="only events since: an age (90s, 10m, 2h, 1d, 1w), a unix time, or a local date and "
                        "time (2026-11-22T06:00, '2026-11-22 06:00:00')")
    p.add_argument("--resource", "-r", metavar="ID", help="only events of this resource")
    p.add_argument("--kind", "-k", action="append", metavar="KIND", dest="kinds",
                   help="only events of this kind or prefix (node = node.join + node.leave); repeatable")
    p.add_argument("--node", dest="about", metavar="N", help="only events about node N (recorded there or "
                                                             "naming it as target)")
    p.add_argument("--limit", "-n", type=int, default=DEFAULT_LIMIT, metavar="N",
                   help=f"the newest N events (default {DEFAULT_LIMIT})")
    p.add_argument("--json", action="store_true", help="print the events as JSON")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between --follow polls")
    p.add_argument("--count", type=int, default=None, metavar="N", help="with --follow: stop after N polls")
    p.set_defaults(func=cmd_history)


def since_value(text: str | None, now: float) -> float | None:
    """An age, a unix time (``parse_since``, as the API takes them) or a local ISO date and time."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        return parse_since(text, now)


def query(args: argparse.Namespace, now: float) -> GetHistory:
    return GetHistory(since=since_value(args.since, now), resource=args.resource, kinds=args.kinds or None,
                      node=args.about, limit=args.limit)


def format_event(ev: dict[str, Any]) -> str:
    t = float(ev["time"])
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"
    return f"{stamp}  {ev['node']:<10} {ev['kind']:<18} {ev['text']}"


def print_events(events: Iterable[dict[str, Any]], as_json: bool) -> None:
    for ev in events:
        print(json.dumps(ev, separators=(",", ":")) if as_json else format_event(ev))


def warn_gaps(nodes: dict[str, str]) -> None:
    for n, state in sorted(nodes.items()):
        if state != "ok":
            print(f"havm: history: no events from {n} ({state}): it may hold more", file=sys.stderr)


def follow(fetch: Fetch, first: GetHistory, as_json: bool, interval: float, count: int | None,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """Print the history once, then every ``interval`` what was not printed yet; ``count`` polls at most."""
    seen: set[tuple[str, int]] = set()
    order: deque[tuple[str, int]] = deque()
    q = first
    polls = 0
    gaps: dict[str, str] = {}
    while count is None or polls < count:
        if polls:
            sleep(interval)
        polls += 1
        try:
            result = fetch(q)
        except HavmError as err:  # a daemon restarting: say so, try again
            print(f"havm: history: {err}", file=sys.stderr)
            continue
        fresh = [e for e in result.get("events", []) if (e["node"], e["seq"]) not in seen]
        print_events(fresh, as_json)
        sys.stdout.flush()
        now_gaps = {n: s for n, s in result.get("nodes", {}).items() if s != "ok"}
        if now_gaps.keys() != gaps.keys():
            warn_gaps(now_gaps)
            gaps = now_gaps
        for e in fresh:
            key = (e["node"], e["seq"])
            seen.add(key)
            order.append(key)
            if len(order) > SEEN_KEEP:
                seen.discard(order.popleft())
        newest = max((float(e["time"]) for e in fresh), default=None)
        if newest is not None:
            since = newest - FOLLOW_OVERLAP
            q = GetHistory(since=max(since, q.since) if q.since is not None else since, resource=q.resource,
                           kinds=q.kinds, node=q.node, limit=q.limit)


def cmd_history(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.interval <= 0:
        raise UsageError("--interval must be positive")
    first = query(args, time.time())
    _, client = connect(args)

    def fetch(q: GetHistory) -> dict[str, Any]:
        return _run(client, q)

    if args.follow:
        follow(fetch, first, args.json, args.interval, args.count)
        return 0
    result = fetch(first)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_events(result.get("events", []), False)
        warn_gaps(result.get("nodes", {}))
    return 0


def _run(client: Client, q: GetHistory) -> dict[str, Any]:
    return client.run(q, timeout=10)  # type: ignore[no-any-return]
