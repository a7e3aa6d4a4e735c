"""A Pacemaker CIB as scheduler input: ``havm simulate cluster.xml``.

The configuration section goes through the CIB importer (so the planner sees
exactly what ``havm import cib`` would write), the status section through
``load_state``, and the two are joined into the scheduler's ``ClusterSpec`` and
``State``. State records for resources the import could not carry over (or
that the configuration no longer has: orphans) are left out, since the
planner knows nothing of them; pass ``report`` to learn what was dropped.
"""

from __future__ import annotations

from typing import Any

from havm.config.load import parse_config_text
from havm.importers.cib import import_cib
from havm.importers.cib_state import load_state
from havm.importers.hacf import read_text
from havm.importers.output import havm_id
from havm.importers.report import ImportReport
from havm.scheduler.model import ClusterSpec, State
from havm.scheduler.state_file import state_from_data


def load_cib_simulation(path: str, report: ImportReport | None = None) -> tuple[ClusterSpec, State]:
    text = read_text(path)
    result = import_cib([(text, path)], output_name=path)
    if report is not None:
        report.items.extend(result.report.items)
    spec = ClusterSpec.from_config(parse_config_text(result.text, path).config)
    return spec, State() if "<status" not in text else state_from_data(state_data(load_state(text), spec))


def state_data(raw: dict[str, Any], spec: ClusterSpec) -> dict[str, Any]:
    """``load_state``'s dict in the scheduler's state-file format, restricted to what ``spec`` knows."""
    node_names = set(spec.node_names())
    nodes: dict[str, Any] = {}
    for name, n in raw["nodes"].items():
        if name not in node_names:
            continue
        attrs = {k: v for k, v in n["attributes"].items() if havm_id(k) == k}
        nodes[name] = {"status": n["status"], "standby": n["standby"], "maintenance": n["maintenance"],
                       "attributes": attrs}
    resources: dict[str, Any] = {}
    times: list[float] = []
    for rid, per_node in raw["resources"].items():
        if rid.split(":")[0] not in spec.primitives:
            continue
        out = {}
        for node, r in per_node.items():
            if node not in node_names:
                continue
            out[node] = {"role": r["role"] or "stopped", "failcount": r["failcount"],
                         "last_failure": r["last_failure"], "failed": r["failed"], "blocked": r["blocked"],
                         "promotion_score": r["promotion_score"]}
            if r["last_failure"] is not None:
                times.append(r["last_failure"])
            if r["last_op"] and r["last_op"]["last_rc_change"] is not None:
                times.append(r["last_op"]["last_rc_change"])
        if out:
            resources[rid] = out
    # "now": the CIB's execution-date, else the latest time the status mentions (a
    # failure is then as old as the history says, never in the future).
    now = raw["now"] if raw["now"] is not None else max(times, default=0.0)
    return {"now": now, "quorum": raw["have_quorum"], "nodes": nodes, "resources": resources}
