"""The campaign runner: create a lab, run the scheduled iterations, check, tear down.

Each iteration: inject its faults (the second one ``stagger`` seconds after
the first), hold them, undo them, power on every node still off (a fenced
node reboots), then wait until the cluster has recovered (``recovery_gaps``)
or ``bound`` has passed; the recovery time counts from the moment the faults
stopped. Confirmed fences are read from the daemons' logs as they grow. The
observer thread samples the VMs throughout; ``invariants.check`` judges the
whole run at the end.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import yaml

from havm.commands.cluster import ApplyConfig, GetConfig
from havm.config.cluster import Timing
from havm.config.fencing import fence_race_bound
from havm.errors import HavmError, UsageError
from havm.lab import control, daemons, lab
from havm.lab.chaos import catalogue, fencehook, invariants, report, schedule
from havm.lab.chaos.catalogue import Injected, Lab
from havm.lab.chaos.invariants import FinalState, IterationRecord, Limits
from havm.lab.chaos.observer import Observer
from havm.lab.logs import STAMP, parse_stamp
from havm.lab.plan import LabSpec
from havm.lab.state import LabState

FENCING_MODES = ("lab", "ipmi", "watchdog")
# a fence confirmed by a device, or a lost node taken as fenced once its watchdog has certainly fired
FENCED = re.compile(STAMP + r".*(?:fenced (\S+): confirmed off|WARNING: (\S+) lost for \S+ >= fencing_watchdog_timeout)")
FENCE_FAILED = re.compile(STAMP + r".*FENCING (\S+) FAILED")
POLL = 0.5  # seconds between recovery checks
# fence_ipmilan confirms "off" by polling the BMC's power status, which is on while any process
# of the node runs: a node powered on again during that poll makes the fence fail. With BMCs,
# a node is powered on only once it has been off this long (a fence round is over by then).
IPMI_POWER_ON_DELAY = 15.0
TWO_NODE_FENCE_DELAY = 3.0  # seconds: fencing n1 waits this long, so in a race n1 shoots first
# ... at least: with slower timing it must also outlast n1's reaction (config/fencing.py fence_race_bound)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CampaignOptions:
    nodes: int = 3
    iterations: int = 10
    seed: int = 1
    vms: int = 2
    fencing: str = "lab"
    bound: float = 60.0  # seconds after the faults stop by which everything runs again
    kinds: tuple[str, ...] = schedule.DEFAULT_KINDS
    overlap: float = 0.25
    hold: tuple[float, float] = (2.0, 5.0)
    keepalive: float = 0.2
    deadtime: float = 1.0
    initdead: float = 3.0
    changes_during_faults: bool = True  # a config change through some node in every iteration
    disk_locking: str = "off"  # QEMU image locking of the lab VMs (off: havm alone keeps them single)
    unsafe_fake_fencing: bool = False  # TEST ONLY: fencing confirms without powering off
    lab_dir: str | None = None
    keep_lab: bool = False
    guest_dir: str | None = None
    vm_timeout: float = 300.0

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def check_options(opts: CampaignOptions) -> None:
    if opts.fencing not in FENCING_MODES:
        raise UsageError(f"--fencing must be one of {', '.join(FENCING_MODES)}, got {opts.fencing!r}")
    if opts.unsafe_fake_fencing and opts.fencing != "lab":
        raise UsageError("--unsafe-fake-fencing works only with the lab's power switch (--fencing lab)")
    if opts.nodes < 2:
        raise UsageError("a fault campaign needs at least 2 nodes")
    if opts.iterations < 0 or opts.bound <= 0:
        raise UsageError("--iterations must be >= 0 and --bound > 0")
    unknown = [k for k in opts.kinds if k not in schedule.KINDS]
    if unknown:
        raise UsageError(f"unknown fault kind(s) {', '.join(unknown)}; kinds are {', '.join(schedule.KINDS)}")
    if os.geteuid() != 0:
        raise UsageError("a fault campaign needs root (network namespaces, iptables, tc)")


def lab_spec(opts: CampaignOptions) -> LabSpec:
    """The lab the campaign runs on. Fencing modes other than the power switch need the
    lab to know them (``LabSpec.fencing``, from the fencing work)."""
    kw: dict[str, Any] = {}
    if "fencing" in {f.name for f in dataclasses.fields(LabSpec)}:
        kw["fencing"] = opts.fencing
    elif opts.fencing != "lab":
        raise UsageError(f"--fencing {opts.fencing}: this havm's lab has only its power switch (--fencing lab)")
    return LabSpec(nodes=opts.nodes, netns=True, vms=opts.vms, keepalive=opts.keepalive,
                   deadtime=opts.deadtime, initdead=opts.initdead, **kw)


def campaign_config(text: str, opts: CampaignOptions, switch_address: str | None) -> str:
    """The lab's configuration adjusted for the campaign (pure).

    - VM disks get ``locking`` (default off: the lab's nodes share one kernel,
      whose image locks would stop a second QEMU that real hosts would not);
    - a two-node lab gets two-node quorum with a ping tiebreaker (the switch's
      address on the guest network, which partitions of the heartbeat links
      leave reachable) and a fence delay on n1's power switch, so in a fence
      race n1 shoots first and the two never shoot each other at once.
    """
    doc = yaml.safe_load(text)
    for r in doc.get("resources") or []:
        if r.get("type") == "vm":
            for disk in (r.get("params") or {}).get("disks") or []:
                disk["locking"] = opts.disk_locking
    if opts.nodes == 2 and switch_address:
        doc["quorum"] = {"two_node": True, "tiebreaker": {"type": "ping", "targets": [switch_address]}}
        first = doc["nodes"][0]["name"]
        timing = Timing.model_validate(doc.get("timing") or {})
        delay = max(TWO_NODE_FENCE_DELAY, round(fence_race_bound(timing.deadtime, timing.keepalive) + 0.5, 1))
        for dev in (doc.get("fencing") or {}).get("devices") or []:
            if dev.get("nodes") is None or first in dev["nodes"]:
                dev["delay"] = {first: delay}  # fencing n1 waits: n1 shoots first
    return "# adjusted by havm lab chaos\n" + yaml.safe_dump(doc, sort_keys=False)


class LogCursor:
    """Reads the daemons' logs incrementally: fences confirmed and failed since the last read."""

    def __init__(self, lab_dir: str, nodes: Sequence[str]) -> None:
        self.paths = {n: os.path.join(lab_dir, "nodes", n, "havmd.log") for n in nodes}
        self.offsets = {n: 0 for n in nodes}

    def skip(self) -> None:
        for n, p in self.paths.items():
            self.offsets[n] = os.path.getsize(p) if os.path.exists(p) else 0

    def fences(self) -> tuple[list[tuple[float, str]], int]:
        """(confirmed fences as (time, fenced node), failed attempts) logged since the last call."""
        done: list[tuple[float, str]] = []
        failed = 0
        for n, p in self.paths.items():
            try:
                with open(p, "rb") as f:
                    f.seek(self.offsets[n])
                    data = f.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1  # only whole lines
            self.offsets[n] += end
            for line in data[:end].decode(errors="replace").splitlines():
                if m := FENCED.match(line):
                    done.append((parse_stamp(m.group(1)), m.group(3) or m.group(4)))
                elif FENCE_FAILED.match(line):
                    failed += 1
        return sorted(done), failed


