"""The CIB's ``<fencing-topology>`` as havm's per-node ``fencing.levels``.

Pacemaker's fencer (``daemons/fenced``) keeps one topology entry per target: a
node name (``target``), a regular expression searched in node names
(``target-pattern``, POSIX extended, unanchored), or a node attribute
(``target-attribute`` = ``target-value``, looked up in the node's
``instance_attributes`` under ``<nodes>``). An entry has levels 1 to 9, and
``<fencing-level>`` elements with the same target and index add their devices
(``devices="a,b"``) to the same level. To fence node N the fencer takes the
entry named N, else a pattern or attribute entry matching N (the first its hash
table yields: no defined order when several match). Levels are tried in index
order and a level succeeds when every one of its devices does: the semantics of
havm's levels. havm's levels are per node, so each entry is expanded to the
imported nodes it covers; a node added later is not covered (reported).

A level that cannot be carried over whole (a device that was not imported, the
``watchdog`` pseudo-device, a device that cannot fence the node) is dropped for
that node with the reason: dropping only the device would turn "all of these"
into "some of these". Regular expressions are Python's, which agree with POSIX
extended ones on the usual patterns (``node[0-9]+``, ``^rack1-``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from havm.importers.cib_resources import Ctx
from havm.importers.cibxml import describe
from havm.importers.output import havm_id

#: Pacemaker's ST_LEVEL_MAX is 10: indexes 1..9
MAX_INDEX = 9
#: the device name Pacemaker gives watchdog fencing (STONITH_WATCHDOG_ID)
WATCHDOG_DEVICE = "watchdog"


@dataclass
class _Entry:
    """One topology target with its levels (index -> device ids, in the CIB's spelling)."""

    kind: str  # "target", "pattern" or "attribute"
    what: str  # how the report names the target
    first: ET.Element
    value: str = ""  # target name, pattern, or attribute value
    attribute: str = ""
    regex: re.Pattern[str] | None = None
    levels: dict[int, list[str]] = field(default_factory=dict)
    elements: dict[int, ET.Element] = field(default_factory=dict)


def convert_topology(ctx: Ctx, topologies: list[ET.Element]) -> dict[str, list[list[str]]]:
    """``fencing.levels`` for the imported nodes from every ``<fencing-topology>`` (reported)."""
    entries: dict[tuple[str, str, str], _Entry] = {}
    for topology in topologies:
        for el in topology:
            if el.tag == "fencing-level":
                _add_level(ctx, el, entries)
            else:
                ctx.drop(el, "not a <fencing-level>: Pacemaker's topology holds only those")
    if not entries:
        return {}
    nodes = _cib_nodes(ctx)
    covered: dict[int, list[str]] = {}  # id(entry) -> imported nodes that use it
    out: dict[str, list[list[str]]] = {}
    for raw, (name, attrs) in nodes.items():
        entry = _entry_for(ctx, raw, name, attrs, list(entries.values()))
        if entry is None:
            continue
        covered.setdefault(id(entry), []).append(name)
        levels = _levels_for(ctx, entry, name)
        if levels:
            out[name] = levels
        else:
            fallback = (f"havm tries every device that can fence {name!r}, each as a level, in the order listed "
                        "(Pacemaker would use only the topology's)" if ctx.devices else "no fence device was imported")
            ctx.drop(entry.first, f"{entry.what}: none of the levels for node {name!r} could be carried over: "
                                  f"{fallback}")
    for entry in entries.values():
        names = covered.get(id(entry))
        if not names:
            why = ("it names no imported node (remote and guest nodes are not havm members)" if entry.kind == "target"
                   else "it matches none of the imported nodes")
            ctx.drop(entry.first, f"{entry.what}: {why}; its levels are dropped")
        elif entry.kind != "target":
            ctx.report.info(*ctx.where(entry.first), describe(entry.first),
                            f"{entry.what} written as fencing.levels of the nodes it matches now "
                            f"({', '.join(names)}): havm levels are per node, so a node added later is not covered")
    return out


def _add_level(ctx: Ctx, el: ET.Element, entries: dict[tuple[str, str, str], _Entry]) -> None:
    target, pattern = el.get("target"), el.get("target-pattern")
    attribute, value = el.get("target-attribute"), el.get("target-value")
    if target is not None:
        key, what = ("target", target, ""), f"target {target!r}"
    elif pattern is not None:
        key, what = ("pattern", pattern, ""), f"target-pattern {pattern!r}"
    elif attribute is not None and value is not None:
        key, what = ("attribute", value, attribute), f"target-attribute {attribute}={value}"
    else:
        ctx.drop(el, "it has no target, target-pattern, or target-attribute with target-value: Pacemaker ignores it")
        return
    try:
        index = int((el.get("index") or "").strip())
    except ValueError:
        index = 0
    if not 1 <= index <= MAX_INDEX:
        ctx.drop(el, f"index {el.get('index')!r}: Pacemaker ignores a level whose index is not 1 to {MAX_INDEX}")
        return
    devices = [d.strip() for d in (el.get("devices") or "").split(",") if d.strip()]
    if not devices:
        ctx.drop(el, "it names no devices")
        return
    entry = entries.get(key)
    if entry is None:
        regex = None
        if key[0] == "pattern":
            try:
                regex = re.compile(key[1])
            except re.error as e:
                ctx.drop(el, f"target-pattern {key[1]!r} is not a regular expression ({e}): it matches no node")
                return
        entry = entries[key] = _Entry(key[0], what, el, key[1], key[2], regex)
    entry.levels.setdefault(index, []).extend(devices)  # same target and index: one level (Pacemaker)
    entry.elements.setdefault(index, el)


def _cib_nodes(ctx: Ctx) -> dict[str, tuple[str, dict[str, str]]]:
    """Imported nodes: CIB name -> (havm name, the attributes Pacemaker's fencer matches)."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for el in ctx.cib.iter("node"):
        parent = ctx.cib.parent(el)
        raw = el.get("uname") or el.get("id") or ""
        if parent is None or parent.tag != "nodes" or havm_id(raw) not in ctx.nodes or raw in out:
            continue
        # the fencer's XPath: nodes/node[@uname]/instance_attributes/nvpair (no id-ref, no rules)
        attrs = {p.get("name", ""): p.get("value", "") for p in el.findall("instance_attributes/nvpair")}
        out[raw] = (havm_id(raw), attrs)
    return out


def _entry_for(ctx: Ctx, raw: str, name: str, attrs: dict[str, str], entries: list[_Entry]) -> _Entry | None:
    """The fencer's ``find_topology_for_host``: the entry named after the node, else the matching
    pattern or attribute entry; None (reported) when several match, since Pacemaker's pick is arbitrary."""
    named = [e for e in entries if e.kind == "target" and e.value == raw] or \
        [e for e in entries if e.kind == "target" and e.value.lower() == raw.lower()]
    matching = [e for e in entries if (e.kind == "pattern" and e.regex is not None and e.regex.search(raw))
                or (e.kind == "attribute" and attrs.get(e.attribute) == e.value)]
    if named:
        for e in matching:
            ctx.report.info(*ctx.where(e.first), describe(e.first), f"{e.what} also matches node {name!r}, which "
                            f"has levels of its own ({named[0].what}): those apply, as in Pacemaker")
        return named[0]
    if len(matching) > 1:
        ctx.drop(matching[0].first, f"node {name!r} matches several topology targets "
                                    f"({', '.join(e.what for e in matching)}): Pacemaker's fencer uses whichever it "
                                    f"finds first, in no defined order; set fencing.levels.{name} by hand")
        return None
    return matching[0] if matching else None


def _levels_for(ctx: Ctx, entry: _Entry, node: str) -> list[list[str]]:
    """``entry``'s levels for ``node`` in index order; a level that cannot be carried whole is reported."""
    devices = {d["id"]: d for d in ctx.devices}
    out: list[list[str]] = []
    for index in sorted(entry.levels):
        el = entry.elements[index]
        level: list[str] = []
        for raw in entry.levels[index]:
            why = _device_problem(ctx, raw, node, devices)
            if why:
                ctx.drop(el, f"level {index} for node {node!r} ({entry.what}): {why}; the level is dropped (every "
                             "device of a level must succeed)")
                break
            level.append(ctx.fence_ids[raw])
        else:
            out.append(level)
    return out


def _device_problem(ctx: Ctx, raw: str, node: str, devices: dict[str, dict[str, Any]]) -> str | None:
    if raw not in ctx.fence_ids:
        if raw == WATCHDOG_DEVICE:
            return ("'watchdog' is Pacemaker's watchdog fencing: havm's watchdog self-fences only the nodes "
                    "no device can fence, it is not a level")
        if raw in ctx.dropped:
            return f"device {raw!r} was not imported ({ctx.dropped[raw]})"
        return f"device {raw!r} is not a fence device in the input (Pacemaker's level always fails)"
    device = devices[ctx.fence_ids[raw]]
    fenced = device.get("host_map", device.get("nodes"))
    if fenced is not None and node not in fenced:
        return (f"device {raw!r} cannot fence {node!r} (its pcmk_host_list/pcmk_host_map do not name it: "
                "Pacemaker's level always fails)")
    return None
