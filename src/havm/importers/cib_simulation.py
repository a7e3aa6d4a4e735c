"""A Pacemaker CIB as scheduler input: ``havm simulate cluster.xml``.

The configuration section goes through the CIB importer (so the planner sees
exactly what ``havm import cib`` would write), the status section through
``load_state``, and the two are joined into the scheduler's ``ClusterSpec`` and
``State``. State records for resources the import could not carry over (or
that the configuration no longer has: orphans) are left out, since the
planner knows nothing of them; pass ``report`` to learn what was dropped.
"""

from __future__ import annotations

from havm.importers.pcmk_values import havm_id
from havm.scheduler.model import ClusterSpec, NodeState, ResourceState, State, frozen_map

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from havm.importers.report import ImportReport


def load_cib_simulation(path: str, report: ImportReport | None = None) -> tuple[ClusterSpec, State]:
    # imported here: the lean reader (cib_spec) uses scheduler_state without the importer
    from havm.importers.cib import import_parsed
    from havm.importers.cib_state import load_state
    from havm.importers.cibxml import CibInput
    from havm.importers.hacf import read_text

    text = read_text(path)
    cib = CibInput()
    cib.add_text(text, path)  # parsed once, for the configuration and the status
    result = import_parsed(cib, [path], output_name=path, render=False)
    if report is not None:
        report.items.extend(result.report.items)
    spec = ClusterSpec.from_config(result.config)
    if not cib.iter("status"):
        return spec, State()
    return spec, scheduler_state(load_state(cib), spec)


def scheduler_state(raw: dict[str, Any], spec: ClusterSpec) -> State:
    """``load_state``'s dict as the scheduler's ``State``, restricted to what ``spec`` knows.

    Built directly from the scheduler's frozen dataclasses: the values come from
    our own reader, already typed, and a large CIB holds tens of thousands of them.
    """
    node_names = set(spec.node_names())
    nodes = {}
    for name, n in raw["nodes"].items():
        if name in node_names:
            attrs = {k: v for k, v in n["attributes"].items() if havm_id(k) == k}
            nodes[name] = NodeState(n["status"], n["standby"], n["maintenance"], frozen_map(attrs))
    resources = {}
    times: list[float] = []
    for rid, per_node in raw["resources"].items():
        if rid.split(":")[0] not in spec.primitives:
            continue
        out = {}
        for node, r in per_node.items():
            if node not in node_names:
                continue
            out[node] = ResourceState(r["role"], r["failcount"], r["last_failure"], r["failed"], r["blocked"],
                                      r["promotion_score"])
            if r["last_failure"] is not None:
                times.append(r["last_failure"])
            if r["last_op"] and r["last_op"]["last_rc_change"] is not None:
                times.append(r["last_op"]["last_rc_change"])
        if out:
            resources[rid] = frozen_map(out)
    # "now": the CIB's execution-date, else the latest time the status mentions (a
    # failure is then as old as the history says, never in the future).
    now = raw["now"] if raw["now"] is not None else max(times, default=0.0)
    return State(now=now, quorum=raw["have_quorum"], nodes=frozen_map(nodes), resources=frozen_map(resources))
