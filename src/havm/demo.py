"""The main job: a 3-node lab cluster with two real QEMU guests, live migration and failover.

Run by ``scripts/demo.sh`` (as root, after ``scripts/setup.sh``). Everything it
shows is done through the ``havm`` command line an operator would use, and
every figure it prints is measured in this run: from the guests themselves
(boot id, counter), QEMU (migration downtime) and the daemons' logs (detection,
fencing, recovery). An observer samples every node's QEMU processes throughout
and reports whether any VM ever ran twice. The lab is torn down at the end,
also on failure or Ctrl-C; its directory (logs) is removed after a clean run
it created, and kept (its path printed) otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from havm.lab.logs import first


def havm(*args: str, check: bool = True, show: bool = False) -> Any:
    """Run ``havm ARGS --json``; return the parsed JSON (or raise with its error)."""
    cmd = [sys.executable, "-m", "havm.cli.main", *args]
    if show:
        print(f"\n$ havm {' '.join(args)}", flush=True)
        out = subprocess.run(cmd, text=True, capture_output=True, timeout=600)
        print(out.stdout.rstrip(), flush=True)
        if out.returncode != 0 and check:
            raise SystemExit(f"havm {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
        return None
    out = subprocess.run(cmd + ["--json"], text=True, capture_output=True, timeout=600)
    if out.returncode != 0 and check:
        raise SystemExit(f"havm {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()} {out.stdout.strip()}")
    try:
        return json.loads(out.stdout)
    except ValueError:
        return None


class Observer(threading.Thread):
    """Samples every node's QEMU processes; remembers any VM seen running twice."""

    def __init__(self, lab_dir: str) -> None:
        super().__init__(daemon=True)
        self.lab_dir = lab_dir
        self.samples = 0
        self.twice: list[tuple[float, list[str]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            res = havm("lab", "vms", "--dir", self.lab_dir, "--no-guest", check=False)
            if isinstance(res, dict):
                self.samples += 1
                if res.get("twice"):
                    self.twice.append((time.time(), list(res["twice"])))
            self._halt.wait(0.3)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


def vms(lab_dir: str) -> dict[str, Any]:
    return havm("lab", "vms", "--dir", lab_dir)["vms"]  # type: ignore[no-any-return]


def where(lab_dir: str, vm: str) -> str | None:
    st = havm("--lab", lab_dir, "status", check=False)
    if not isinstance(st, dict):
        return None
    for r in st.get("resources", []):
        if r["id"] == vm and len(r["nodes"]) == 1 and not r.get("in_flight"):
            return r["nodes"][0]  # type: ignore[no-any-return]
    return None


def guest(lab_dir: str, vm: str) -> dict[str, Any]:
    return vms(lab_dir).get(vm, {}).get("guest") or {}


def step(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=None, help="lab directory (default: a new one under /tmp)")
    p.add_argument("--keep", action="store_true", help="leave the lab running at the end")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("the demo needs root (network namespaces, taps, bridges)", file=sys.stderr)
        return 2
    lab_dir = args.dir or tempfile.mkdtemp(prefix="havm-demo-")
    figures: dict[str, str] = {}
    observer: Observer | None = None
    try:
        step("a 3-node lab: three havmd in network namespaces, two heartbeat links, two QEMU guests")
        t0 = time.monotonic()
        havm("lab", "up", "--nodes", "3", "--links", "2", "--vms", "2", "--keepalive", "0.2", "--deadtime", "1",
             "--dir", lab_dir, show=True)
        figures["lab up with 2 VMs running"] = f"{time.monotonic() - t0:.1f} s"
        observer = Observer(lab_dir)
        observer.start()
        havm("--lab", lab_dir, "status", show=True)
        havm("lab", "vms", "--dir", lab_dir, show=True)

        step("live migration of vm1 (the guest keeps running: same boot id, counter continues)")
        src = where(lab_dir, "vm1")
        assert src is not None, "vm1 is not running"
        dst = next(n for n in ("n1", "n2", "n3") if n != src)
        before = guest(lab_dir, "vm1")
        t_mig = time.time()
        t0 = time.monotonic()
        havm("--lab", lab_dir, "resource", "migrate", "vm1", dst, show=True)
        total = time.monotonic() - t0
        after = guest(lab_dir, "vm1")
        mig = first(lab_dir, r"havm\.controller \w+: migrated vm1 \S+ -> \S+ \(QEMU downtime (\S+) ms, "
                             r"total (\S+) ms\)", t_mig - 1)
        same = before.get("boot_id") == after.get("boot_id")
        print(f"vm1 on {src}: boot {str(before.get('boot_id'))[:8]} counter {before.get('counter')}  ->  "
              f"on {dst}: boot {str(after.get('boot_id'))[:8]} counter {after.get('counter')}  "
              f"({'same guest, counter continued' if same else 'DIFFERENT BOOT: not a live migration'})")
        figures["live migration, havm command end to end"] = f"{total:.2f} s"
        if mig:
            figures["live migration, QEMU downtime / QEMU total"] = f"{mig.match.group(3)} ms / {mig.match.group(4)} ms"
        havm("--lab", lab_dir, "resource", "clear", "vm1", "--no-wait")

        step("failover: power-cut the node running vm2 (the cluster fences it, then restarts vm2)")
        victim = where(lab_dir, "vm2")
        assert victim is not None, "vm2 is not running"
        before = guest(lab_dir, "vm2")
        print(f"\n$ havm lab kill {victim} --dir {lab_dir}", flush=True)
        t_kill = time.time()
        killed = havm("lab", "kill", victim, "--dir", lab_dir)
        t_kill = float(killed.get("at", t_kill))  # when the power went off, not when the command began
        print(f"{victim}: power cut, {len(killed.get('killed', []))} processes killed", flush=True)
        deadline = time.monotonic() + 180
        new = None
        while time.monotonic() < deadline:
            new = where(lab_dir, "vm2")
            if new and new != victim and "counter" in guest(lab_dir, "vm2"):
                break
            time.sleep(0.3)
        t_back = time.time()
        after = guest(lab_dir, "vm2")
        print(f"vm2 on {victim}: boot {str(before.get('boot_id'))[:8]} counter {before.get('counter')}  ->  "
              f"on {new}: boot {str(after.get('boot_id'))[:8]} counter {after.get('counter')} "
              f"(a cold restart: new boot, counter restored from its disk)")
        dead = first(lab_dir, rf"havm\.membership \w+: peer {victim} is dead", t_kill)
        fenced = first(lab_dir, rf"havm\.controller \w+: fenced {victim}: confirmed off", t_kill)
        started = first(lab_dir, r"havm\.executor \w+: start vm2: rc=0", t_kill)
        if dead:
            figures["failover: kill -> node declared dead"] = f"{dead.at - t_kill:.2f} s"
        if dead and fenced:
            figures["failover: dead -> fenced (lab power switch)"] = f"{fenced.at - dead.at:.2f} s"
        if started:
            figures["failover: kill -> vm2 started on a survivor"] = f"{started.at - t_kill:.2f} s"
        figures["failover: kill -> vm2's guest answers again"] = f"{t_back - t_kill:.2f} s"
        havm("--lab", lab_dir, "status", show=True)
    finally:
        try:
            if observer is not None:
                observer.stop()
        finally:  # the lab goes down whatever happened above
            if not args.keep:
                subprocess.run([sys.executable, "-m", "havm.cli.main", "lab", "down", "--dir", lab_dir],
                               capture_output=True, timeout=120)
    step("measured in this run")
    for k, v in figures.items():
        print(f"  {k:<48} {v}")
    if observer is not None:
        verdict = "never" if not observer.twice else f"{len(observer.twice)} TIMES: {observer.twice[:3]}"
        print(f"  {'observer: a VM running on two nodes':<48} {verdict} ({observer.samples} samples)")
    ok = observer is None or not observer.twice
    if args.keep:
        print(f"\nlab left running in {lab_dir}")
    elif ok and args.dir is None:
        shutil.rmtree(lab_dir, ignore_errors=True)  # ours, and nothing to look into
        print("\nlab torn down, its directory removed")
    else:
        print(f"\nlab torn down; its logs stay in {lab_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
