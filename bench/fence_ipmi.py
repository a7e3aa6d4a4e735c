#!/usr/bin/env python3
"""How long Debian's fence_ipmilan takes against the lab's simulated BMCs (ipmi_sim).

A namespace lab with --fencing ipmi (no resources). Each round picks the next
node as target and, from inside a *survivor* node's namespace (where havmd runs
its fence agents), times through the stdin protocol, unmodified:
  off     action=off (fence_ipmilan checks status, powers off, waits power_wait
          (its default 2 s), re-checks until off): what a fence costs the agent
  status  action=status right after (havm's confirmation; must exit 2 = off)
  on      action=on (the node's havmd is started again), then waits until it answers
The node is then a member again before the next round. Prints medians and maxima
and a JSON line.

Example: python bench/fence_ipmi.py --rounds 10
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

from havm.config.fencing import FenceDevice, find_agent  # noqa: E402
from havm.fencing.agent import agent_stdin  # noqa: E402
from havm.lab import control, daemons, lab  # noqa: E402
from havm.lab.plan import LabSpec  # noqa: E402
from havm.lab.state import LabState  # noqa: E402


def timed(state: LabState, runner: str, target: str, action: str) -> tuple[float, int]:
    b = state.bmcs[target]
    dev = FenceDevice(id=f"bmc-{target}", agent="fence_ipmilan", nodes=[target],
                      params={"ip": b.address, "ipport": b.port, "username": b.username, "password": b.password,
                              "lanplus": 0})
    exe = find_agent("fence_ipmilan")
    assert exe, "fence_ipmilan is not installed (fence-agents)"
    argv = daemons.node_prefix(state, state.nodes[runner]) + [exe]
    t0 = time.monotonic()
    out = subprocess.run(argv, input=agent_stdin(dev, target, action), capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONWARNINGS": "ignore"})
    return time.monotonic() - t0, out.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--nodes", type=int, default=3)
    args = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    d = tempfile.mkdtemp(prefix="havm-fence-ipmi-")
    rows = []
    try:
        lab.up(d, LabSpec(nodes=args.nodes, keepalive=0.2, deadtime=1.0, initdead=3.0, fencing="ipmi"),
               wait=True, timeout=120)
        state = LabState.load(d)
        names = list(state.nodes)
        for k in range(args.rounds):
            target = names[k % len(names)]
            runner = names[(k + 1) % len(names)]
            off, rc_off = timed(state, runner, target, "off")
            status, rc_status = timed(state, runner, target, "status")
            on, rc_on = timed(state, runner, target, "on")
            assert (rc_off, rc_status, rc_on) == (0, 2, 0), (rc_off, rc_status, rc_on)
            control.wait_nodes(d, [target], timeout=60)
            state = LabState.load(d)  # the new daemon's pid
            rows.append({"off": off, "status": status, "on": on})
            print(f"round {k + 1:2d}: {runner} fences {target}: off {off:.2f}s, status {status:.2f}s, "
                  f"on {on:.2f}s", flush=True)
            time.sleep(2.0)  # the node rejoins before the next round
    finally:
        lab.down(d)

    def stat(key: str) -> dict[str, float]:
        vals = [r[key] for r in rows]
        return {"median_s": round(statistics.median(vals), 3), "max_s": round(max(vals), 3),
                "min_s": round(min(vals), 3)}

    print(json.dumps({"bench": "fence_ipmi", "rounds": len(rows),
                      **{k: stat(k) for k in ("off", "status", "on")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
