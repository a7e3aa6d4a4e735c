#!/usr/bin/env python3
"""Failover time on a real lab: kill -9 the node that hosts d1 (or vm1 with --vm); when does it run elsewhere?

For each kill (power cut of the whole node: daemon and resources), from the
daemons' logs (all on this machine's clock):
  detection   kill -> the new controller's 'peer X is dead'
  decision    detection -> the controller's 'transition:' line (state rebuilt, plan made)
  fencing     when enabled: the 'fencing X' .. 'fenced X: confirmed off' lines
  start       the start action's own duration (executor line on the new node)
  total       kill -> d1's start succeeded on the new node
Resources: --resources dummy resources (d1..dN), monitor 1s; fencing when --fencing,
through the lab's power switch or (--fence-device ipmi) fence_ipmilan against each
node's simulated BMC. Prints medians and maxima and a JSON line.

Example: python bench/failover.py --kills 10 --keepalive 0.2 --deadtime 1 --fencing [--fence-device ipmi]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from havm.daemon.client import Client  # noqa: E402
from havm.errors import HavmError  # noqa: E402
from havm.lab import control, lab  # noqa: E402
from havm.lab.logs import first  # noqa: E402
from havm.lab.plan import LabSpec  # noqa: E402
from havm.lab.state import config_of, nodes_of, socket_of  # noqa: E402


def status(lab_dir: str, node: str) -> dict:
    return Client(socket_path=socket_of(lab_dir, node), timeout=5).request("GET", "/v1/status")


def all_members(lab_dir: str, names: list[str]) -> bool:
    """Every node is up and sees every other (a kill must not overlap a node's start-up:
    a node still within initdead would declare the victim dead only at initdead)."""
    try:
        return all(sorted(status(lab_dir, n)["members"]) == sorted(names) for n in names)
    except HavmError:
        return False


def placement(lab_dir: str, names: list[str]) -> dict[str, list[str]] | None:
    for n in names:
        try:
            return {r["id"]: r["nodes"] for r in status(lab_dir, n)["resources"]}
        except HavmError:
            continue
    return None


def wait(cond, timeout: float, what: str):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def configure(lab_dir: str, count: int, fencing: bool) -> None:
    """Add COUNT dummy resources (and the fencing choice) to the lab's configuration."""
    import yaml

    doc = yaml.safe_load(Path(config_of(lab_dir)).read_text())
    doc.setdefault("properties", {})["fencing_enabled"] = fencing
    keep = [r for r in doc.get("resources", []) if r.get("type") == "vm"]  # the lab's guests, if any
    doc["resources"] = keep + [{"id": f"d{i}", "type": "dummy", "ops": {"monitor": {"interval": "1s"}}}
                               for i in range(1, count + 1)]
    if fencing and not doc.get("fencing", {}).get("devices"):
        doc["fencing"] = {"devices": [{"id": "lab-power", "agent": "lab", "params": {"lab_dir": lab_dir}}]}
    path = Path(lab_dir) / "with-resources.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = subprocess.run([sys.executable, "-m", "havm.cli.main", "--lab", lab_dir, "config", "apply", str(path)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"config apply failed: {out.stderr}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--resources", type=int, default=10)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--keepalive", type=float, default=0.2)
    p.add_argument("--deadtime", type=float, default=1.0)
    p.add_argument("--fencing", action="store_true", help="fence the lost node first")
    p.add_argument("--fence-device", choices=("lab", "ipmi"), default="lab",
                   help="with --fencing: the lab's power switch, or fence_ipmilan against ipmi_sim BMCs")
    p.add_argument("--vm", action="store_true",
                   help="also run a real QEMU guest vm1 and kill the node that hosts it (not d1)")
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    lab_dir = args.dir or tempfile.mkdtemp(prefix="havm-failover-")
    rows = []
    try:
        lab.up(lab_dir, LabSpec(nodes=args.nodes, links=2, keepalive=args.keepalive, deadtime=args.deadtime,
                                initdead=max(3.0, args.deadtime), vms=1 if args.vm else 0,
                                fencing=args.fence_device),
               wait=True, timeout=120, vm_timeout=240)
        names = nodes_of(lab_dir)
        configure(lab_dir, args.resources, args.fencing)
        want = {f"d{i}" for i in range(1, args.resources + 1)} | ({"vm1"} if args.vm else set())
        track = "vm1" if args.vm else "d1"
        for k in range(args.kills):
            wait(lambda: all_members(lab_dir, names), 60, "every node a member")
            pl = wait(lambda: (x := placement(lab_dir, names)) and set(x) == want
                      and all(len(v) == 1 for v in x.values()) and x, 60, "all resources running")
            victim = pl[track][0]
            survivors = [n for n in names if n != victim]
            t_kill = time.time()
            control.kill_node(lab_dir, victim)

            def recovered(survivors: list[str] = survivors, victim: str = victim) -> str | None:
                x = placement(lab_dir, survivors)
                return x[track][0] if x and x.get(track) and x[track][0] != victim else None

            new = wait(recovered, 120, f"{track} recovered")
            time.sleep(0.3)  # let the log lines land
            t_plan = first(lab_dir, rf"havm\.controller \w+: transition: .*start {track} on", t_kill, survivors)
            if t_plan is None:
                raise SystemExit(f"no transition starting {track} in the survivors' logs")
            ctl = t_plan.node
            t_dead = first(lab_dir, rf"havm\.membership \w+: peer {victim} is dead", t_kill, [ctl])
            started = first(lab_dir, rf"havm\.executor \w+: start {track}: rc=0 \(success\) in ([\d.]+)s", t_kill,
                            [new])
            fence_a = first(lab_dir, rf"havm\.controller \w+: fencing {victim}", t_kill, [ctl])
            fence_b = first(lab_dir, rf"havm\.controller \w+: fenced {victim}: confirmed off", t_kill, [ctl])
            assert t_dead and t_plan and started, (victim, ctl, new)
            row = {"victim": victim, "controller": ctl,
                   "detection": t_dead.at - t_kill, "decision": t_plan.at - t_dead.at,
                   "fencing": (fence_b.at - fence_a.at) if (fence_a and fence_b) else None,
                   "start": float(started.match.group(3)), "total": started.at - t_kill}
            rows.append(row)
            print(f"kill {k + 1:2d}: {victim} -> {track} on {new}: detection {row['detection'] * 1000:.0f}ms, "
                  f"decision {row['decision'] * 1000:.0f}ms"
                  + (f", fencing {row['fencing'] * 1000:.0f}ms" if row["fencing"] is not None else "")
                  + f", start {row['start'] * 1000:.0f}ms, total {row['total'] * 1000:.0f}ms", flush=True)
            control.start_node(lab_dir, victim, wait=True, timeout=90)
    finally:
        lab.down(lab_dir)

    def stat(key: str) -> dict[str, float] | None:
        vals = [r[key] for r in rows if r[key] is not None]
        if not vals:
            return None
        return {"median_ms": round(statistics.median(vals) * 1000, 1), "max_ms": round(max(vals) * 1000, 1)}

    summary = {"bench": "failover", "nodes": args.nodes, "resources": args.resources, "tracked": track,
               "kills": len(rows),
               "keepalive": args.keepalive, "deadtime": args.deadtime, "fence_device": args.fence_device if args.fencing else None,
               **{k: stat(k) for k in ("detection", "decision", "fencing", "start", "total")}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
