#!/usr/bin/env python3
"""Whole ``havm simulate`` runs side by side with Pacemaker's ``crm_simulate`` on the same CIBs.

    .venv/bin/python bench/scheduler.py                          # every size and scenario
    .venv/bin/python bench/scheduler.py --sizes 16x500 --scenarios fresh,mixed --repeat 5
    .venv/bin/python bench/scheduler.py --crm-cache crm.json     # reuse crm_simulate's timings
    .venv/bin/python bench/scheduler.py --no-crm                 # havm only
    .venv/bin/python bench/scheduler.py --sizes 16x500 --floor   # and the floor of any Python tool

The CIBs come from ../shared/bench/pacemaker/gen_cib.py (``--gen``; scenarios fresh,
node-failure, constraints, utilization, mixed; seed 1) and are kept in ``--cib-dir``.
Each case times whole processes, as a user runs them:

- ``havm simulate CIB`` (its text output to /dev/null), the entry point on PATH next
  to this Python (``--havm`` to change it);
- ``crm_simulate -x CIB -R -Q -G graph.xml`` (run the scheduler once, quietly, and
  write the graph: what the README of gen_cib.py calls the honest figure; never -S,
  which runs the scheduler twice). A crm_simulate run using more than ``--crm-limit``
  CPU seconds (default 300) is stopped and shown as "> limit".

Per case: the median wall time of ``--repeat`` runs, the CPU time (user+sys) of the
fastest run, the peak memory (max RSS of the process), and two ratios crm/havm: of
median wall times, and of CPU times. Both tools are single-threaded, so on a quiet
machine wall and CPU time agree; on a loaded one the wall time stretches with the load
(an upper bound for both) and the CPU ratio is the fairer comparison. The 1-minute load
average before and after each case is shown.

``--floor`` also times, per case, the least a Python tool can do with the CIB: the
same interpreter as havm's (its script's ``#!`` line) starting as ``havm`` does, reading
the file and parsing it with expat (a callback per element, no model, no plan, no
output). Its median wall time bounds every whole-run ratio from above: "max x" is
crm_simulate's median over it, the best ratio any Python tool could show on that CIB.

Child processes get ``PYTHONPYCACHEPREFIX`` (a cache directory) and no
``PYTHONDONTWRITEBYTECODE``, so havm runs from compiled bytecode as an installed
package does; without it every run would first compile havm's modules.
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

SIZES = [(3, 30), (16, 500), (32, 2000), (100, 5000), (100, 10000)]
SCENARIOS = ["fresh", "node-failure", "constraints", "utilization", "mixed"]
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_GEN = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench", "pacemaker", "gen_cib.py"))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_once(cmd: list[str], env: dict[str, str] | None = None, limit: float | None = None
             ) -> tuple[float, float, float] | None:
    """(wall s, cpu s, max RSS MB) of one run; None if it used more than ``limit`` CPU seconds.

    The limit counts CPU time, not wall time: on a loaded machine the wall time of a
    single-threaded run stretches with the load, its CPU time much less.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    polls = 0
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        polls += 1
        if limit is not None and polls % 100 == 0 and _cpu_seconds(proc.pid) > limit:
            proc.kill()
            os.wait4(proc.pid, 0)
            return None
        time.sleep(0.002)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"{' '.join(cmd)} failed: {err[-500:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def measure(cmd: list[str], repeat: int, env: dict[str, str] | None = None,
            limit: float | None = None) -> dict[str, float] | None:
    runs = []
    for _ in range(repeat):
        r = run_once(cmd, env, limit)
        if r is None:
            return None
        runs.append(r)
        if limit is not None and r[1] > limit / 3:
            break  # one run of a slow case is enough (and several would take too long)
    return {"wall": statistics.median(r[0] for r in runs), "cpu": min(r[1] for r in runs),
            "rss_mb": max(r[2] for r in runs), "runs": len(runs)}


FLOOR = """import sys, pyexpat
n = 0
def start(name, attrs):
    global n
    n += 1
p = pyexpat.ParserCreate()
p.StartElementHandler = start
with open(sys.argv[1], "rb") as f:
    p.Parse(f.read(), True)
"""


def interpreter_of(script: str) -> str:
    """The Python that runs ``script`` (its ``#!`` line), e.g. the venv's."""
    with open(script, "rb") as f:
        first = f.readline().decode(errors="replace")
    if not first.startswith("#!"):
        raise SystemExit(f"{script}: no #! line to find its Python in")
    return first[2:].split()[0]