def statuses(lab_: Lab) -> dict[str, dict[str, Any] | None]:
    with ThreadPoolExecutor(max_workers=len(lab_.nodes)) as pool:
        return dict(zip(lab_.nodes, pool.map(lambda n: lab_.status(n, timeout=4.0), lab_.nodes), strict=True))


def wait_recovered(lab_: Lab, since: float, bound: float, grace: float) -> tuple[float | None, list[str]]:
    """Poll until recovered (returns its time) or ``since + bound + grace`` (returns None and the gaps).

    A node found off meanwhile is powered on: a fence is a reboot (fence_ipmilan's
    default action), and the lab's power switch only cuts the power. A node that
    was fenced again after coming back shows in the fence counts (fence loops).
    """
    gaps: list[str] = ["not checked"]
    while True:
        if powered := _retried(lab_.observer, "power on", lambda: power_on_all(lab_)):
            lab_.observer.note("power-on", nodes=powered)
        gaps = invariants.recovery_gaps(statuses(lab_), lab_.observer.latest, lab_.vms)
        now = time.time()
        if not gaps:
            return now, []
        if now > since + bound + grace:
            return None, gaps
        time.sleep(POLL)


def power_on_all(lab_: Lab) -> list[str]:
    """Start the nodes that are off (and, with BMCs, have been off for IPMI_POWER_ON_DELAY)."""
    started = []
    state = lab_.state()
    now = time.monotonic()
    wait = IPMI_POWER_ON_DELAY if lab_.fencing == "ipmi" else 0.0
    for n in lab_.nodes:
        if daemons.daemon_alive(state.node(n)):
            lab_.off_since.pop(n, None)
        elif now - lab_.off_since.setdefault(n, now) >= wait:
            control.start_node(lab_.dir, n, wait=False)
            lab_.off_since.pop(n, None)
            started.append(n)
    return started


