#!/usr/bin/env python3
"""Benchmark live migration: havm's qemu agent against a bare QMP migration.

One guest (the project's own image, counter disk on a qcow2) is booted once,
then moved back and forth between two "hosts" (two run dirs on this machine,
migration over 127.0.0.1) --runs times by each method, alternating:

- havm: ``live_migrate`` with two ``QemuAgent``s: every phase (check, prepare
  with ``-incoming defer`` + ``migrate-incoming``, migrate + poll, confirm the
  target runs + announce-self, quit the source), with the same
  downtime-limit/max-bandwidth as the bare method;
- bare: the minimum by hand: launch the target QEMU with
  ``-incoming tcp:127.0.0.1:PORT``, connect QMP to the source,
  ``migrate-set-parameters``, ``migrate``, poll ``query-migrate`` every 50 ms,
  ``quit`` the source (the ``qemu.qmp`` library directly, no havm code).

Reported per method (medians, min-max): wall time from "begin" to "source
gone, target running", QEMU's own ``total-time`` and ``downtime``. Then the
ratio of havm's median wall time to the bare one. After every move it checks
the guest: same boot_id, counter still going (a broken guest aborts the run).

Usage:  .venv/bin/python bench/migration.py [--runs 5] [--downtime-limit 300]
            [--max-bandwidth 1073741824] [--json out.json]
Every QEMU it starts is killed by pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient

from havm.agents.migrate import live_migrate
from havm.agents.process import find_vm_process, kill_and_wait, scan_for
from havm.agents.qemu import QemuAgent
from havm.agents.vmspec import VmSpec, qemu_argv
from havm.guest import build_guest
from havm.guest.vmparams import create_disk, guest_params, wait_for_state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _bare(source: VmSpec, target: VmSpec, downtime: int, bandwidth: int) -> dict[str, Any]:
    port = free_port()
    target.vm_dir.mkdir(parents=True, exist_ok=True)
    argv = qemu_argv(target) + ["-incoming", f"tcp:127.0.0.1:{port}"]
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"target QEMU failed: {err.decode()[-300:]}")
    qmp = QMPClient("bench")
    await qmp.connect(str(source.qmp_socket))
    await qmp.execute("migrate-set-parameters",
                      {"downtime-limit": downtime, "max-bandwidth": bandwidth})
    await qmp.execute("migrate", {"uri": f"tcp:127.0.0.1:{port}"})
    for _ in range(2400):  # 120 s at most
        info: Any = await qmp.execute("query-migrate")
        if info["status"] in ("completed", "failed", "cancelled"):
            break
        await asyncio.sleep(0.05)
    if info["status"] != "completed":
        raise RuntimeError(f"bare migration {info['status']}: {info.get('error-desc')}")
    try:
        await qmp.execute("quit")
        await qmp.disconnect()
    except Exception:  # noqa: BLE001 - QEMU drops the socket as it quits
        pass
    pid = int(source.pidfile.read_text()) if source.pidfile.exists() else None
    while pid is not None and Path(f"/proc/{pid}").exists():
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
        if not stat or stat.rsplit(")", 1)[-1].split()[0] == "Z":
            break
        await asyncio.sleep(0.005)
    wall = time.monotonic() - t0
    return {"wall_ms": wall * 1000, "total_ms": info.get("total-time"),
            "downtime_ms": info.get("downtime")}


def summary(rows: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "n/a"
    return f"{statistics.median(values):8.1f} ({min(values):.0f}-{max(values):.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="migrations per method (default 5)")
    ap.add_argument("--downtime-limit", type=int, default=300, help="ms (default 300)")
    ap.add_argument("--max-bandwidth", type=int, default=1 << 30, help="bytes/s (default 1 GiB/s)")
    ap.add_argument("--json", help="also write the raw figures here")
    args = ap.parse_args()
    if shutil.which("qemu-system-x86_64") is None:
        print("qemu-system-x86_64 not installed", file=sys.stderr)
        return 2
    image = build_guest()
    root = Path(tempfile.mkdtemp(prefix="havm-bench-"))
    name = "benchvm"
    disk = create_disk(root / "disk.qcow2")
    port = {h: free_port() for h in ("a", "b")}
    agents = {h: QemuAgent(name, guest_params(
        image, name, disk, root / h, hostfwd_port=port[h], migration_address="127.0.0.1",
        downtime_limit_ms=args.downtime_limit, max_bandwidth=args.max_bandwidth,
        stop_timeout=10)) for h in ("a", "b")}
    rows: dict[str, list[dict[str, Any]]] = {"havm": [], "bare": []}
    try:
        started = agents["a"].start()
        if not started.ok:
            print(f"start failed: {started.output}", file=sys.stderr)
            return 1
        state = wait_for_state("127.0.0.1", port["a"], timeout=60)
        boot_id, here = state.boot_id, "a"
        print(f"guest up: boot_id {boot_id}; {args.runs} migrations per method, "
              f"downtime-limit {args.downtime_limit} ms, max-bandwidth {args.max_bandwidth} B/s")
        for i in range(2 * args.runs):
            method = "havm" if i % 4 in (0, 3) else "bare"  # each method both directions
            there = "b" if here == "a" else "a"
            before = wait_for_state("127.0.0.1", port[here], timeout=30)
            if method == "havm":
                t0 = time.monotonic()
                report = live_migrate(agents[here], agents[there], here, there)
                wall = time.monotonic() - t0
                if not report.ok:
                    print(report.details(), file=sys.stderr)
                    return 1
                row = {"wall_ms": wall * 1000, **report.qemu_figures,
                       "phases_ms": {k: round(r.duration * 1000, 1)
                                     for k, r in report.results.items()}}
            else:
                row = asyncio.run(_bare(agents[here].spec, agents[there].spec,
                                        args.downtime_limit, args.max_bandwidth))
            try:
                after = wait_for_state("127.0.0.1", port[there], timeout=30,
                                       newer_than=before.counter)
            except TimeoutError as exc:
                serial = agents[there].spec.serial_log.read_text()[-600:]
                print(f"guest broken after {method} migration {here}->{there}: {exc}\n"
                      f"QEMU figures {row}\nserial tail:\n{serial}", file=sys.stderr)
                return 1
            if after.boot_id != boot_id or find_vm_process(agents[here].spec.pidfile):
                print(f"guest broken after {method} migration: {after}", file=sys.stderr)
                return 1
            rows[method].append(row)
            print(f"  {method:4} {here}->{there}: wall {row['wall_ms']:7.1f} ms, QEMU total "
                  f"{row['total_ms']} ms, downtime {row['downtime_ms']} ms, counter "
                  f"{before.counter}->{after.counter}")
            if "phases_ms" in row:
                print("       phases (ms): " + ", ".join(f"{k} {v}" for k, v in row["phases_ms"].items()))
            here = there
        print("\nmethod    wall ms median (min-max)   QEMU total ms          QEMU downtime ms")
        for method in ("havm", "bare"):
            r = rows[method]
            print(f"{method:6} {summary(r, 'wall_ms'):>24} {summary(r, 'total_ms'):>22} "
                  f"{summary(r, 'downtime_ms'):>22}")
        ratio = (statistics.median(x["wall_ms"] for x in rows["havm"])
                 / statistics.median(x["wall_ms"] for x in rows["bare"]))
        print(f"\nhavm / bare wall time (medians): {ratio:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": rows, "ratio": ratio}, indent=2))
        return 0
    finally:
        for agent in agents.values():
            for pid in scan_for(agent.spec.pidfile):
                kill_and_wait(pid)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
