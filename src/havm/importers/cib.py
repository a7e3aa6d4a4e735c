"""``havm import cib``: a Pacemaker CIB (or Heartbeat 2 XML, or snippets) as cluster.yaml.

``import_cib([(text, file), ...])`` merges every input, converts nodes,
cluster properties, ``rsc_defaults``/``op_defaults``, resources and
constraints, and returns an ``ImportResult`` whose YAML has been validated
with our schema. Everything not carried over is in the report.

A CIB has no membership settings (those are in corosync.conf), so the result
has one unicast link ``ring0`` with addresses from ``--address`` or documented
placeholders (see ``havm.importers.output``), default timings, and
``quorum.two_node`` for a two-node cluster.

``load_state`` (the status section, for ``havm simulate``) is in
``havm.importers.cib_state`` and re-exported here.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from havm.importers.cib_constraints import convert_constraint
from havm.importers.cib_fencing import FENCING_PROPERTIES, fencing_properties
from havm.importers.cib_resources import Ctx, convert_meta, convert_resource
from havm.importers.cib_state import load_state
from havm.importers.cib_topology import convert_topology
from havm.importers.cibxml import (
    CONSTRAINT_TAGS,
    CONTAINER_TAGS,
    PROPERTY_OPTIONS,
    PROPERTY_VALUES,
    RESOURCE_TAGS,
    CibInput,
    describe,
    norm,
    pcmk_bool,
    pcmk_interval,
    pcmk_score,
    shown,
)
from havm.importers.output import assign_addresses, finish, format_score, havm_id
from havm.importers.report import ImportFailed, ImportReport, ImportResult

__all__ = ["import_cib", "load_cib_simulation", "load_state"]

LINK = "ring0"

#: cluster property -> (our properties field, converter to the YAML value)
_PROPS: dict[str, tuple[str, Any]] = {
    key: (field, (lambda v: format_score(pcmk_score(v))) if field == "stickiness" else conv)
    for key, (field, conv) in PROPERTY_OPTIONS.items()}
_TUNING = "tuning of Pacemaker's controller and scheduler; havm's controller has its own timing"
_FENCING = "a fencing setting: configure it in havm's fencing section"
#: properties havm cannot carry, with the reason
_PROP_WHY = {
    **{k: _TUNING for k in ("pe-input-series-max", "pe-error-series-max", "pe-warn-series-max", "cluster-delay",
                            "shutdown-escalation", "transition-idle-timeout", "election-timeout",
                            "crmd-transition-delay", "crmd-integration-timeout", "crmd-finalization-timeout",
                            "join-integration-timeout", "join-finalization-timeout", "transition-delay",
                            "cluster-recheck-interval", "network-delay",
                            "node-pending-timeout", "cluster-ipc-limit", "load-threshold")},
    **{k: _FENCING for k in ("startup-fencing", "fence-reaction")},
    "start-failure-is-fatal": "havm counts a failed start as one failure towards migration_threshold; "
                              "set meta.migration_threshold: 1 for Pacemaker's default behaviour",
    "stop-all-resources": "no such switch; set resource_defaults.target_role: stopped",
    "enable-acl": "access control is havm's API roles, not part of the cluster config",
    "enable-startup-probes": "havm always probes what runs on a node it has not seen",
    "shutdown-lock": "havm does not lock resources to a node that shuts down cleanly",
    "shutdown-lock-limit": "havm does not lock resources to a node that shuts down cleanly",
    "stop-orphan-resources": "havm always stops resources that are no longer configured",
    "stop-orphan-actions": "havm always cancels operations of removed resources",
    "stop-removed-resources": "havm always stops resources that are no longer configured",
    "cancel-removed-actions": "havm always cancels operations of removed resources",
    "require-quorum": "Heartbeat 2's switch; use no_quorum_policy",
}
_PROP_VALUES = PROPERTY_VALUES
#: Pacemaker's throttles -> (our field, what Pacemaker's value <= 0 means, and what havm does then)
_LIMITS = {
    "batch-limit": ("batch_limit", "Pacemaker's automatic limit from the CPU load; havm runs at most 16 "
                                   "actions at once (properties.batch_limit)"),
    "node-action-limit": ("node_action_limit", "Pacemaker's default, 2 x the node's cores; havm sets no per-node "
                                               "limit unless properties.node_action_limit is set"),
    "migration-limit": ("migration_limit", "no limit, as havm's default"),
}
#: bookkeeping properties Pacemaker writes itself: nothing to carry over
_BOOKKEEPING = {"dc-version", "cluster-infrastructure", "cluster-name", "have-watchdog", "last-lrm-refresh",
                "cib-bootstrap-options", "expected-quorum-votes", "dc-deadtime"}


def import_cib(inputs: Sequence[tuple[str, str]], addresses: Mapping[str, Sequence[str]] | None = None,
               cluster: str | None = None, output_name: str = "cluster.yaml", render: bool = True) -> ImportResult:
    """Convert CIB XML texts ``[(text, file name), ...]`` into a validated havm config.

    ``render=False`` skips the YAML (``result.text`` is empty; ``result.config`` is
    the validated model): what ``havm simulate cib.xml`` needs, fast on large CIBs.
    """
    if not inputs:
        raise ImportFailed("", None, "no input file")
    cib = CibInput()
    for text, file in inputs:
        cib.add_text(text, file)
    return import_parsed(cib, [file for _, file in inputs], addresses, cluster, output_name, render)


def import_parsed(cib: CibInput, files: Sequence[str], addresses: Mapping[str, Sequence[str]] | None = None,
                  cluster: str | None = None, output_name: str = "cluster.yaml", render: bool = True
                  ) -> ImportResult:
    """``import_cib`` on inputs already parsed (so ``load_state`` can share the parse)."""
    report = ImportReport()
    ctx = Ctx(cib, report)
    old = _is_heartbeat2(cib)
    first_file = files[0]

    fencing_raw: dict[str, tuple[str, ET.Element]] = {}
    props, names, fence_timeout = _properties(ctx, old, first_file, fencing_raw)
    watchdog = fencing_properties(ctx, fencing_raw, props)
    defaults = _rsc_defaults(ctx)
    ctx.op_timeout = _op_defaults(ctx)
    nodes = _nodes(ctx)
    if not nodes:  # snippets: the nodes are the ones named on the command line
        for node in addresses or {}:
            nodes.append({"name": havm_id(node)})
            report.info("command line", None, f"--address {node}=...", "node added: the input defines no nodes")
    if not nodes:
        raise ImportFailed(first_file, None, "the input defines no nodes (no <nodes> section); name them with "
                                             "--address NODE=IP (repeatable)")
    node_names = {n["name"] for n in nodes}
    ctx.nodes = node_names
    ctx.fence_timeout = fence_timeout

    resources = []
    for el in cib.iter(*RESOURCE_TAGS):
        parent = cib.parent(el)
        if parent is not None and parent.tag in CONTAINER_TAGS:
            continue  # converted with its group or clone
        r = convert_resource(ctx, el)
        if r is not None:
            resources.append(r)
    constraints = []
    for el in cib.iter(*CONSTRAINT_TAGS):
        constraints.extend(convert_constraint(ctx, el, node_names))
    levels = convert_topology(ctx, cib.iter("fencing-topology"))
    _report_leftovers(ctx)

    name = cluster or names or havm_id(os.path.splitext(os.path.basename(first_file))[0] or "imported")
    addr, placeholders = assign_addresses([n["name"] for n in nodes], [LINK], addresses or {}, {},
                                          report, first_file)
    for n in nodes:
        n["addresses"] = addr[n["name"]]
        n.update({k: n.pop(k) for k in ("votes", "attributes", "utilization", "standby", "maintenance") if k in n})
    report.info(first_file, None, "links", f"a CIB holds no membership settings (corosync.conf does): one "
                                           f"unicast link {LINK!r} on port 694 was written; add the others")
    doc: dict[str, Any] = {"cluster": name, "nodes": nodes, "links": [{"name": LINK, "mode": "unicast"}]}
    if len(nodes) == 2:
        doc["quorum"] = {"two_node": True}
        report.info(first_file, None, "quorum", "two nodes: quorum.two_node is set (a Pacemaker two-node "
                                                "cluster sets two_node in corosync.conf)")
    if props:
        doc["properties"] = props
    if defaults:
        doc["resource_defaults"] = defaults
    if resources:
        doc["resources"] = resources
    if constraints:
        doc["constraints"] = constraints
    if ctx.devices:
        doc["fencing"] = {"devices": ctx.devices}
        if levels:
            doc["fencing"]["levels"] = levels
    if watchdog:
        doc["watchdog"] = watchdog
    header = [f"Imported by 'havm import cib' from {', '.join(files)}.",
              "Read the import report: what it lists as dropped is not in this file."]
    if placeholders:
        header.append("Addresses marked PLACEHOLDER are not real: set them before use.")
    text, config = finish(doc, header, placeholders, output_name, render)
    return ImportResult(doc, text, report, None, tuple(placeholders), config)


def _is_heartbeat2(cib: CibInput) -> bool:
    """Heartbeat 2 XML: no validate-with on <cib>, or <attributes> blocks, or from/to constraints."""
    for root in cib.roots:
        if root.tag == "cib" and root.get("validate-with") is None:
            return True
    return bool(cib.iter("attributes")) or any(
        el.get("from") is not None for el in cib.iter("rsc_order", "rsc_colocation"))


def _properties(ctx: Ctx, old: bool, first_file: str, fencing_raw: dict[str, tuple[str, ET.Element]]
                ) -> tuple[dict[str, Any], str | None, float | None]:
    """The cluster properties havm has; the fencing ones ``fencing_properties`` reads go
    to ``fencing_raw`` (the first value of a name wins, as for every property)."""
    props: dict[str, Any] = {}
    cluster_name = None
    fence_timeout = None
    for crm in ctx.cib.iter("crm_config"):
        for name, (value, el) in ctx.cib.nvpairs(crm, "cluster_property_set", ctx.report).items():
            key = norm(name)
            what = f"{describe(el)} {shown(name, value)}"
            if key == "cluster-name":
                cluster_name = havm_id(value)
                continue
            if key in ("stonith-timeout", "fencing-timeout"):
                try:
                    fence_timeout = pcmk_interval(value)
                    ctx.report.info(*ctx.where(el), what, "written as the timeout of every fence device")
                except ValueError as e:
                    ctx.report.drop(*ctx.where(el), what, str(e))
                continue
            if key in FENCING_PROPERTIES:
                fencing_raw.setdefault(key, (value, el))
                continue
            if key in _LIMITS:
                _limit(ctx, el, what, key, value, props)
                continue
            if key in _BOOKKEEPING:
                ctx.report.info(*ctx.where(el), what, "bookkeeping written by Pacemaker itself; not configuration")
                continue
            if key not in _PROPS:
                if key.startswith("node-health"):
                    why = "node health scoring is not supported"
                else:
                    why = _PROP_WHY.get(key, "havm has no such cluster property (an agent's data or a typo?)")
                ctx.report.drop(*ctx.where(el), what, why)
                continue
            field, conv = _PROPS[key]
            try:
                converted = conv(value)
            except ValueError as e:
                ctx.report.drop(*ctx.where(el), what, str(e))
                continue
            if isinstance(converted, str) and field in _PROP_VALUES:
                converted = converted.strip().lower()
                if converted not in _PROP_VALUES[field]:
                    ctx.report.drop(*ctx.where(el), what, f"havm's {field} is one of "
                                    f"{', '.join(_PROP_VALUES[field])}" + (
                                        " (suicide: a node without quorum fences itself; havm stops its "
                                        "resources instead)" if converted == "suicide" else ""))
                    continue
            props[field] = converted
    if old and "fencing_enabled" not in props:
        props["fencing_enabled"] = False
        ctx.report.info(first_file, None, "stonith-enabled", "not set in Heartbeat 2 XML, where it defaulted to false: "
                                                     "written as fencing_enabled: false")
    return props, cluster_name, fence_timeout


def _limit(ctx: Ctx, el: ET.Element, what: str, key: str, value: str, props: dict[str, Any]) -> None:
    """batch-limit, node-action-limit, migration-limit: a positive count is carried over."""
    field, unset = _LIMITS[key]
    try:
        n = int(value.strip())
    except ValueError:
        ctx.report.drop(*ctx.where(el), what, f"expected a whole number of actions for {field}")
        return
    if n > 0:
        props[field] = n
    else:
        ctx.report.info(*ctx.where(el), what, f"not written: {unset}")


def _rsc_defaults(ctx: Ctx) -> dict[str, Any]:
    pairs: dict[str, tuple[str, ET.Element]] = {}
    for d in ctx.cib.iter("rsc_defaults"):
        pairs.update({k: v for k, v in ctx.cib.nvpairs(d, "meta_attributes", ctx.report).items() if k not in pairs})
    return convert_meta(ctx, pairs, None)


def _op_defaults(ctx: Ctx) -> float | None:
    timeout = None
    for d in ctx.cib.iter("op_defaults"):
        for name, (value, el) in ctx.cib.nvpairs(d, "meta_attributes", ctx.report).items():
            what = f"{describe(el)} {shown(name, value)}"
            if norm(name) == "timeout":
                try:
                    timeout = pcmk_interval(value)
                except ValueError as e:
                    ctx.report.drop(*ctx.where(el), what, str(e))
                    continue
                ctx.report.info(*ctx.where(el), what, "havm has no op defaults: written into every operation "
                                                      "that has no timeout of its own")
            else:
                ctx.report.drop(*ctx.where(el), what, "havm has no operation defaults besides the timeout")
    return timeout


def _nodes(ctx: Ctx) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for el in ctx.cib.iter("node"):
        parent = ctx.cib.parent(el)
        if parent is None or parent.tag != "nodes":
            continue
        raw = el.get("uname") or el.get("id") or ""
        kind = (el.get("type") or "member").lower()
        if kind not in ("member", "normal"):
            ctx.drop(el, f"a node of type {kind!r} (remote or ping nodes are not havm members)")
            continue
        name = havm_id(raw)
        if name != raw:
            ctx.report.info(*ctx.where(el), describe(el), f"node renamed to {name!r}")
        node = out.setdefault(name, {"name": name})
        for key, (value, pel) in ctx.cib.nvpairs(el, "instance_attributes", ctx.report).items():
            what = f"{describe(pel)} {shown(key, value)}"
            if norm(key) in ("standby", "maintenance"):
                try:
                    node[norm(key)] = pcmk_bool(value)
                except ValueError as e:
                    ctx.report.drop(*ctx.where(pel), what, str(e))
            elif havm_id(key) != key:
                ctx.report.drop(*ctx.where(pel), what, "attribute names must be 1-63 of [A-Za-z0-9_.-]")
            else:
                node.setdefault("attributes", {})[key] = value
        for key, (value, pel) in ctx.cib.nvpairs(el, "utilization", ctx.report).items():
            try:
                node.setdefault("utilization", {})[key] = int(value)
            except ValueError:
                ctx.report.drop(*ctx.where(pel), f"{describe(pel)} {shown(key, value)}", "utilization must be an integer")
    return list(out.values())


_HANDLED = {"cib", "configuration", "crm_config", "nodes", "resources", "constraints", "rsc_defaults",
            "op_defaults", "status", "snippet", "node", "cluster_property_set", "fencing-topology",
            *RESOURCE_TAGS, *CONSTRAINT_TAGS}


def _report_leftovers(ctx: Ctx) -> None:
    """Top-level configuration sections nobody converted (acls, tags, alerts...)."""
    for root in ctx.cib.roots:
        if root.tag == "cib":
            containers = [root] + [c for c in root if c.tag == "configuration"]
        elif root.tag in ("configuration", "snippet"):
            containers = [root]
        else:
            containers = []
        for container in containers:
            for child in container:
                if child.tag not in _HANDLED:
                    ctx.drop(child, _LEFTOVER_WHY.get(child.tag, "havm has no equivalent section"))
        status = root.find("status") if root.tag == "cib" else (root if root.tag == "status" else None)
        if status is not None:
            file, line = ctx.cib.where(status)
            ctx.report.info(file, line, "<status>", "cluster state, not configuration: read by havm simulate "
                                                    "(havm.importers.cib.load_state)")


_LEFTOVER_WHY = {
    "acls": "access control is havm's API roles, not part of the cluster config",
    "tags": "tags (named lists of resources) have no havm equivalent",
    "alerts": "alerts are configured as havm alert hooks, not in cluster.yaml",
}


def load_cib_simulation(path: str, report: ImportReport | None = None) -> tuple[Any, Any]:
    """``(ClusterSpec, State)`` from a CIB file, for ``havm simulate cluster.xml``.

    Lives in ``havm.importers.cib_simulation`` (it needs the scheduler's model);
    imported lazily so the importer itself does not depend on the scheduler.
    """
    from havm.importers.cib_simulation import load_cib_simulation as load

    return load(path, report)