def _retried(obs: Observer, what: str, fn: Callable[[], Any], attempts: int = 3) -> Any:
    """``fn()``, tried again on a lab error: the lab's own tools (``ip -n``, iptables) run
    inside the nodes' namespaces, where a fence of that node kills them too."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except (HavmError, OSError) as e:
            obs.note("lab-error", what=what, attempt=attempt, error=f"{type(e).__name__}: {e}")
            time.sleep(0.5)
    return None


def run_iteration(lab_: Lab, plan: schedule.IterationPlan, opts: CampaignOptions,
                  cursor: LogCursor) -> IterationRecord:
    obs = lab_.observer
    obs.note("iteration", index=plan.index, faults=[f.describe() for f in plan.faults], hold=plan.hold)
    cursor.skip()
    changes_before = len(lab_.changes)
    injected: list[Injected] = []
    skipped: list[str] = []
    change: threading.Thread | None = None
    started_at = time.time()
    t0 = time.monotonic()
    try:
        for i, spec in enumerate(plan.faults):
            if i:
                time.sleep(max(0.0, plan.stagger - (time.monotonic() - t0)))
            try:
                inj = catalogue.inject(lab_, spec)
            except (HavmError, OSError) as e:
                # e.g. a lab tool run inside a node's namespace killed by a fence of that node
                obs.note("inject-error", index=plan.index, fault=spec.describe(), error=f"{type(e).__name__}: {e}")
                skipped.append(f"{spec.describe()} (not injected: {type(e).__name__})")
                continue
            injected.append(inj)
            obs.note("fault", index=plan.index, fault=inj.describe(), **inj.info)
        started_at = injected[0].at if injected else started_at
        if opts.changes_during_faults:
            # one more configuration change while the faults hold, through a node chosen by the
            # iteration's index, in the background (a frozen daemon would hold us for a timeout)
            via = lab_.nodes[plan.index % len(lab_.nodes)]
            change = threading.Thread(target=catalogue.attempt_changes, args=(lab_, [via]), daemon=True)
            change.start()
        time.sleep(max(0.0, plan.hold - (time.monotonic() - t0)))
    finally:
        for inj in reversed(injected):
            _retried(obs, f"undo {inj.describe()}", partial(catalogue.undo, lab_, inj))
        _retried(obs, "heal", lambda: control.heal(lab_.dir))
        if not opts.unsafe_fake_fencing:
            fencehook.set_override(lab_.dir, None)
        powered = _retried(obs, "power on", lambda: power_on_all(lab_)) or []
    stopped_at = time.time()
    obs.note("faults-stopped", index=plan.index, powered_on=powered)
    recovered_at, gaps = wait_recovered(lab_, stopped_at, opts.bound, grace=opts.bound)
    if change is not None:
        change.join(timeout=4 * catalogue.CLIENT_TIMEOUT)
    fences, failed = cursor.fences()
    per_node: dict[str, int] = {}
    for at, node in fences:
        per_node[node] = per_node.get(node, 0) + 1
        obs.note("fence", at_logged=round(at, 3), node=node)
    sts = statuses(lab_)
    versions = {n: ((st or {}).get("config") or {}).get("version") for n, st in sts.items()}
    obs.note("recovered" if recovered_at else "not-recovered", index=plan.index, gaps=gaps)
    return IterationRecord(
        index=plan.index, faults=tuple(i.describe() for i in injected) + tuple(skipped), kinds=tuple(f.kind for f in plan.faults),
        started_at=started_at, stopped_at=stopped_at, recovered_at=recovered_at, fences=per_node,
        fence_failures=failed, config_changes=tuple(lab_.changes[changes_before:]), gaps=tuple(gaps),
        config_versions=versions)


def final_state(lab_: Lab) -> FinalState:
    versions: dict[str, str | None] = {}
    found: dict[str, frozenset[str]] = {}
    for n in lab_.nodes:
        try:
            cur = lab_.client(n).run(GetConfig(), timeout=catalogue.CLIENT_TIMEOUT)
            versions[n] = f"{cur['admin_epoch']}.{cur['epoch']}:{str(cur['digest'])[:8]}"
            found[n] = catalogue.markers(str(cur["text"]))
        except HavmError:
            versions[n] = None
            found[n] = frozenset()
    return FinalState(versions, found)


def prepare(lab_: Lab, opts: CampaignOptions, progress: Progress) -> None:
    """Apply the campaign's configuration and wait until everything runs."""
    state = lab_.state()
    switch = state.guest_net["switch_address"] if state.guest_net else None
    cli = lab_.client(lab_.nodes[0])
    cur = cli.run(GetConfig(), timeout=30)
    text = campaign_config(str(cur["text"]), opts, switch)
    cli.run(ApplyConfig(text=text, base_epoch=[int(cur["admin_epoch"]), int(cur["epoch"])], by="chaos",
                        comment="campaign settings"), timeout=60)
    progress(f"campaign settings applied (disk locking {opts.disk_locking}"
             + (", two-node quorum with ping tiebreaker, fence delay on n1)" if opts.nodes == 2 else ")"))
    recovered, gaps = wait_recovered(lab_, time.time(), opts.vm_timeout, 0.0)
    if recovered is None:
        raise HavmError(f"the lab did not settle before the campaign: {'; '.join(gaps)}")


