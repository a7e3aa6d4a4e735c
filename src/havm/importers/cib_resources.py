"""CIB resources (primitive, group, clone, master/master_slave, template) as havm resources.

Each function returns the YAML-ready dict for one resource, or None when it
cannot be carried over (reported). Ids are mapped with ``havm_id`` and
recorded in the ``Ctx`` so that constraints (and the state loader) can follow
them. Heartbeat 2 spellings are read as their Pacemaker equivalents:
``target_role`` in ``instance_attributes``, options as XML attributes
(``<clone globally_unique="false">``), ``clone_max``/``clone_node_max`` in a
clone's ``instance_attributes``, ``<master_slave>`` for promotable clones.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from havm.config.resources import AgentType
from havm.importers.cib_ops import convert_ops, safe_bool
from havm.importers.cibxml import (
    CLONE_OPTIONS,
    HB2_META_NAMES,
    META_OPTIONS,
    META_WHY_NOT,
    CibInput,
    describe,
    norm,
    pcmk_interval,
    pcmk_score,
    shown,
)
from havm.importers.output import format_duration, format_score, havm_id
from havm.importers.report import ImportReport
from havm.importers.scripts import map_script

_AGENT = TypeAdapter(AgentType)
_STRUCTURAL = {"id", "class", "provider", "type", "description", "template"}


#: meta option -> (our Meta field, converter to the YAML value)
META: dict[str, tuple[str, Callable[[str], Any]]] = {
    key: (field_name, (lambda v: format_score(pcmk_score(v))) if field_name == "stickiness" else
          (lambda v: format_duration(pcmk_interval(v))) if field_name == "failure_timeout" else conv)
    for key, (field_name, conv) in META_OPTIONS.items()}
#: clone option -> (our Clone field, converter)
CLONE = CLONE_OPTIONS
WHY_NOT = META_WHY_NOT
#: Heartbeat 2 put these meta options among a resource's instance_attributes
_HB2_META = HB2_META_NAMES


@dataclass
class Ctx:
    """What the CIB importer accumulates while it converts (ids, report, defaults)."""

    cib: CibInput
    report: ImportReport
    op_timeout: float | None = None
    nodes: set[str] = field(default_factory=set)  # imported node names
    fence_timeout: float | None = None  # stonith-timeout / fencing-timeout property
    devices: list[dict[str, Any]] = field(default_factory=list)  # fencing.devices
    fence_ids: dict[str, str] = field(default_factory=dict)  # CIB id -> havm id, every imported fence device
    ids: dict[str, str] = field(default_factory=dict)  # CIB id -> havm id, every imported resource
    kinds: dict[str, str] = field(default_factory=dict)  # havm id -> primitive/group/clone/promotable
    dropped: dict[str, str] = field(default_factory=dict)  # CIB id -> why it was not imported

    def where(self, el: ET.Element) -> tuple[str, int | None]:
        return self.cib.where(el)

    def drop(self, el: ET.Element, why: str) -> None:
        self.report.drop(*self.where(el), describe(el), why)

    def claim(self, el: ET.Element, kind: str) -> str | None:
        raw = el.get("id") or ""
        if not raw:
            self.drop(el, "a resource needs an 'id'")
            return None
        new = havm_id(raw)
        if new in self.kinds:
            self.drop(el, f"id {raw!r} (as {new!r}) is already used by another resource")
            self.dropped[raw] = "duplicate id"
            return None
        if new != raw:
            self.report.info(*self.where(el), describe(el),
                             f"renamed to {new!r}: havm names are 1-63 of [A-Za-z0-9_.-], starting alphanumeric")
        self.ids[raw] = new
        self.kinds[new] = kind
        return new


def convert_meta(ctx: Ctx, pairs: dict[str, tuple[str, ET.Element]], clone: dict[str, Any] | None
                 ) -> dict[str, Any]:
    """Our ``meta`` from Pacemaker meta pairs; clone options go into ``clone`` if given."""
    meta: dict[str, Any] = {}
    for name, (value, el) in pairs.items():
        key = norm(name)
        what = f"{describe(el)} {shown(name, value)}"
        table = META if key in META else (CLONE if clone is not None and key in CLONE else None)
        if table is None:
            if key in CLONE:
                why = "a clone option on a resource that is not a clone"
            else:
                why = WHY_NOT.get(key, "havm has no such meta option")
            ctx.report.drop(*ctx.where(el), what, why)
            continue
        field_name, conv = table[key]
        if key == "target-role" and value.strip().lower() in ("default", "#default"):
            ctx.report.info(*ctx.where(el), what, "Heartbeat 2's 'default' role means no preference")
            continue
        try:
            converted = conv(value)
        except ValueError as e:
            ctx.report.drop(*ctx.where(el), what, str(e))
            continue
        if table is CLONE:
            assert clone is not None
            clone[field_name] = converted
        else:
            meta[field_name] = converted
    return meta


def element_options(ctx: Ctx, el: ET.Element, skip: set[str]) -> dict[str, tuple[str, ET.Element]]:
    """Heartbeat 2 wrote options as XML attributes: ``<primitive is_managed="false">``."""
    return {k: (v, el) for k, v in el.attrib.items() if k not in skip}


def convert_resource(ctx: Ctx, el: ET.Element) -> dict[str, Any] | None:
    if el.tag == "primitive":
        return convert_primitive(ctx, el)
    if el.tag == "group":
        return convert_group(ctx, el)
    if el.tag in ("clone", "master", "master_slave"):
        return convert_clone(ctx, el)
    if el.tag == "template":
        return None  # used through primitives' template=, never on its own
    ctx.drop(el, f"<{el.tag}> resources (container bundles) have no havm equivalent")
    if el.get("id"):
        ctx.dropped[el.get("id", "")] = f"<{el.tag}> not supported"
    return None


def convert_primitive(ctx: Ctx, el: ET.Element) -> dict[str, Any] | None:
    sources = [el]
    if el.get("template"):
        tpl = ctx.cib.by_id.get(el.get("template", ""))
        if tpl is None or tpl.tag != "template":
            ctx.drop(el, f"template {el.get('template')!r} is not defined in the input")
            ctx.dropped[el.get("id", "")] = "missing template"
            return None
        sources = [el, tpl]  # the primitive's own values win
    cls = next((s.get("class") for s in sources if s.get("class")), None)
    provider = next((s.get("provider") for s in sources if s.get("provider")), None)
    rtype = next((s.get("type") for s in sources if s.get("type")), None)
    params_raw: dict[str, tuple[str, ET.Element]] = {}
    meta_raw: dict[str, tuple[str, ET.Element]] = {}
    for s in sources:
        for name, pair in ctx.cib.nvpairs(s, "instance_attributes", ctx.report).items():
            if "_" in name and norm(name) in _HB2_META:
                meta_raw.setdefault(name, pair)  # Heartbeat 2 kept target_role & co. here
            else:
                params_raw.setdefault(name, pair)
        for name, pair in ctx.cib.nvpairs(s, "meta_attributes", ctx.report).items():
            meta_raw.setdefault(name, pair)
        for name, pair in element_options(ctx, s, _STRUCTURAL).items():
            meta_raw.setdefault(name, pair)
    if cls is None or rtype is None:
        ctx.drop(el, "a primitive needs 'class' and 'type'")
        ctx.dropped[el.get("id", "")] = "no class/type"
        return None
    if cls.strip().lower() == "stonith":
        from havm.importers.cib_fencing import convert_fence_device

        for name, (value, mel) in meta_raw.items():
            ctx.report.drop(*ctx.where(mel), f"{describe(mel)} {shown(name, value)}",
                            "a fence device is not a resource: resource options do not apply")
        convert_fence_device(ctx, el, rtype, params_raw, ctx.nodes, ctx.fence_timeout)
        return None
    agent, params = _agent(ctx, el, cls, provider, rtype, params_raw)
    if agent is None:
        ctx.dropped[el.get("id", "")] = f"its agent {cls}:{rtype} cannot be carried over"
        return None
    rid = ctx.claim(el, "primitive")
    if rid is None:
        return None
    out: dict[str, Any] = {"id": rid, "type": agent}
    if params:
        out["params"] = params
    util = _utilization(ctx, el)
    if util:
        out["utilization"] = util
    meta = convert_meta(ctx, meta_raw, None)
    if meta:
        out["meta"] = meta
    ops = convert_ops(ctx, sources)
    if ops:
        out["ops"] = ops
    return out


def _agent(ctx: Ctx, el: ET.Element, cls: str, provider: str | None, rtype: str,
           params_raw: dict[str, tuple[str, ET.Element]]) -> tuple[str | None, dict[str, Any]]:
    params: dict[str, Any] = {}
    c = cls.strip().lower()
    if c == "heartbeat":
        positional = sorted((int(k), v) for k, (v, _) in params_raw.items() if k.isdigit())
        mapped = map_script(rtype, [v for _, v in positional])
        for k, (v, pel) in params_raw.items():
            if not k.isdigit():
                ctx.report.drop(*ctx.where(pel), f"{describe(pel)} {shown(k, v)}",
                                "a Heartbeat resource script takes only positional parameters 1, 2, ...")
        if mapped.kind == "none" or mapped.kind == "drbd":
            ctx.drop(el, mapped.why or "a Heartbeat drbddisk resource: configure DRBD as a promotable "
                                       "clone of ocf:linbit:drbd (see docs/importing.md)")
            return None, {}
        for note in mapped.notes:
            ctx.report.info(*ctx.where(el), describe(el), note)
        for w in mapped.warnings:
            ctx.report.warn(*ctx.where(el), describe(el), w)
        return mapped.type, dict(mapped.params)
    if c == "ocf":
        if not provider:
            provider = "heartbeat"
            ctx.report.info(*ctx.where(el), describe(el), "no provider given; Heartbeat 2 meant 'heartbeat'")
        agent = f"ocf:{provider}:{rtype}"
    elif c in ("lsb", "systemd", "service"):
        if c == "lsb" and "/" in rtype:  # an init script named by its path (Pacemaker's test suite does)
            ctx.report.info(*ctx.where(el), describe(el), f"lsb script {rtype!r} named by path: imported as "
                                                          f"lsb:{rtype.rsplit('/', 1)[1]} (havm looks in /etc/init.d)")
            rtype = rtype.rsplit("/", 1)[1]
        agent = f"{c}:{rtype}"
    else:
        ctx.drop(el, f"resource class {cls!r} is not supported (havm runs ocf, lsb, systemd, service, stonith)")
        return None, {}
    if not _valid_agent(agent):
        ctx.drop(el, f"agent {agent!r} is not a valid agent name")
        return None, {}
    for k, (v, pel) in params_raw.items():
        if havm_id(k) != k:
            ctx.report.drop(*ctx.where(pel), f"{describe(pel)} {shown(k, v)}",
                            "parameter names must be 1-63 of [A-Za-z0-9_.-], starting alphanumeric")
            continue
        params[k] = v
    return agent, params


@functools.lru_cache(maxsize=1024)
def _valid_agent(agent: str) -> bool:
    """Whether our schema accepts ``agent`` (cached: a large CIB repeats a few agents)."""
    try:
        _AGENT.validate_python(agent)
    except ValidationError:
        return False
    return True


def _utilization(ctx: Ctx, el: ET.Element) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, (value, pel) in ctx.cib.nvpairs(el, "utilization", ctx.report).items():
        try:
            n = int(value)
            if havm_id(name) != name:
                raise ValueError("utilization names must be 1-63 of [A-Za-z0-9_.-]")
        except ValueError as e:
            ctx.report.drop(*ctx.where(pel), f"{describe(pel)} {shown(name, value)}",
                            str(e) if "names" in str(e) else f"utilization must be an integer, got {value!r}")
            continue
        out[name] = n
    return out


def convert_group(ctx: Ctx, el: ET.Element) -> dict[str, Any] | None:
    gid = ctx.claim(el, "group")
    if gid is None:
        return None
    members = []
    for child in el:
        if child.tag == "primitive":
            p = convert_primitive(ctx, child)
            if p is not None:
                members.append(p)
        elif child.tag in ("group", "clone", "master", "master_slave", "bundle"):
            ctx.drop(child, "a group holds only primitives")
    if not members:
        ctx.drop(el, "no member of this group could be imported")
        ctx.kinds.pop(gid, None)
        ctx.ids.pop(el.get("id", ""), None)
        ctx.dropped[el.get("id", "")] = "empty group"
        return None
    pairs = ctx.cib.nvpairs(el, "meta_attributes", ctx.report)
    for name, pair in ctx.cib.nvpairs(el, "instance_attributes", ctx.report).items():
        pairs.setdefault(name, pair)
    for name, (value, _) in element_options(ctx, el, {"id", "description"}).items():
        if norm(name) in ("ordered", "collocated"):
            if not safe_bool(value, True):
                ctx.drop(el, f"{shown(name, value)}: havm groups always start in order on one node; "
                             "use colocation/order constraints for looser sets")
        else:
            pairs.setdefault(name, (value, el))
    out: dict[str, Any] = {"group": gid, "resources": members}
    meta = convert_meta(ctx, pairs, None)
    if meta:
        out["meta"] = meta
    return out


def convert_clone(ctx: Ctx, el: ET.Element) -> dict[str, Any] | None:
    children = [c for c in el if c.tag in ("primitive", "group", "clone", "master", "master_slave", "bundle")]
    if len(children) != 1 or children[0].tag not in ("primitive", "group"):
        ctx.drop(el, "a clone must hold exactly one primitive or group")
        ctx.dropped[el.get("id", "")] = "bad clone"
        return None
    cid = ctx.claim(el, "clone")
    if cid is None:
        return None
    inner = convert_primitive(ctx, children[0]) if children[0].tag == "primitive" else convert_group(ctx, children[0])
    if inner is None:
        if "fence device" in ctx.dropped.get(children[0].get("id", ""), ""):
            ctx.report.info(*ctx.where(el), describe(el), "a clone of a fence device: havm needs no copies, "
                                                          "the device is in the fencing section")
        else:
            ctx.drop(el, "its resource could not be imported")
        ctx.kinds.pop(cid, None)
        ctx.ids.pop(el.get("id", ""), None)
        ctx.dropped[el.get("id", "")] = "clone of a dropped resource"
        return None
    pairs = ctx.cib.nvpairs(el, "meta_attributes", ctx.report)
    for name, pair in ctx.cib.nvpairs(el, "instance_attributes", ctx.report).items():
        pairs.setdefault(name, pair)  # Heartbeat 2: clone_max & co. in instance_attributes
    pairs.update({k: v for k, v in element_options(ctx, el, {"id", "description"}).items() if k not in pairs})
    fields: dict[str, Any] = {}
    if el.tag in ("master", "master_slave"):
        fields["promotable"] = True
    meta = convert_meta(ctx, pairs, fields)
    out: dict[str, Any] = {"clone": cid, "resource": inner}
    if fields.get("promotable") and "group" in inner:
        ctx.drop(el, "a promotable clone of a group: havm promotes single primitives only; "
                     "imported as a plain clone")
        fields = {k: v for k, v in fields.items() if not k.startswith("promot")}
    for zero, instead in (("clone_node_max", "clone_max"), ("promoted_node_max", "promoted_max")):
        if fields.get(zero) == 0:  # none per node is none at all, which havm writes as max 0
            fields.pop(zero)
            fields[instead] = 0
            ctx.report.info(*ctx.where(el), describe(el), f"{zero.replace('_', '-')}=0 written as {instead}: 0")
    if fields.get("clone_node_max", 1) > 1 and not fields.get("globally_unique", False):
        ctx.drop(el, f"clone-node-max={fields['clone_node_max']} on an anonymous clone: havm runs at most one "
                     "anonymous instance per node (set globally-unique=true for several); written as 1")
        fields.pop("clone_node_max")
    if fields.get("promotable"):
        ctx.kinds[cid] = "promotable"
        ctx.kinds[inner.get("id", "")] = "promotable"
    out.update(fields)
    if meta:
        out["meta"] = meta
    return out
