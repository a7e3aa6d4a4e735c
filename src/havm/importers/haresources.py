"""Heartbeat v1 ``haresources``: each line a group on its preferred node.

``NODE RES1 RES2::ARG::ARG ...`` means: run RES1, RES2, ... in that order on
one node, preferably NODE. Each line becomes a havm group (``group-1``,
``group-2``... in file order) with a location constraint (score 100) for
NODE; auto_failback is expressed by the importer through stickiness. A
``drbddisk::r0`` becomes a promotable clone of ``ocf:linbit:drbd`` that the
group is colocated with (promoted) and ordered after (promote, then start),
which is how Pacemaker runs DRBD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from havm.importers.hacf import logical_lines
from havm.importers.output import havm_id
from havm.importers.report import ImportFailed, ImportReport
from havm.importers.scripts import map_script

PREFERRED_SCORE = 100


@dataclass
class Converted:
    resources: list[dict[str, Any]] = field(default_factory=list)
    constraints: list[dict[str, Any]] = field(default_factory=list)


def convert_haresources(text: str, file: str, nodes: dict[str, str], report: ImportReport,
                        xen_config: Callable[[str], str], used: set[str] | None = None) -> Converted:
    """``nodes``: lower-cased Heartbeat node name -> havm node name (Heartbeat compared them so)."""
    out = Converted()
    used = set() if used is None else used

    def unique(base: str) -> str:
        base = havm_id(base)
        name, n = base, 2
        while name in used:
            suffix = f"-{n}"
            name, n = base[:63 - len(suffix)] + suffix, n + 1
        used.add(name)
        return name

    for number, (line, content) in enumerate(logical_lines(text), 1):
        words = content.split()
        node_raw = words[0]
        node = nodes.get(node_raw.lower())
        if node is None:
            raise ImportFailed(file, line, f"preferred node {node_raw!r} is not a 'node' of ha.cf; expected one "
                                           f"of {', '.join(sorted(set(nodes.values())))}")
        if len(words) < 2:
            raise ImportFailed(file, line, f"expected 'NODE RESOURCE [RESOURCE...]', got only the node {node_raw!r}")
        members: list[dict[str, Any]] = []
        drbd_clones: list[tuple[str, int]] = []  # (clone id, members before it)
        for token in words[1:]:
            name, *args = token.split("::")
            what = f"haresources line {number}: {token}"
            if not name or any(a == "" for a in args):
                raise ImportFailed(file, line, f"{token!r}: expected SCRIPT or SCRIPT::ARG[::ARG...] "
                                               "with no empty part")
            mapped = map_script(name, args, xen_config)
            if mapped.kind == "none":
                report.drop(file, line, what, mapped.why)
                continue
            for note in mapped.notes:
                report.info(file, line, what, note)
            for warning in mapped.warnings:
                report.warn(file, line, what, warning)
            rid = unique(mapped.suggested_id or name)
            primitive: dict[str, Any] = {"id": rid, "type": mapped.type}
            if mapped.params:
                primitive["params"] = dict(mapped.params)
            if mapped.kind == "drbd":
                clone_id = unique(f"{rid}-clone")
                out.resources.append({"clone": clone_id, "resource": primitive, "promotable": True,
                                      "clone_max": 2})
                drbd_clones.append((clone_id, len(members)))
                report.info(file, line, what, f"drbddisk becomes {clone_id!r}, a promotable clone of "
                                              "ocf:linbit:drbd (one primary, as drbddisk ran it); the group "
                                              "is colocated with its primary and started after the promotion")
                continue
            members.append(primitive)
        placed: str | None = None
        if members:
            group_id = unique(f"group-{number}")
            out.resources.append({"group": group_id, "resources": members})
            out.constraints.append({"location": group_id, "node": node, "score": PREFERRED_SCORE})
            placed = group_id
        for clone_id, before in drbd_clones:
            if placed is None:
                out.constraints.append({"location": clone_id, "node": node, "score": PREFERRED_SCORE,
                                        "role": "promoted"})
                continue
            out.constraints.append({"colocation": placed, "with": clone_id, "score": "INFINITY",
                                    "with_role": "promoted"})
            out.constraints.append({"order": clone_id, "then": placed, "first_action": "promote",
                                    "then_action": "start"})
            if before:
                report.info(file, line, f"haresources line {number}",
                            f"{before} resource(s) listed before drbddisk now start after the DRBD promotion "
                            "(the whole group is ordered after it)")
        if not members and not drbd_clones:
            report.drop(file, line, f"haresources line {number}", "no resource of this line could be carried over")
    return out