def run(opts: CampaignOptions, plans: Sequence[schedule.IterationPlan] | None = None,
        progress: Progress | None = None) -> dict[str, Any]:
    """Run a whole campaign; return its report (``report.build``)."""
    check_options(opts)
    say: Progress = progress or (lambda line: None)
    spec = lab_spec(opts)
    own_dir = opts.lab_dir is None
    lab_dir = opts.lab_dir or tempfile.mkdtemp(prefix="hchaos")
    kinds = [k for k in opts.kinds if not (opts.fencing == "watchdog" and k in schedule.FENCE_DEVICE_KINDS)]
    began = time.time()
    try:
        lab.up(lab_dir, spec, vm_timeout=opts.vm_timeout, guest_dir=opts.guest_dir)
    except (HavmError, OSError):
        _teardown(lab_dir, own_dir, opts.keep_lab)
        raise
    state = LabState.load(lab_dir)
    observer = Observer(lab_dir)
    deadtime = float(yaml.safe_load(open(state.config, encoding="utf-8"))["timing"]["deadtime"])
    lab_ = Lab(dir=state.dir, nodes=list(state.nodes), vms=list(state.vms), links=list(state.links),
               fencing=opts.fencing, deadtime=deadtime, observer=observer)
    if plans is None:
        plans = schedule.plan_schedule(opts.seed, opts.iterations, schedule.ScheduleOptions(
            nodes=lab_.nodes, vms=lab_.vms, kinds=kinds, overlap=opts.overlap, hold=opts.hold))
    records: list[IterationRecord] = []
    aborted = None
    try:
        observer.start()
        say(f"lab {lab_dir}: {opts.nodes} nodes, {opts.vms} VMs, fencing {opts.fencing}, seed {opts.seed}")
        prepare(lab_, opts, say)
        if opts.unsafe_fake_fencing:
            fencehook.set_override(lab_dir, "lie")
            say("UNSAFE: fencing now confirms nodes off WITHOUT powering them off (test of the observer)")
        cursor = LogCursor(lab_dir, lab_.nodes)
        for plan in plans:
            rec = run_iteration(lab_, plan, opts, cursor)
            records.append(rec)
            say(report.iteration_line(rec, len(plans), opts.bound))
        final = final_state(lab_)
    except (HavmError, OSError) as e:
        aborted = f"{type(e).__name__}: {e}"
        say(f"campaign aborted: {aborted}")
        final = FinalState({}, {})
    finally:
        observer.stop()
        if opts.unsafe_fake_fencing:
            fencehook.set_override(lab_dir, None)
    timeline = observer.timeline()
    limits = Limits(bound=opts.bound)
    violations = invariants.check(timeline, records, final, limits)
    result = report.build(opts, records, violations, final, observer, began, time.time(), lab_dir, aborted,
                          lab_.changes)
    if violations and not opts.keep_lab:
        # the daemons' own account of what they did is the first thing a violation is read
        # against; the lab (and its logs) goes away below
        result["kept_logs"] = keep_logs(lab_dir, lab_.nodes)
        say(f"violations: the nodes' logs are kept in {result['kept_logs']}")
    _teardown(lab_dir, own_dir, opts.keep_lab)
    return result


KEPT_FILES = ("havmd.log", os.path.join("state", "events.jsonl"))


def keep_logs(lab_dir: str, nodes: Sequence[str]) -> str:
    """Copy every node's havmd.log and event log out of the lab into a new directory
    (``<dir>/<node>/...``); returns its path."""
    out = tempfile.mkdtemp(prefix="hchaos-logs-")
    for n in nodes:
        for rel in KEPT_FILES:
            src = os.path.join(lab_dir, "nodes", n, rel)
            if os.path.exists(src):
                dst = os.path.join(out, n, os.path.basename(rel))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
    return out


def _teardown(lab_dir: str, own_dir: bool, keep: bool) -> None:
    if keep:
        return
    try:
        lab.down(lab_dir)
    finally:
        if own_dir:
            shutil.rmtree(lab_dir, ignore_errors=True)


def print_unsafe_warning() -> None:
    bar = "!" * 78
    print(f"{bar}\n!! UNSAFE FAKE FENCING: fence devices will report nodes off WITHOUT powering them\n"
          f"!! off. VMs WILL run twice. Test of the campaign's observer only; refused outside\n"
          f"!! the lab this campaign creates.\n{bar}", file=sys.stderr, flush=True)
