#!/usr/bin/env python3
"""Membership acceptance figures on a real lab (network namespaces, real havmd).

  detect   kill -9 one daemon K times; when does every survivor declare it dead?
           (from the kill to the 'peer X is dead' line in each survivor's log)
  soak     run a fault for MINUTES and check membership never changed:
           loss (PERCENT% packet loss on ring0 of one node), linkdown (ring0 of one
           node down), busy (the daemons' API flooded by concurrent clients)
  converge bring up N nodes; time until every node reports all N members, one
           controller and one config version

Needs root (namespaces). Prints figures and one JSON line per run (--json for JSON only).
Example: python bench/membership_lab.py detect --nodes 3 --kills 20 --keepalive 0.2 --deadtime 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from havm.daemon.client import Client  # noqa: E402
from havm.errors import HavmError  # noqa: E402
from havm.lab import control, lab  # noqa: E402
from havm.lab.plan import LabSpec  # noqa: E402
from havm.lab.state import nodes_of, socket_of  # noqa: E402

DEAD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\S+) havm\.membership \w+: peer (\S+) is dead")
CHANGE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\S+) havm\.membership \w+: "
                    r"(peer \S+ is dead|members: .*|quorum .*|controller: .*)")


def ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def status(lab_dir: str, node: str) -> dict:
    return Client(socket_path=socket_of(lab_dir, node), timeout=5).request("GET", "/v1/status")


def converged(lab_dir: str, names: list[str]) -> bool:
    try:
        sts = [status(lab_dir, n) for n in names]
    except HavmError:
        return False
    return (all(sorted(s["members"]) == sorted(names) and s["view_agreed"] for s in sts)
            and len({s["controller"] for s in sts}) == 1 and len({s["config"]["version"] for s in sts}) == 1)


def wait(cond, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def log_lines(lab_dir: str, node: str) -> list[str]:
    p = Path(lab_dir) / "nodes" / node / "havmd.log"
    return p.read_text(errors="replace").splitlines() if p.exists() else []


def up(lab_dir: str, args: argparse.Namespace) -> list[str]:
    spec = LabSpec(nodes=args.nodes, links=args.links, keepalive=args.keepalive, deadtime=args.deadtime,
                   initdead=args.initdead)
    lab.up(lab_dir, spec, wait=True, timeout=120)
    names = nodes_of(lab_dir)
    return names


def cmd_detect(args: argparse.Namespace, lab_dir: str) -> dict:
    names = up(lab_dir, args)
    wait(lambda: converged(lab_dir, names), 60, "convergence")
    latencies: list[float] = []
    for k in range(args.kills):
        victim = names[1 + k % (len(names) - 1)]
        survivors = [n for n in names if n != victim]
        marks = {n: len(log_lines(lab_dir, n)) for n in survivors}
        t_kill = time.time()
        control.kill_daemon(lab_dir, victim)
        seen: dict[str, float] = {}

        def all_seen(survivors: list[str] = survivors, seen: dict[str, float] = seen,
                     marks: dict[str, int] = marks, victim: str = victim, t_kill: float = t_kill) -> bool:
            for n in survivors:
                if n in seen:
                    continue
                for line in log_lines(lab_dir, n)[marks[n]:]:
                    m = DEAD.match(line)
                    if m and m.group(3) == victim:
                        seen[n] = ts(m.group(1)) - t_kill
                        break
            return len(seen) == len(survivors)

        wait(all_seen, args.deadtime * 5 + 5, f"{victim} declared dead")
        latencies.extend(seen.values())
        print(f"kill {k + 1:2d}: {victim} dead on " + ", ".join(f"{n} {v * 1000:.0f}ms" for n, v in sorted(seen.items())),
              flush=True)
        control.start_node(lab_dir, victim, wait=True, timeout=30)
        wait(lambda: converged(lab_dir, names), 60, "reconvergence")
    bound = args.deadtime + args.keepalive
    return {"bench": "detect", "nodes": args.nodes, "kills": args.kills, "keepalive": args.keepalive,
            "deadtime": args.deadtime, "median_ms": round(statistics.median(latencies) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1), "bound_ms": round(bound * 1000, 1),
            "within_bound": sum(1 for x in latencies if x <= bound), "samples": len(latencies)}


def cmd_soak(args: argparse.Namespace, lab_dir: str) -> dict:
    names = up(lab_dir, args)
    wait(lambda: converged(lab_dir, names), 60, "convergence")
    time.sleep(args.keepalive * 4)
    marks = {n: len(log_lines(lab_dir, n)) for n in names}
    victim = names[-1]
    stop = threading.Event()
    requests = [0]
    if args.fault == "loss":
        control.loss(lab_dir, victim, args.percent, link="ring0")
    elif args.fault == "linkdown":
        control.link_down(lab_dir, victim, "ring0")
    elif args.fault == "busy":
        def flood(node: str) -> None:
            c = Client(socket_path=socket_of(lab_dir, node), timeout=10)
            while not stop.is_set():
                try:
                    c.request("GET", "/v1/status")
                    requests[0] += 1
                except HavmError:
                    pass
        threads = [threading.Thread(target=flood, args=(n,), daemon=True) for n in names for _ in range(4)]
        for t in threads:
            t.start()
    t_end = time.monotonic() + args.minutes * 60
    samples = 0
    changed_polls = 0
    while time.monotonic() < t_end:
        for n in names:
            try:
                st = status(lab_dir, n)
                samples += 1
                if sorted(st["members"]) != sorted(names) or not st["quorum"]["quorate"]:
                    changed_polls += 1
            except HavmError:
                changed_polls += 1
        time.sleep(1.0)
    stop.set()
    jitter = {n: status(lab_dir, n)["heartbeat"]["send_jitter_ms"] for n in names}
    events = [line for n in names for line in log_lines(lab_dir, n)[marks[n]:] if CHANGE.match(line)]
    control.heal(lab_dir)
    return {"bench": "soak", "fault": args.fault, "percent": args.percent if args.fault == "loss" else None,
            "nodes": args.nodes, "links": args.links, "minutes": args.minutes, "keepalive": args.keepalive,
            "deadtime": args.deadtime, "membership_changes": len(events), "bad_polls": changed_polls,
            "polls": samples, "api_requests": requests[0], "events": events[:20],
            "max_send_jitter_ms": round(max(j["max"] for j in jitter.values()), 2),
            "median_send_jitter_ms": round(statistics.median(j["median"] for j in jitter.values()), 2)}


def cmd_converge(args: argparse.Namespace, lab_dir: str) -> dict:
    t0 = time.monotonic()
    spec = LabSpec(nodes=args.nodes, links=args.links, keepalive=args.keepalive, deadtime=args.deadtime,
                   initdead=args.initdead)
    lab.up(lab_dir, spec, wait=False)
    names = nodes_of(lab_dir)
    t_up = time.monotonic() - t0
    took = wait(lambda: converged(lab_dir, names), 120, "convergence") + t_up
    st = [status(lab_dir, n) for n in names]
    return {"bench": "converge", "nodes": args.nodes, "seconds": round(took, 2), "initdead": args.initdead,
            "lab_up_seconds": round(t_up, 2), "controllers": sorted({s["controller"] for s in st}),
            "config_versions": sorted({s["config"]["version"] for s in st})}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["detect", "soak", "converge"])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--links", type=int, default=2)
    p.add_argument("--keepalive", type=float, default=0.2)
    p.add_argument("--deadtime", type=float, default=1.0)
    p.add_argument("--initdead", type=float, default=10.0)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--fault", choices=["loss", "linkdown", "busy"], default="loss")
    p.add_argument("--percent", type=float, default=20.0)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--dir", default=None, help="lab dir (default: a temporary one)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    lab_dir = args.dir or tempfile.mkdtemp(prefix="havm-bench-")
    try:
        result = {"detect": cmd_detect, "soak": cmd_soak, "converge": cmd_converge}[args.what](args, lab_dir)
    finally:
        lab.down(lab_dir)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
