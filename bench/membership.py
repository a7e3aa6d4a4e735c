#!/usr/bin/env python3
"""Benchmark havm membership alone: N real nodes on loopback, real UDP.

For each cluster size it starts N processes of ``python -m havm.membership``
(one per node, as havmd runs it: own thread, own event loop), on loopback
aliases 127.<L>.<hi>.<lo> (no root needed; unicast links), and measures:

- convergence: seconds from spawning the processes until every node reports
  all N members, agreed, and one controller (includes Python start-up);
- steady state over --window seconds: CPU per node (utime+stime from /proc, %
  of one core), heartbeat traffic per node (packets and bytes per second sent
  and received, from the nodes' own counters), send jitter (actual minus
  scheduled send time, from the nodes' own statistics);
- failure detection: the controller (n001) is SIGKILLed; for every other node,
  the time from the kill to its "peer n001 is dead" log line and to its
  "controller: n001 -> n002" line (log timestamps have 1 ms resolution).
  Expected: between deadtime - keepalive and deadtime after the kill.

Usage:  .venv/bin/python bench/membership.py [--sizes 3,16,32] [--links 2]
            [--keepalive 0.5 --warntime 1.5 --deadtime 3 --initdead 10] [--window 10]
            [--json results.json]
Every process it starts is killed by PID at the end; nothing else is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\S+) havm\.membership \w+: (.*)$")


def node_name(i: int) -> str:
    return f"n{i:03d}"


def address(link: int, i: int, subnet: int) -> str:
    return f"127.{subnet + link}.{i // 250}.{i % 250 + 1}"


def write_cluster(tmp: str, n: int, links: int, timing: dict[str, float], port: int, subnet: int) -> str:
    key = os.path.join(tmp, "authkey")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    config = {
        "cluster": "bench",
        "links": [{"name": f"l{k}", "port": port + k} for k in range(links)],
        "nodes": [{"name": node_name(i), "addresses": {f"l{k}": address(k, i, subnet) for k in range(links)}}
                  for i in range(1, n + 1)],
        "timing": timing,
    }
    path = os.path.join(tmp, "cluster.yaml")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def read_status(tmp: str, node: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(tmp, f"{node}.json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def wait_until(condition: Any, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def log_events(tmp: str, node: str) -> list[tuple[float, str]]:
    out = []
    try:
        with open(os.path.join(tmp, f"{node}.log")) as f:
            for line in f:
                m = LOG_LINE.match(line.rstrip("\n"))
                if m:
                    t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    out.append((t, m.group(3)))
    except FileNotFoundError:
        pass
    return out


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def run_size(n: int, args: argparse.Namespace, timing: dict[str, float]) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix=f"hvm-bench-{n}-")
    subnet = random.randrange(20, 200)
    port = random.randrange(20000, 60000, 8)
    config = write_cluster(tmp, n, args.links, timing, port, subnet)
    names = [node_name(i) for i in range(1, n + 1)]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    result: dict[str, Any] = {"nodes": n, "links": args.links, "timing": timing, "dir": tmp,
                              "realtime": args.realtime, "load_average_before": os.getloadavg()[0]}
    try:
        t0 = time.monotonic()
        for name in names:
            with open(os.path.join(tmp, f"{name}.log"), "wb") as log:
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "havm.membership", "--config", config, "--node", name,
                     "--interval", str(args.status_interval), "--status-file", os.path.join(tmp, f"{name}.json"),
                     *(["--realtime", str(args.realtime)] if args.realtime else [])],
                    stdout=subprocess.DEVNULL, stderr=log)

        def converged() -> bool:
            for name in names:
                v = read_status(tmp, name)
                if not v or len(v["members"]) != n or not v["agreed"] or v["controller"] != names[0]:
                    return False
            return True
        start_timeout = 60 + 5 * n  # Python start-up of N processes on a small, busy machine
        if not wait_until(lambda: all(read_status(tmp, k) for k in names), timeout=start_timeout):
            raise RuntimeError(f"{n} nodes did not all start within {start_timeout}s; see {tmp}")
        started = time.monotonic()
        result["all_started_s"] = round(started - t0, 2)
        if not wait_until(converged, timeout=60 + n):
            dead = {k: p.poll() for k, p in procs.items() if p.poll() is not None}
            raise RuntimeError(f"{n} nodes did not converge within {60 + n}s (exited: {dead}); see {tmp}")
        result["convergence_s"] = round(time.monotonic() - t0, 2)
        result["convergence_after_all_started_s"] = round(time.monotonic() - started, 2)

        time.sleep(max(1.0, timing["keepalive"] * 4))  # settle: start-up CPU out of the window
        before_cpu = {k: cpu_seconds(p.pid) for k, p in procs.items()}
        before = {k: read_status(tmp, k) for k in names}
        w0 = time.monotonic()
        time.sleep(args.window)
        after_cpu = {k: cpu_seconds(p.pid) for k, p in procs.items()}
        after = {k: read_status(tmp, k) for k in names}
        window = time.monotonic() - w0
        cpu = [100 * (after_cpu[k] - before_cpu[k]) / window for k in names]
        tr = {k: (before[k]["traffic"], after[k]["traffic"]) for k in names}  # type: ignore[index]

        def rate(field: str) -> list[float]:
            return [(a[field] - b[field]) / window for b, a in tr.values()]
        drops = {k: a["traffic"]["drops"] for k, a in after.items() if a and a["traffic"]["drops"]}
        jitter = [after[k]["jitter"] for k in names]  # type: ignore[index]
        rounds: dict[str, int] = {}
        for k in names:
            for label, count in after[k]["jitter"]["histogram"].items():  # type: ignore[index]
                rounds[label] = rounds.get(label, 0) + count - before[k]["jitter"]["histogram"][label]  # type: ignore[index]
        total_rounds = sum(rounds.values()) or 1
        late_10ms = sum(c for label, c in rounds.items() if label not in ("1ms", "5ms", "10ms"))
        late_100ms = sum(c for label, c in rounds.items() if label not in ("1ms", "5ms", "10ms", "50ms", "100ms"))
        expected_rounds = n * window / timing["keepalive"]
        result["steady"] = {
            "window_s": round(window, 2),
            "cpu_percent_per_node": stats(cpu),
            "cpu_percent_total": sum(cpu),
            "sent_packets_per_s_per_node": stats(rate("sent_packets")),
            "sent_bytes_per_s_per_node": stats(rate("sent_bytes")),
            "received_bytes_per_s_per_node": stats(rate("received_bytes")),
            "rounds_in_window": {"sent": sum(rounds.values()), "expected": round(expected_rounds)},
            "rounds_by_lateness": rounds,
            "rounds_late_over_10ms_percent": 100 * late_10ms / total_rounds,
            "rounds_late_over_100ms_percent": 100 * late_100ms / total_rounds,
            "jitter_ms_median_of_medians_recent": 1000 * statistics.median(j["median"] for j in jitter),
            "drops": drops,
            "lost_packets": sum(lk["lost"] for v in after.values() if v for lk in v["links"]),
        }

        victim = names[0]
        kill_wall = time.time()
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait(10)
        dead_line = f"peer {victim} is dead"
        ctl_line = f"controller: {victim} -> {names[1]}"

        def detected() -> bool:
            return all(any(ctl_line in msg for _, msg in log_events(tmp, k)) for k in names[1:])
        wait_until(detected, timeout=timing["deadtime"] * 3 + 10 + n / 4)
        dead_at, ctl_at, missing = [], [], []
        for k in names[1:]:
            events = log_events(tmp, k)
            d = [t for t, msg in events if dead_line in msg and t >= kill_wall - 0.01]
            c = [t for t, msg in events if ctl_line in msg and t >= kill_wall - 0.01]
            if d:
                dead_at.append(d[0] - kill_wall)
            if c:
                ctl_at.append(c[0] - kill_wall)
            if not d or not c:
                missing.append(k)
        result["detection_s"] = {k: round(v, 3) for k, v in stats(dead_at).items()}
        result["controller_failover_s"] = {k: round(v, 3) for k, v in stats(ctl_at).items()}
        result["expected_detection_window_s"] = [timing["deadtime"] - timing["keepalive"], timing["deadtime"]]
        if missing:
            result["not_detected_by"] = missing
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
    return result


def micro(n: int, links: int, timing: dict[str, float], seconds: float = 10.0) -> dict[str, Any]:
    """CPU cost of the membership hot paths, in one process, without sockets.

    N services on a FakeNetwork driven by a ManualClock; CPU time (process_time,
    so robust to a busy machine) is split between receiving datagrams (decode,
    HMAC, anti-replay, detector, view when changed) and ticks (heartbeat round:
    encode + HMAC per link; timers). The nominal per-node CPU at N nodes follows
    from the real rates: 2 rounds/s per keepalive 0.5 s, (N-1) x links datagrams
    received per round.
    """
    from havm.clock import ManualClock
    from havm.config.schema import ClusterConfig
    from havm.membership.fake import FakeNetwork
    from havm.membership.service import MembershipService

    config = ClusterConfig.model_validate(json.loads(json.dumps({
        "cluster": "bench",
        "links": [{"name": f"l{k}", "port": 20000 + k} for k in range(links)],
        "nodes": [{"name": node_name(i), "addresses": {f"l{k}": address(k, i, 20) for k in range(links)}}
                  for i in range(1, n + 1)],
        "timing": timing,
    })))
    clock = ManualClock()
    net = FakeNetwork(clock, links)
    services = []
    for name in config.node_names:
        t = net.transport(name)
        svc = MembershipService(config, name, b"k" * 32, clock, t, lambda: {"cfg": [1, 2, "ab" * 8], "api": 7694})
        t.attach(svc.on_datagram)
        services.append(svc)
    step = timing["keepalive"] / 4  # the real loop wakes at sends and detector deadlines: a few per round

    def run(duration: float) -> tuple[float, float, int, int]:
        tick_cpu = recv_cpu = 0.0
        ticks = 0
        delivered = net.delivered
        for _ in range(round(duration / step)):
            clock.advance(step)
            c0 = time.process_time()
            for svc in services:
                svc.tick()
            c1 = time.process_time()
            net.deliver()
            c2 = time.process_time()
            tick_cpu += c1 - c0
            recv_cpu += c2 - c1
            ticks += len(services)
        return tick_cpu, recv_cpu, ticks, net.delivered - delivered

    run(3.0)  # converge
    assert all(len(s.snapshot().members) == n for s in services), "micro: did not converge"
    tick_cpu, recv_cpu, ticks, packets = run(seconds)
    per_packet = recv_cpu / packets
    per_tick = tick_cpu / ticks
    received_per_s = (n - 1) * links / timing["keepalive"]
    ticks_per_s = 1 / step
    return {"nodes": n, "links": links, "us_per_received_packet": round(1e6 * per_packet, 1),
            "us_per_tick": round(1e6 * per_tick, 1),
            "nominal_cpu_percent_per_node": round(100 * (per_packet * received_per_s + per_tick * ticks_per_s), 2),
            "received_packets_per_s_per_node": received_per_s}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="3,16,32")
    p.add_argument("--links", type=int, default=2)
    p.add_argument("--keepalive", type=float, default=0.5)
    p.add_argument("--warntime", type=float, default=1.5)
    p.add_argument("--deadtime", type=float, default=3.0)
    p.add_argument("--initdead", type=float, default=10.0)
    p.add_argument("--window", type=float, default=10.0, help="steady-state measurement window, seconds")
    p.add_argument("--status-interval", type=float, default=1.0,
                   help="how often each node writes its status file (costs CPU: keep it low)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--realtime", type=int, default=0, metavar="PRIORITY",
                   help="run each node's membership thread under SCHED_RR (needs root)")
    p.add_argument("--micro", action="store_true",
                   help="only the in-process CPU cost per packet and per tick (no sockets, no processes)")
    args = p.parse_args()
    timing = {"keepalive": args.keepalive, "warntime": args.warntime, "deadtime": args.deadtime,
              "initdead": args.initdead}
    if args.micro:
        print("| nodes | us per received packet | us per tick | nominal CPU %/node |")
        print("|---|---|---|---|")
        for n in (int(x) for x in args.sizes.split(",")):
            m = micro(n, args.links, timing)
            print(f"| {n} | {m['us_per_received_packet']} | {m['us_per_tick']} | {m['nominal_cpu_percent_per_node']} |",
                  flush=True)
        return 0
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        r = run_size(n, args, timing)
        results.append(r)
        print(json.dumps(r), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print("\n| nodes | start s | converge s (after start) | CPU %/node (median, max) | sent pkt/s/node | "
          "sent KB/s/node | recv KB/s/node | rounds sent/expected | rounds >10ms, >100ms late | "
          "detection s (min/median/max) | failover s (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["steady"]
        d = r["detection_s"]
        print(f"| {r['nodes']} | {r['all_started_s']} | {r['convergence_after_all_started_s']} | "
              f"{s['cpu_percent_per_node']['median']:.2f}, "
              f"{s['cpu_percent_per_node']['max']:.2f} | {s['sent_packets_per_s_per_node']['median']:.0f} | "
              f"{s['sent_bytes_per_s_per_node']['median'] / 1000:.1f} | "
              f"{s['received_bytes_per_s_per_node']['median'] / 1000:.1f} | "
              f"{s['rounds_in_window']['sent']}/{s['rounds_in_window']['expected']} | "
              f"{s['rounds_late_over_10ms_percent']:.1f}%, {s['rounds_late_over_100ms_percent']:.1f}% | "
              f"{d.get('min', 0):.3f}/{d.get('median', 0):.3f}/{d.get('max', 0):.3f} | "
              f"{r['controller_failover_s'].get('median', 0):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
