#!/usr/bin/env python3
"""Time havm's scheduler on generated clusters of the issue's sizes.

    .venv/bin/python bench/scheduler.py                      # every size and scenario, median of 3
    .venv/bin/python bench/scheduler.py --sizes 16x500 --scenarios mixed --repeat 5
    .venv/bin/python bench/scheduler.py --one mixed 100 10000 --repeat 1 --profile

The generator mirrors ../shared/bench/pacemaker/gen_cib.py (same scenarios and
proportions: location preferences on 30% of units and bans on 5%, colocation
pairs on 10% (70% together, 30% apart), orders on 10%, groups of 3 for 10% of
the VMs and an interleaved filesystem clone that 20% of the units need, with
constraints; per-VM cpu/memory and N+1 sized nodes with placement-strategy
balanced, with utilization; resource stickiness 100, a 30 s monitor). It
builds the config as a document and validates it like a YAML file would be,
so "load" is config validation + spec building and "plan" is plan() alone.

Each case runs in its own process so its peak memory (max RSS) is its own.
A side-by-side with crm_simulate plugs in through ``--cib-cmd``: a command
template run per case with {cib} replaced by a CIB path that ``--cib-dir``
provides as <scenario>-<nodes>x<resources>.xml (e.g. ``havm simulate {cib}``);
its whole-process wall time is reported next to ours.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

SIZES = [(3, 30), (16, 500), (32, 2000), (100, 5000), (100, 10000)]
SCENARIOS = {  # state, constraints, utilization (as gen_cib.py's presets)
    "fresh": ("fresh", False, False),
    "node-failure": ("node-failure", False, False),
    "constraints": ("fresh", True, False),
    "utilization": ("fresh", False, True),
    "mixed": ("node-failure", True, True),
}


def generate(scenario: str, n: int, m: int, seed: int = 1) -> dict[str, Any]:
    """A cluster config document (as parsed YAML) for ``n`` nodes and ``m`` VMs."""
    _, with_constraints, with_util = SCENARIOS[scenario]
    rng = random.Random(seed)
    width = max(3, len(str(n)))
    nodes = [f"node{i:0{width}d}" for i in range(1, n + 1)]
    vms = [f"vm{i:05d}" for i in range(1, m + 1)]
    groups: list[tuple[str, list[str]]] = []
    if with_constraints and m >= 3:
        n_groups = max(1, round(0.10 * m / 3))
        starts = sorted(rng.sample(range(0, m // 3), min(n_groups, m // 3)))
        groups = [(f"grp{g:04d}", vms[3 * s:3 * s + 3]) for g, s in enumerate(starts, 1)]
    in_group = {v for _, mem in groups for v in mem}
    first_of = {mem[0]: (gid, mem) for gid, mem in groups}
    units: list[tuple[str, list[str]]] = []
    for v in vms:
        if v in first_of:
            units.append(first_of[v])
        elif v not in in_group:
            units.append((v, [v]))
    util: dict[str, tuple[int, int]] = {}
    caps: dict[str, tuple[int, int]] = {}
    if with_util:
        for v in vms:
            util[v] = (rng.choice([1, 2, 2, 4, 4, 8]), rng.choice([1024, 2048, 4096, 4096, 8192, 16384]))
        tot_cpu = sum(c for c, _ in util.values())
        tot_mem = sum(mm for _, mm in util.values())
        usable = max(1, n - 1)
        for nd in nodes:
            f = 1.3 * rng.uniform(0.85, 1.15)
            caps[nd] = (max(8, int(tot_cpu / usable * f) + 1), max(16384, int(tot_mem / usable * f) + 1))

    def prim(v: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": v, "type": "dummy", "ops": {"monitor": {"interval": 30, "timeout": 20}}}
        if v in util:
            doc["utilization"] = {"cpu": util[v][0], "memory": util[v][1]}
        return doc

    resources: list[dict[str, Any]] = []
    constraints: list[dict[str, Any]] = []
    if with_constraints:
        resources.append({"clone": "fs-clone", "resource": prim("fs"), "interleave": True})
    for uid, members in units:
        if len(members) > 1:
            resources.append({"group": uid, "resources": [prim(v) for v in members]})
        else:
            resources.append(prim(uid))
    if with_constraints:
        uids = [u for u, _ in units]
        for u in uids:
            if rng.random() < 0.30:
                constraints.append({"location": u, "node": rng.choice(nodes),
                                    "score": rng.choice([50, 100, 200, 500, 1000])})
            if n >= 3 and rng.random() < 0.05:
                constraints.append({"location": u, "node": rng.choice(nodes), "score": "-INFINITY"})
        n_pairs = min(round(0.10 * m), len(uids) // 2)
        pool = rng.sample(uids, 2 * n_pairs)
        for k in range(n_pairs):
            dep, main = pool[2 * k], pool[2 * k + 1]
            score = "INFINITY" if rng.random() < 0.7 or n < 2 else "-INFINITY"
            constraints.append({"colocation": dep, "with": main, "score": score})
        seen: set[tuple[int, int]] = set()
        tries = 0
        n_ord = round(0.10 * m)
        orders = 0
        while orders < n_ord and len(uids) >= 2 and tries < 10 * n_ord:
            tries += 1
            i, j = sorted(rng.sample(range(len(uids)), 2))
            if (i, j) not in seen:
                seen.add((i, j))
                constraints.append({"order": uids[i], "then": uids[j]})
                orders += 1
        for u in uids:
            if rng.random() < 0.20:
                constraints.append({"order": "fs-clone", "then": u})
                constraints.append({"colocation": u, "with": "fs-clone"})
    node_docs = []
    for k, nd in enumerate(nodes):
        doc: dict[str, Any] = {"name": nd, "addresses": {"ring0": f"10.{k // 250}.{k % 250}.1"}}
        if nd in caps:
            doc["utilization"] = {"cpu": caps[nd][0], "memory": caps[nd][1]}
        node_docs.append(doc)
    return {"cluster": "bench", "links": [{"name": "ring0"}], "nodes": node_docs,
            "properties": {"placement_strategy": "balanced" if with_util else "default",
                           "fencing_enabled": False},
            "resource_defaults": {"stickiness": 100}, "resources": resources, "constraints": constraints}


def measure(scenario: str, n: int, m: int, repeat: int, profile: bool = False) -> dict[str, Any]:
    from havm.config.schema import ClusterConfig
    from havm.scheduler import ClusterSpec, State, apply, plan
    from havm.scheduler.model import NodeState, frozen_map

    doc = generate(scenario, n, m)
    loads, plans = [], []
    spec = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        spec = ClusterSpec.from_config(ClusterConfig.model_validate(doc))
        loads.append(time.perf_counter() - t0)
    assert spec is not None
    state = State(now=1_700_000_000)
    if SCENARIOS[scenario][0] == "node-failure":
        # the running state is what havm itself reaches from scratch; then one node goes
        # down cleanly (offline, as gen_cib.py without --fencing): its resources must move
        state = apply(state, plan(spec, state))
        failed = spec.nodes[random.Random(1).randrange(1, n)].name if n > 1 else spec.nodes[0].name
        state = State(now=state.now, nodes=frozen_map({failed: NodeState("offline")}), resources=state.resources)
    transition = None
    if profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        transition = plan(spec, state)
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    for _ in range(repeat):
        t0 = time.perf_counter()
        transition = plan(spec, state)
        plans.append(time.perf_counter() - t0)
    assert transition is not None
    placed = sum(1 for p in spec.primitives if transition.placement.get(p))
    return {"scenario": scenario, "nodes": n, "resources": m, "load_s": statistics.median(loads),
            "plan_s": statistics.median(plans), "actions": len(transition.real_actions),
            "placed": placed, "primitives": len(spec.primitives),
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(scenario: str, n: int, m: int, repeat: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--one", scenario, str(n), str(m), "--repeat", str(repeat)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_command(template: str, cib: str, repeat: int) -> float | None:
    if not os.path.exists(cib):
        return None
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(template.format(cib=cib), shell=True, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(f"{n}x{m}" for n, m in SIZES))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", nargs=3, metavar=("SCENARIO", "NODES", "RESOURCES"))
    ap.add_argument("--profile", action="store_true", help="with --one: print a cProfile of one plan()")
    ap.add_argument("--cib-dir", help="directory of CIBs named <scenario>-<nodes>x<resources>.xml")
    ap.add_argument("--cib-cmd", help="command template timed on each CIB, e.g. 'crm_simulate -x {cib} -R -Q'")
    a = ap.parse_args()
    if a.one:
        scen, n, m = a.one[0], int(a.one[1]), int(a.one[2])
        print(json.dumps(measure(scen, n, m, a.repeat, a.profile)))
        return 0
    sizes = [tuple(int(x) for x in s.split("x")) for s in a.sizes.split(",")]
    header = f"{'scenario':13s} {'size':>11s} {'load s':>8s} {'plan s':>8s} {'total s':>8s} {'MB':>6s} " \
             f"{'placed':>13s} {'actions':>8s}"
    if a.cib_cmd:
        header += f" {'other s':>8s} {'ratio':>6s}"
    print(header)
    for scen in a.scenarios.split(","):
        for n, m in sizes:
            r = run_child(scen, n, m, a.repeat)
            total = r["load_s"] + r["plan_s"]
            line = (f"{scen:13s} {f'{n}x{m}':>11s} {r['load_s']:8.3f} {r['plan_s']:8.3f} {total:8.3f} "
                    f"{r['max_rss_mb']:6.0f} {r['placed']:>6d}/{r['primitives']:<6d} {r['actions']:8d}")
            if a.cib_cmd and a.cib_dir:
                other = time_command(a.cib_cmd, os.path.join(a.cib_dir, f"{scen}-{n}x{m}.xml"), a.repeat)
                line += f" {other:8.3f} {other / total:6.1f}" if other else f" {'-':>8s} {'-':>6s}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
