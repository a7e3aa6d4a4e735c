"""The campaign's invariants: pure functions over what the observer recorded
(the timeline) and what the campaign measured (iteration records, final state).

Safety:
- ``double-active``: no VM's guest runs on two nodes at once, ever (a double
  run in a sample confirmed by the observer's immediate second look), nor runs
  on one node while another holds a frozen (SIGSTOPped, not fenced) copy;
- ``lost-config-change``: a change acknowledged as committed (also one made
  during a partition) is in the final configuration of every node;
- ``config-diverged``: every node ends each iteration, and the campaign, with
  the same configuration version;
- ``fence-loop``: no node is fenced more than ``max_fences_per_node`` times
  in one iteration.
Liveness:
- ``not-recovered``: within ``bound`` seconds after the faults stop, every
  resource runs again (``recovery_gaps`` says what "recovered" means).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from havm.lab.chaos.observer import Event, Sample

EXCERPT_BEFORE = 10.0  # seconds of timeline kept before a violation
EXCERPT_AFTER = 5.0
EXCERPT_MAX = 60  # entries


@dataclass(frozen=True)
class ConfigChange:
    """One configuration change the campaign attempted through ``node``."""

    id: str  # the marker written into the configuration text
    node: str
    at: float
    outcome: str  # committed (acknowledged) | refused | unreachable | unknown (may or may not be in)
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "node": self.node, "at": round(self.at, 3), "outcome": self.outcome,
                "detail": self.detail}


@dataclass(frozen=True)
class IterationRecord:
    index: int
    faults: tuple[str, ...]  # descriptions ("kill n2", "partition groups=[...]")
    kinds: tuple[str, ...]
    started_at: float  # first fault injected
    stopped_at: float  # every fault undone
    recovered_at: float | None  # None: not within the bound
    fences: Mapping[str, int] = field(default_factory=dict)  # node -> confirmed fences in the iteration
    fence_failures: int = 0
    config_changes: tuple[ConfigChange, ...] = ()
    gaps: tuple[str, ...] = ()  # what was still missing at the bound (when not recovered)
    config_versions: Mapping[str, str | None] = field(default_factory=dict)  # node -> version at the end

    @property
    def recovery(self) -> float | None:
        return None if self.recovered_at is None else round(self.recovered_at - self.stopped_at, 3)


@dataclass(frozen=True)
class FinalState:
    config_versions: Mapping[str, str | None]  # node -> config version (None: no answer)
    markers: Mapping[str, frozenset[str]]  # node -> change ids found in its configuration text


@dataclass(frozen=True)
class Limits:
    bound: float  # seconds after the faults stop by which everything must run again
    max_fences_per_node: int = 2  # per iteration


@dataclass(frozen=True)
class Violation:
    kind: str
    message: str
    at: float
    iteration: int | None = None
    excerpt: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "at": round(self.at, 3),
                "iteration": self.iteration, "timeline": list(self.excerpt)}


Entry = Sample | Event


def excerpt(timeline: Sequence[Entry], at: float, before: float = EXCERPT_BEFORE,
            after: float = EXCERPT_AFTER) -> tuple[dict[str, Any], ...]:
    """The timeline around ``at`` (at most EXCERPT_MAX entries, those nearest ``at``)."""
    near = [e for e in timeline if at - before <= e.t <= at + after]
    near.sort(key=lambda e: abs(e.t - at))
    kept = sorted(near[:EXCERPT_MAX], key=lambda e: e.t)
    return tuple(e.to_json() for e in kept)


def iteration_at(iterations: Sequence[IterationRecord], t: float) -> int | None:
    """The iteration under way at ``t`` (from its first fault to its recovery check)."""
    for it in iterations:
        end = it.recovered_at if it.recovered_at is not None else it.stopped_at + 3600
        if it.started_at - 1.0 <= t <= end + 1.0:
            return it.index
    return None


def double_active(timeline: Sequence[Entry], iterations: Sequence[IterationRecord] = ()) -> list[Violation]:
    """VMs seen running on two nodes (or running on one while another node holds a
    frozen copy) in a sample and again in the next one.

    One violation per episode and VM (from the first confirmed sample until a
    sample shows it held by one node or none). A double in the very last sample
    counts: nothing contradicts it.
    """
    samples = [e for e in timeline if isinstance(e, Sample)]
    out = []
    ongoing: set[str] = set()
    for i, s in enumerate(samples):
        nxt = samples[i + 1] if i + 1 < len(samples) else None
        confirmed = {vm for vm in s.held_twice() if nxt is None or vm in nxt.held_twice()}
        for vm in sorted(confirmed - ongoing):
            copies = [c for c in s.copies if c.vm == vm and c.status in ("running", "frozen")]
            nodes = sorted({c.node for c in copies})
            frozen = [c.node for c in copies if c.status == "frozen"]
            out.append(Violation(
                "double-active", f"{vm} runs on {len(nodes)} nodes at once: {', '.join(nodes)} "
                f"(pids {', '.join(str(c.pid) for c in copies)})"
                + (f"; the copy on {', '.join(frozen)} is frozen, not fenced" if frozen else ""),
                s.t, iteration_at(iterations, s.t), excerpt(timeline, s.t)))
        ongoing = {vm for vm in ongoing | confirmed if vm in s.held_twice()}
    return out


def not_recovered(iterations: Sequence[IterationRecord], timeline: Sequence[Entry],
                  limits: Limits) -> list[Violation]:
    out = []
    for it in iterations:
        rec = it.recovery
        if rec is None or rec > limits.bound:
            what = "; ".join(it.gaps) or "unknown"
            late = "never" if rec is None else f"only after {rec:g}s"
            out.append(Violation("not-recovered", f"iteration {it.index} ({', '.join(it.faults)}): recovered "
                                 f"{late}, bound {limits.bound:g}s; missing: {what}", it.stopped_at + limits.bound,
                                 it.index, excerpt(timeline, it.stopped_at + limits.bound, limits.bound + 5.0, 1.0)))
    return out


def _diverged(versions: Mapping[str, str | None]) -> bool:
    return len(set(versions.values())) > 1 or None in versions.values()


def config_diverged(iterations: Sequence[IterationRecord], final: FinalState,
                    timeline: Sequence[Entry]) -> list[Violation]:
    out = []
    for it in iterations:
        # right after recovery a node may be silent again (fenced late): compare those that answer
        answered = {n: v for n, v in it.config_versions.items() if v is not None}
        if it.recovered_at is not None and len(set(answered.values())) > 1:
            out.append(Violation("config-diverged", f"after iteration {it.index} the nodes hold different "
                                 f"configurations: {dict(it.config_versions)}", it.recovered_at, it.index,
                                 excerpt(timeline, it.recovered_at)))
    if final.config_versions and _diverged(final.config_versions):
        end = timeline[-1].t if timeline else 0.0
        out.append(Violation("config-diverged", "at the end the nodes hold different configurations: "
                             f"{dict(final.config_versions)}", end))
    return out


def fence_loops(iterations: Sequence[IterationRecord], timeline: Sequence[Entry], limits: Limits) -> list[Violation]:
    out = []
    for it in iterations:
        for node, count in sorted(it.fences.items()):
            if count > limits.max_fences_per_node:
                out.append(Violation("fence-loop", f"{node} was fenced {count} times in iteration {it.index} "
                                     f"({', '.join(it.faults)}); at most {limits.max_fences_per_node} expected",
                                     it.stopped_at, it.index, excerpt(timeline, it.stopped_at)))
    return out


def lost_changes(iterations: Sequence[IterationRecord], final: FinalState) -> list[Violation]:
    out = []
    for it in iterations:
        for ch in it.config_changes:
            if ch.outcome != "committed":
                continue
            missing = sorted(n for n, ids in final.markers.items() if ch.id not in ids)
            if missing:
                out.append(Violation("lost-config-change", f"change {ch.id}, acknowledged as committed by "
                                     f"{ch.node} in iteration {it.index}, is missing on {', '.join(missing)}",
                                     ch.at, it.index, (ch.to_json(),)))
    return out


def check(timeline: Sequence[Entry], iterations: Sequence[IterationRecord], final: FinalState,
          limits: Limits) -> list[Violation]:
    """Every violation of the campaign, oldest first."""
    found = (double_active(timeline, iterations) + not_recovered(iterations, timeline, limits)
             + config_diverged(iterations, final, timeline) + fence_loops(iterations, timeline, limits)
             + lost_changes(iterations, final))
    return sorted(found, key=lambda v: v.at)


def recovery_gaps(statuses: Mapping[str, Mapping[str, Any] | None], sample: Sample | None,
                  vms: Sequence[str]) -> list[str]:
    """What still stands between the cluster and "recovered" (empty: recovered).

    Recovered means: every node's daemon answers; all are members of one quorate
    view; all hold the same configuration version; havm reports every configured
    resource started on exactly one node with nothing in flight; and the
    observer's latest sample shows exactly one QEMU per VM, running, on the node
    havm names.
    """
    gaps = []
    nodes = sorted(statuses)
    silent = [n for n, st in statuses.items() if st is None]
    if silent:
        return [f"no answer from {', '.join(silent)}"]
    answered = {n: st for n, st in statuses.items() if st is not None}
    for n, st in sorted(answered.items()):
        if sorted(st.get("members") or []) != nodes:
            gaps.append(f"{n} sees members {sorted(st.get('members') or [])}")
        elif not (st.get("quorum") or {}).get("quorate"):
            gaps.append(f"{n} has no quorum")
    versions = {n: (st.get("config") or {}).get("version") for n, st in answered.items()}
    if len(set(versions.values())) > 1:
        gaps.append(f"config versions differ: {versions}")
    ctl = next((st for st in answered.values() if st.get("node") == st.get("controller")), None)
    if ctl is None:
        gaps.append("no controller")
        return gaps
    placed: dict[str, str] = {}
    for r in ctl.get("resources") or []:
        if r.get("state") != "started" or len(r.get("nodes") or []) != 1:
            gaps.append(f"{r.get('id')} is {r.get('state')} on {r.get('nodes') or 'no node'}")
        elif r.get("in_flight"):
            gaps.append(f"{r.get('id')} has actions in flight: {r.get('in_flight')}")
        else:
            placed[str(r.get("id"))] = r["nodes"][0]
    for vm in vms:
        copies = [c for c in sample.copies if c.vm == vm] if sample is not None else []
        if len(copies) != 1 or copies[0].status != "running":
            gaps.append(f"observer sees {vm} as {[(c.node, c.status) for c in copies]}")
        elif vm in placed and copies[0].node != placed[vm]:
            gaps.append(f"observer sees {vm} on {copies[0].node}, havm says {placed[vm]}")
    return gaps
