"""The campaign's report: figures, the JSON document and the summary text.

JSON (``havm lab chaos --json``; keys are only ever added): ``seed``,
``options``, ``iterations`` (run), ``planned``, ``violations`` (list, empty
when none; each with ``kind``, ``message``, ``at``, ``iteration`` and the
``timeline`` around it), ``recovery`` (seconds from the faults' end to
everything running again: ``median``, ``p90``, ``max``,
``by_kind``, ``since_first_fault``: the same counted from the first fault),
``fences`` (``total``, ``by_node``, ``failed_attempts``), ``config_changes``,
``observer`` (samples taken and stored), ``per_iteration`` and ``duration_s``;
with violations and without ``--keep-lab`` also ``kept_logs``: a directory holding
every node's ``havmd.log`` and ``events.jsonl`` (the lab itself is removed).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from havm.lab.chaos.invariants import ConfigChange, FinalState, IterationRecord, Violation
from havm.lab.chaos.observer import Event, Sample

if TYPE_CHECKING:
    from havm.lab.chaos.campaign import CampaignOptions
    from havm.lab.chaos.observer import Observer


def figures(values: Sequence[float]) -> dict[str, Any]:
    """count, median, p90, max (seconds, rounded) of ``values``; None figures when empty."""
    if not values:
        return {"count": 0, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"count": len(ordered), "median": round(statistics.median(ordered), 3), "p90": round(p90, 3),
            "max": round(ordered[-1], 3)}


def recovery_figures(records: Sequence[IterationRecord]) -> dict[str, Any]:
    times = [r.recovery for r in records if r.recovery is not None]
    by_kind: dict[str, list[float]] = {}
    for r in records:
        if r.recovery is not None:
            for kind in sorted(set(r.kinds)):
                by_kind.setdefault(kind, []).append(r.recovery)
    since_fault = [round(r.recovered_at - r.started_at, 3) for r in records if r.recovered_at is not None]
    return {**figures(times), "not_recovered": sum(1 for r in records if r.recovery is None),
            "by_kind": {k: figures(v) for k, v in sorted(by_kind.items())},
            # the same, counted from the first fault instead of the faults' end (hold included)
            "since_first_fault": figures(since_fault)}


def build(opts: CampaignOptions, records: Sequence[IterationRecord], violations: Sequence[Violation],
          final: FinalState, observer: Observer, began: float, ended: float, lab_dir: str,
          aborted: str | None, changes: Sequence[ConfigChange]) -> dict[str, Any]:
    by_node: dict[str, int] = {}
    for r in records:
        for node, n in r.fences.items():
            by_node[node] = by_node.get(node, 0) + n
    outcomes: dict[str, int] = {}
    for c in changes:
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
    kinds: dict[str, int] = {}
    for v in violations:
        kinds[v.kind] = kinds.get(v.kind, 0) + 1
    return {
        "seed": opts.seed,
        "options": opts.to_json(),
        "iterations": len(records),
        "planned": opts.iterations,
        "aborted": aborted,
        "violations": [v.to_json() for v in violations],
        "violation_counts": kinds,
        "recovery": {"bound_s": opts.bound, **recovery_figures(records)},
        "fences": {"total": sum(by_node.values()), "by_node": by_node,
                   "failed_attempts": sum(r.fence_failures for r in records)},
        "config_changes": {"attempted": len(changes), **outcomes,
                           # present: in the final configuration of every node (committed ones must be)
                           "present_at_end": sum(1 for c in changes if _everywhere(final, c.id)),
                           "changes": [{**c.to_json(), "present_at_end": _everywhere(final, c.id)}
                                       for c in changes]},
        "final_config_versions": dict(final.config_versions),
        "observer": {"interval_s": observer.interval, "samples": observer.samples_taken,
                     "stored": sum(1 for e in observer.timeline() if isinstance(e, Sample)),
                     "errors": observer.errors,
                     "first_errors": [e.detail.get("error") for e in observer.timeline()
                                      if isinstance(e, Event) and e.type == "observer-error"][:5],
                     "first_retries": [e.detail.get("error") for e in observer.timeline()
                                       if isinstance(e, Event) and e.type == "observer-retry"][:5]},
        "per_iteration": [{"index": r.index, "faults": list(r.faults), "recovery_s": r.recovery,
                           "fences": dict(r.fences), "fence_failures": r.fence_failures,
                           # nodes that no longer answered just after the recovery (e.g. fenced late)
                           "silent_after_recovery": sorted(n for n, v in r.config_versions.items() if v is None),
                           **({"gaps": list(r.gaps)} if r.recovery is None else {})} for r in records],
        "lab_dir": lab_dir,
        "duration_s": round(ended - began, 1),
    }


def _everywhere(final: FinalState, change_id: str) -> bool:
    return bool(final.markers) and all(change_id in ids for ids in final.markers.values())


def iteration_line(rec: IterationRecord, total: int, bound: float) -> str:
    rec_s = rec.recovery
    state = (f"recovered in {rec_s:5.1f}s" if rec_s is not None and rec_s <= bound else
             f"LATE {rec_s:.1f}s" if rec_s is not None else "NOT RECOVERED: " + "; ".join(rec.gaps)[:200])
    fences = " fences " + ",".join(f"{n}:{c}" for n, c in sorted(rec.fences.items())) if rec.fences else ""
    failed = f" ({rec.fence_failures} failed attempts)" if rec.fence_failures else ""
    changes = " changes " + ",".join(f"{c.node}:{c.outcome}" for c in rec.config_changes) if rec.config_changes else ""
    return f"{rec.index:4d}/{total}  {' + '.join(rec.faults):<58} {state}{fences}{failed}{changes}"


def summary(rep: dict[str, Any]) -> str:
    r = rep["recovery"]
    o = rep["options"]
    lines = [f"havm lab chaos: {rep['iterations']}/{rep['planned']} iterations on {o['nodes']} nodes, "
             f"{o['vms']} VMs, fencing {o['fencing']}, seed {rep['seed']}, {rep['duration_s']:g}s"
             + (" (UNSAFE FAKE FENCING)" if o["unsafe_fake_fencing"] else "")]
    if rep["aborted"]:
        lines.append(f"  ABORTED: {rep['aborted']}")
    lines.append(f"  recovery (faults end -> all running): median {r['median']}s, p90 {r['p90']}s, "
                 f"max {r['max']}s, bound {r['bound_s']:g}s, not recovered {r['not_recovered']}")
    sf = r["since_first_fault"]
    lines.append(f"  counted from the first fault (hold included): median {sf['median']}s, max {sf['max']}s")
    for kind, f in r["by_kind"].items():
        lines.append(f"    {kind:<17} n={f['count']:<4} median {f['median']}s  max {f['max']}s")
    fe = rep["fences"]
    lines.append(f"  fences: {fe['total']} confirmed ({', '.join(f'{n}:{c}' for n, c in sorted(fe['by_node'].items())) or '-'}), "
                 f"{fe['failed_attempts']} failed attempts")
    cc = rep["config_changes"]
    lines.append(f"  config changes: {cc['attempted']} attempted, {cc.get('committed', 0)} committed, "
                 f"{cc.get('refused', 0)} refused, {cc.get('unreachable', 0)} unreachable, "
                 f"{cc.get('unknown', 0)} unknown; {cc['present_at_end']} present on every node at the end")
    ob = rep["observer"]
    lines.append(f"  observer: {ob['samples']} samples every {ob['interval_s']}s ({ob['stored']} changes kept, "
                 f"{ob['errors']} errors)")
    if rep["violations"]:
        lines.append(f"  VIOLATIONS: {len(rep['violations'])} {rep['violation_counts']}")
        for v in rep["violations"][:10]:
            lines.append(f"    [{v['kind']}] iteration {v['iteration']}: {v['message']}")
        if rep.get("kept_logs"):
            lines.append(f"  the nodes' logs: {rep['kept_logs']}")
    else:
        lines.append("  violations: none (no double-active VM, no lost change, configs identical, "
                     "no fence loop, all recovered within the bound)")
    return "\n".join(lines)