def cib_path(cib_dir: str, gen: str, scenario: str, n: int, m: int) -> str:
    path = os.path.join(cib_dir, f"{scenario}-{n}x{m}.xml")
    if not os.path.exists(path):
        subprocess.run([sys.executable, gen, "--nodes", str(n), "--resources", str(m), "--scenario", scenario,
                        "--seed", "1", "--output", path], check=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(f"{n}x{m}" for n, m in SIZES))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--repeat", type=int, default=5, help="runs per case (median); slow cases run fewer")
    ap.add_argument("--cib-dir", default=os.path.join(tempfile.gettempdir(), "havm-bench-cib"))
    ap.add_argument("--gen", default=DEFAULT_GEN, help="gen_cib.py")
    ap.add_argument("--havm", default=os.path.join(os.path.dirname(sys.executable), "havm"))
    ap.add_argument("--no-crm", action="store_true", help="time havm only")
    ap.add_argument("--crm-limit", type=float, default=300.0,
                    help="stop crm_simulate after this many CPU seconds (default 300)")
    ap.add_argument("--crm-cache", help="JSON file of crm_simulate timings: read, and written with new ones")
    ap.add_argument("--json", help="write every figure to this JSON file")
    ap.add_argument("--floor", action="store_true",
                    help="also time a bare Python start + expat parse of each CIB (see above)")
    a = ap.parse_args()
    os.makedirs(a.cib_dir, exist_ok=True)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", os.path.join(a.cib_dir, "pycache"))
    cache: dict[str, dict[str, float] | None] = {}
    if a.crm_cache and os.path.exists(a.crm_cache):
        with open(a.crm_cache) as f:
            cache = json.load(f)
    graph = os.path.join(a.cib_dir, "graph.xml")
    sizes = [tuple(int(x) for x in s.split("x")) for s in a.sizes.split(",")]
    print(f"{'scenario':13s} {'size':>10s} | {'havm s':>7s} {'cpu s':>6s} {'MB':>5s} | {'crm s':>8s} {'cpu s':>7s} "
          f"{'MB':>5s} | {'wall x':>6s} {'cpu x':>6s} |" + (f" {'floor s':>7s} {'max x':>6s} |" if a.floor else "")
          + " load")
    python = interpreter_of(a.havm) if a.floor else ""
    results = []
    for scen in a.scenarios.split(","):
        for n, m in sizes:
            cib = cib_path(a.cib_dir, a.gen, scen, n, m)
            load0 = os.getloadavg()[0]
            ours = measure([a.havm, "simulate", cib], a.repeat, env)
            assert ours is not None
            key = f"{scen}-{n}x{m}"
            crm: dict[str, float] | None = None
            crm_note = "-"
            if not a.no_crm:
                if key in cache:
                    crm = cache[key]
                    crm_note = "cached"
                else:
                    crm = measure(["crm_simulate", "-x", cib, "-R", "-Q", "-G", graph], a.repeat, None, a.crm_limit)
                    cache[key] = crm
                    if a.crm_cache:
                        with open(a.crm_cache, "w") as f:
                            json.dump(cache, f, indent=1)
            floor = measure([python, "-c", FLOOR, cib], a.repeat, env) if a.floor else None
            load1 = os.getloadavg()[0]
            if a.no_crm:
                other = f"{'-':>8s} {'-':>7s} {'-':>5s} | {'-':>6s} {'-':>6s}"
            elif crm is None:
                other = f"{'-':>8s} {'> ' + format(a.crm_limit, 'g'):>7s} {'-':>5s} | {'-':>6s} " \
                        f"{'> ' + format(a.crm_limit / ours['cpu'], '.0f'):>6s}"
            else:
                other = f"{crm['wall']:8.3f} {crm['cpu']:7.3f} {crm['rss_mb']:5.0f} | " \
                        f"{crm['wall'] / ours['wall']:6.1f} {crm['cpu'] / ours['cpu']:6.1f}"
            if floor is not None:
                best = f"{crm['wall'] / floor['wall']:6.1f}" if crm else f"{'-':>6s}"
                other += f" | {floor['wall']:7.3f} {best}"
            print(f"{scen:13s} {f'{n}x{m}':>10s} | {ours['wall']:7.3f} {ours['cpu']:6.3f} {ours['rss_mb']:5.0f} | "
                  f"{other} | {load0:.1f}-{load1:.1f}" + (" (crm cached)" if crm_note == "cached" else ""),
                  flush=True)
            results.append({"scenario": scen, "nodes": n, "resources": m, "havm": ours, "crm": crm, "floor": floor,
                            "crm_limit": None if crm or a.no_crm else a.crm_limit, "load": [load0, load1]})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
