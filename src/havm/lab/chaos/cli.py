"""``havm lab chaos``: arguments and output (registered by ``havm.cli.lab_cmd``)."""

from __future__ import annotations

import argparse
import json
import sys

from havm.config.types import parse_duration
from havm.lab.chaos import campaign, report, schedule


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in schedule.KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown fault kind(s) {', '.join(unknown) or '(none)'}; "
                                         f"kinds are {', '.join(schedule.KINDS)}")
    return kinds


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", "-n", type=int, default=3, help="lab nodes (default 3)")
    p.add_argument("--iterations", "-k", type=int, default=10, help="iterations (default 10)")
    p.add_argument("--seed", type=int, default=1, help="random seed: same seed, same schedule (default 1)")
    p.add_argument("--vms", type=int, default=2, help="real QEMU guests in the lab (default 2)")
    p.add_argument("--fencing", choices=campaign.FENCING_MODES, default="lab",
                   help="lab: the lab's power switch; ipmi: fence_ipmilan against a simulated BMC per node; "
                        "watchdog: self-fencing only (the last two need a lab that has them)")
    p.add_argument("--bound", type=_duration, default=60.0,
                   help="seconds after the faults stop by which every resource must run again (default 60)")
    p.add_argument("--faults", type=_kinds, default=schedule.DEFAULT_KINDS, metavar="KIND,...",
                   help=f"fault kinds to draw from: {', '.join(schedule.KINDS)} (default all but "
                        f"{', '.join(schedule.OPT_IN)}, added later: asked for, so older seeds replay)")
    p.add_argument("--overlap", type=float, default=0.25,
                   help="probability that an iteration injects two overlapping faults (default 0.25)")
    p.add_argument("--hold", type=_duration, nargs=2, default=(2.0, 5.0), metavar=("MIN", "MAX"),
                   help="how long faults stay in place, uniform in [MIN, MAX] seconds (default 2 5)")
    p.add_argument("--keepalive", type=_duration, default=0.2)
    p.add_argument("--deadtime", type=_duration, default=1.0)
    p.add_argument("--disk-locking", choices=("off", "on", "auto"), default="off",
                   help="QEMU image locking of the VMs' disks (default off: the lab's nodes share one "
                        "kernel, whose locks would stop a second copy that separate hosts would not)")
    p.add_argument("--report", metavar="FILE", help="write the JSON report to FILE")
    p.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end (for inspection)")
    p.add_argument("--guest-dir", default=None, help="cache of the guest image")
    p.add_argument("--unsafe-fake-fencing", action="store_true",
                   help="TEST ONLY, UNSAFE: fencing confirms nodes off without powering them off, "
                        "to show that the observer catches the double-active VMs that follow")


def run(args: argparse.Namespace) -> int:
    opts = campaign.CampaignOptions(
        nodes=args.nodes, iterations=args.iterations, seed=args.seed, vms=args.vms, fencing=args.fencing,
        bound=args.bound, kinds=tuple(args.faults), overlap=args.overlap, hold=(args.hold[0], args.hold[1]),
        keepalive=args.keepalive, deadtime=args.deadtime, disk_locking=args.disk_locking,
        unsafe_fake_fencing=args.unsafe_fake_fencing, lab_dir=args.dir, keep_lab=args.keep_lab,
        guest_dir=args.guest_dir)
    if opts.unsafe_fake_fencing:
        campaign.print_unsafe_warning()
    out = sys.stderr if args.json else sys.stdout

    def progress(line: str) -> None:
        print(line, file=out, flush=True)

    rep = campaign.run(opts, progress=progress)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(rep, f, indent=2)
            f.write("\n")
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        print(report.summary(rep))
    return 1 if rep["violations"] or rep["aborted"] else 0
