"""Which faults each iteration injects: a pure function of the seed and the options.

An iteration injects one fault, or (with probability ``overlap``) two at once
whose effects overlap (e.g. a partition while the fence device fails). Each
fault names its target at schedule time: a node (``n2``), or a role resolved
only when it is injected (``vm-host:vm1``: wherever vm1 runs then;
``controller``: the current controller). The same seed and options give the
same schedule, so a failing campaign can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

# Every fault kind, in catalogue order. Append only: schedules are replayed from seeds.
KINDS = (
    "kill",             # power cut of a node
    "freeze",           # SIGSTOP every process of a node (a hung host), then SIGCONT
    "freeze-daemon",    # SIGSTOP havmd only: its VMs keep running
    "partition",        # symmetric: groups that do not hear each other (iptables)
    "block",            # asymmetric: one direction between two nodes is cut
    "loss",             # packet loss (and some delay) on what a node sends (tc netem)
    "delay",            # packet delay on what a node sends (tc netem)
    "link-down",        # a node's cable pulled
    "vm-kill",          # SIGKILL of a QEMU process behind havm's back
    "fence-fail",       # the fence device fails while a node must be fenced
    "fence-slow",       # the fence device is slow while a node must be fenced
    "controller-kill",  # the controller's havmd dies (its VMs keep running)
    "restart-all",      # every node power cut, then all started again
    "config-partition", # a config change through each side of a partition
    "migrate-kill",     # a live migration asked, then the controller's node power cut mid-way
    "migrate-freeze",   # a live migration asked, then the controller's node frozen mid-way
)
# Kinds added after campaigns were recorded: drawn only when asked for (--faults), so that
# every earlier seed still replays the same schedule by default.
MIGRATE_KINDS = ("migrate-kill", "migrate-freeze")
OPT_IN = MIGRATE_KINDS
DEFAULT_KINDS = tuple(k for k in KINDS if k not in OPT_IN)
# The longest a migrate-kill (-freeze) waits between the migration's request and the cut: a
# live migration of the lab's guest runs its phases within ~0.4 s of the request (docs/chaos.md)
MIGRATE_KILL_MAX_DELAY = 0.5
# Faults that need a fence device the campaign can make fail or slow.
FENCE_DEVICE_KINDS = ("fence-fail", "fence-slow")
# Faults that act on one node (their target may be a role resolved at injection).
NODE_KINDS = ("kill", "freeze", "freeze-daemon", "loss", "delay", "link-down", "fence-fail", "fence-slow")
# Kinds that may be combined with another one in one iteration (not the whole-cluster ones).
OVERLAPPABLE = ("kill", "freeze", "freeze-daemon", "partition", "block", "loss", "delay", "link-down",
                "vm-kill")


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    target: str = ""  # node name, "vm-host:VM", "controller", "all", or "" (none)
    params: dict[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return " ".join(p for p in (self.kind, self.target, extra) if p)


@dataclass(frozen=True)
class IterationPlan:
    index: int
    faults: tuple[FaultSpec, ...]
    hold: float  # seconds the faults stay in place before they are undone
    stagger: float = 0.0  # seconds between the first and the second fault


@dataclass(frozen=True)
class ScheduleOptions:
    nodes: Sequence[str]
    vms: Sequence[str] = ()
    kinds: Sequence[str] = DEFAULT_KINDS
    overlap: float = 0.25  # probability that an iteration injects two faults
    hold: tuple[float, float] = (2.0, 5.0)  # seconds, uniform


def _node_target(rng: random.Random, opts: ScheduleOptions) -> str:
    # half the time hit a node that runs a VM: that is where fencing decides safety
    if opts.vms and rng.random() < 0.5:
        return f"vm-host:{rng.choice(list(opts.vms))}"
    return rng.choice(list(opts.nodes))


def _groups(rng: random.Random, nodes: Sequence[str]) -> list[list[str]]:
    """A random split of ``nodes`` into two non-empty groups."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    cut = rng.randint(1, len(shuffled) - 1)
    return [sorted(shuffled[:cut]), sorted(shuffled[cut:])]


def fault_spec(kind: str, rng: random.Random, opts: ScheduleOptions) -> FaultSpec:
    """One fault of ``kind`` with its target and parameters drawn from ``rng``."""
    if kind in ("partition", "config-partition"):
        return FaultSpec(kind, params={"groups": _groups(rng, opts.nodes)})
    if kind == "block":
        src, dst = rng.sample(list(opts.nodes), 2)
        return FaultSpec(kind, params={"src": src, "dst": dst})
    if kind == "loss":
        return FaultSpec(kind, _node_target(rng, opts),
                         {"percent": rng.choice((20, 40, 60, 100)), "delay_ms": rng.choice((0, 50))})
    if kind == "delay":
        return FaultSpec(kind, _node_target(rng, opts), {"delay_ms": rng.choice((100, 300, 800, 1500))})
    if kind == "vm-kill":
        return FaultSpec(kind, f"vm-host:{rng.choice(list(opts.vms))}" if opts.vms else "")
    if kind == "fence-fail":  # refuse: the device answers "failed"; hang: it does not answer at all
        return FaultSpec(kind, _node_target(rng, opts), {"how": rng.choice(("refuse", "hang"))})
    if kind == "fence-slow":
        return FaultSpec(kind, _node_target(rng, opts), {"delay": rng.choice((2.0, 4.0))})
    if kind == "controller-kill":
        return FaultSpec(kind, "controller")
    if kind == "restart-all":
        return FaultSpec(kind, "all")
    if kind in MIGRATE_KINDS:
        return FaultSpec(kind, "controller", {"vm": rng.choice(list(opts.vms)),
                                               "delay": round(rng.uniform(0.0, MIGRATE_KILL_MAX_DELAY), 2)})
    if kind in NODE_KINDS:
        return FaultSpec(kind, _node_target(rng, opts))
    raise ValueError(f"unknown fault kind {kind!r}; kinds are {', '.join(KINDS)}")


def usable_kinds(kinds: Sequence[str], nodes: int, vms: int) -> list[str]:
    """The kinds that make sense on this lab (no partition of one node, no vm-kill without VMs)."""
    out = []
    for k in kinds:
        if k in ("partition", "config-partition", "block") and nodes < 2:
            continue
        if (k == "vm-kill" or k in MIGRATE_KINDS) and vms == 0:
            continue
        if k in MIGRATE_KINDS and nodes < 2:
            continue
        out.append(k)
    return out


def plan_schedule(seed: int, iterations: int, opts: ScheduleOptions) -> list[IterationPlan]:
    """The campaign's iterations (pure: same seed and options, same schedule)."""
    kinds = usable_kinds(opts.kinds, len(opts.nodes), len(opts.vms))
    if not kinds:
        raise ValueError("no fault kind applies to this lab")
    rng = random.Random(seed)
    plans = []
    for i in range(iterations):
        first = fault_spec(rng.choice(kinds), rng, opts)
        faults = [first]
        pool = [k for k in kinds if k in OVERLAPPABLE]
        if first.kind in OVERLAPPABLE and pool and rng.random() < opts.overlap:
            faults.append(fault_spec(rng.choice(pool), rng, opts))
        hold = round(rng.uniform(*opts.hold), 2)
        stagger = round(rng.uniform(0.0, hold / 2), 2) if len(faults) > 1 else 0.0
        plans.append(IterationPlan(i + 1, tuple(faults), hold, stagger))
    return plans
