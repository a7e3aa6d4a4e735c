"""The status section of a CIB as a plain dict, for ``havm simulate cluster.xml``.

``load_state(xml)`` reads ``<status>`` (``node_state``, ``transient_attributes``,
``lrm_rsc_op``) plus what it needs from ``<configuration>`` (stonith-enabled,
startup-fencing, node names and ids, which resources are anonymous clones).
It returns (format 1, append-only)::

    {
      "format": 1,
      "have_quorum": bool,        # <cib have-quorum>; absent means no quorum, as in Pacemaker
      "dc": "node1" | None,       # <cib dc-uuid> as a node name
      "now": float | None,        # <cib execution-date> (seconds), what crm_simulate uses as "now"
      "fencing_enabled": bool,    # stonith-enabled (default true; false for Heartbeat 2 XML)
      "nodes": {NAME: {
          "status": "online" | "offline" | "unclean",
          "pending": bool,        # joining, not ready to run resources (status "online", standby)
          "standby": bool, "maintenance": bool, "shutdown": bool,
          "reason": str,          # why it has that status, e.g. "peer is no longer part of the cluster"
          "attributes": {NAME: str},  # transient node attributes (not fail counts, standby, ...)
      }},
      "resources": {RSC: {NODE: {
          "role": "started" | "promoted" | None,  # None: stopped there
          "failed": bool,         # its last significant operation failed: it needs recovery
          "blocked": bool,        # a stop failed and fencing is disabled: nothing may be done
          "failcount": int,       # sum of fail-count-RSC* on that node (INFINITY = 1000000)
          "last_failure": float | None,   # last-failure-RSC* (seconds)
          "promotion_score": int | None,  # master-RSC on that node
          "last_op": {"operation": str, "interval": float, "rc_code": int,
                      "op_status": int, "call_id": int, "last_rc_change": float | None} | None,
      }}},
      "orphans": [RSC, ...],      # in the status but not in the configuration
    }

Resource ids are mapped as the config importer maps them (``havm_id``); an
anonymous clone's instances (``fs:0``) are keyed by the primitive id (``fs``),
a globally unique clone's keep their ``:N``. Node status follows Pacemaker's
``determine_online_status``: with fencing enabled a node that is gone while
expected up, or never seen at all (startup-fencing), is ``unclean``; without
fencing it is ``offline`` (but a member whose controller died while expected up
is ``unclean`` even then, as in Pacemaker); a failed operation whose on-fail
is ``fence`` (a stop's default with fencing on) makes its node ``unclean``;
remote and guest nodes are left out. On a cleanly offline node every resource is stopped
(its history, fail counts included, is kept). Operations are replayed in
call-id order: start/promote/demote/stop/migrate and probes (monitor with
interval 0: rc 7 stopped, 0 started, 8 promoted) set the role; a recurring
monitor that finds the resource stopped (rc 7) or failed marks it failed and
leaves it active there (Pacemaker shows it as "FAILED node": recovery stops it
first). A failed stop leaves it active and failed (and blocked without fencing).
An operation that returns 5 (not installed; or op-status 7) is a hard error, as in
Pacemaker: the resource may never run on that node again (``failcount`` INFINITY,
which never expires), and a probe returning it also says it is stopped there. A
failure of an operation configured with ``on-fail=ignore`` changes nothing, and its
fail counts are not added. A node asked to shut down (transient attribute
``shutdown``) is in standby: Pacemaker moves everything off it.
"""

from __future__ import annotations

from havm.importers.pcmk_values import INFINITY, havm_id, norm, pcmk_bool, pcmk_interval, pcmk_score

TYPE_CHECKING = False  # no typing, no xml.etree at run time (havm simulate's start-up)
if TYPE_CHECKING:
    import xml.etree.ElementTree as ET
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from havm.importers.cibxml import CibInput

    #: ``nvpairs(owner, set_tag)``: name -> value of ``owner``'s sets of that tag
    NvPairs = Callable[[ET.Element, str], dict[str, str]]

FORMAT = 1
_RC_OK, _RC_NOT_INSTALLED, _RC_NOT_RUNNING, _RC_PROMOTED, _RC_FAILED_PROMOTED = 0, 5, 7, 8, 9
_STATUS_PENDING, _STATUS_DONE, _STATUS_CANCELLED, _STATUS_ERROR, _STATUS_NOT_INSTALLED = -1, 0, 1, 4, 7
_NOT_ATTRIBUTES = ("fail-count-", "last-failure-", "master-", "promotion-")
_SPECIAL = {"standby", "maintenance", "shutdown", "terminate", "probe_complete"}


class StatusFacts:
    """What reading the status needs from the configuration (``config_facts`` or the lean CIB reader)."""

    __slots__ = ("props", "old", "names", "config_nodes", "anonymous", "unique", "known", "on_fail")

    def __init__(self, props: dict[str, str], old: bool, names: dict[str, str], config_nodes: dict[str, dict[str, str]],
                 anonymous: set[str], unique: set[str], known: set[str],
                 on_fail: dict[str, dict[tuple[str, int], str]]) -> None:
        self.props = props  # cluster properties, names normalised (first value wins)
        self.old = old  # Heartbeat 2 XML (no validate-with)
        self.names = names  # node id -> name
        self.config_nodes = config_nodes  # name -> normalised instance attributes
        self.anonymous = anonymous  # CIB ids of primitives in anonymous clones
        self.unique = unique  # ... in globally unique clones
        self.known = known  # havm ids of configured primitives
        self.on_fail = on_fail  # primitive CIB id -> {(operation, interval ms): on-fail}


class NodeStatus:
    """What the status reader takes from one ``<node_state>``: plain dicts, from any parser.

    ``attrs`` are the node_state's attributes; ``transient`` its transient
    attributes (the sets of each ``<transient_attributes>`` child, a later block
    overriding an earlier one); ``resources`` the ``<lrm_resource>`` elements
    anywhere below it, in document order, as (id, attributes of each of its
    ``<lrm_rsc_op>`` children).
    """

    __slots__ = ("attrs", "transient", "resources")

    def __init__(self, attrs: Mapping[str, str], transient: dict[str, str],
                 resources: list[tuple[str, list[Mapping[str, str]]]]) -> None:
        self.attrs = attrs
        self.transient = transient
        self.resources = resources


def node_status(ns: ET.Element, nvpairs: NvPairs) -> NodeStatus:
    """A ``<node_state>`` element of an ElementTree as the status reader's record."""
    transient: dict[str, str] = {}
    for ta in ns.findall("transient_attributes"):
        transient.update(nvpairs(ta, "instance_attributes"))
    return NodeStatus(ns.attrib, transient, [(lrm_rsc.get("id") or "", [op.attrib for op in lrm_rsc.findall("lrm_rsc_op")])
                                             for lrm_rsc in ns.iter("lrm_resource")])


def load_state(xml: str | bytes | ET.Element | CibInput) -> dict[str, Any]:
    """The state held in a CIB's status section (see the module docstring for the format)."""
    import xml.etree.ElementTree as ET

    from havm.importers.cibxml import CibInput
    from havm.importers.report import ImportReport

    if isinstance(xml, CibInput):
        cib = xml
    else:
        cib = CibInput()
        if isinstance(xml, ET.Element):
            cib.add_element(xml)  # no source text: no lines (load_state reports none)
        else:
            cib.add_text(xml.decode() if isinstance(xml, bytes) else xml, "<cib>")
    quiet = ImportReport()

    def nvpairs(owner: ET.Element, set_tag: str) -> dict[str, str]:
        return {k: v for k, (v, _) in cib.nvpairs(owner, set_tag, quiet).items()}

    return read_status(cib.roots[0].attrib, [node_status(ns, nvpairs) for ns in cib.iter("node_state")],
                       config_facts(cib, nvpairs))


def config_facts(cib: CibInput, nvpairs: NvPairs) -> StatusFacts:
    root = cib.roots[0]
    props: dict[str, str] = {}
    for crm in cib.iter("crm_config"):
        props.update({norm(k): v for k, v in nvpairs(crm, "cluster_property_set").items() if norm(k) not in props})
    old = root.tag == "cib" and root.get("validate-with") is None
    names = {}  # node id -> name
    config_nodes: dict[str, dict[str, str]] = {}
    for el in cib.iter("node"):
        node_parent = cib.parent(el)
        if node_parent is not None and node_parent.tag == "nodes" and \
                (el.get("type") or "member") in ("member", "normal"):
            name = havm_id(el.get("uname") or el.get("id") or "")
            names[el.get("id") or name] = name
            config_nodes[name] = {norm(k): v for k, v in nvpairs(el, "instance_attributes").items()}
    anonymous, unique = _clone_members(cib, nvpairs)
    return StatusFacts(props, old, names, config_nodes, anonymous, unique, _resource_ids(cib), _on_fail_config(cib))


def read_status(root: Mapping[str, str], node_states: Iterable[NodeStatus], facts: StatusFacts) -> dict[str, Any]:
    """The state dict from the ``<cib>`` element's attributes, its node states and the configuration's ``facts``."""
    fencing = _bool(facts.props.get("stonith-enabled"), not facts.old)
    startup_fencing = _bool(facts.props.get("startup-fencing"), True)
    names, config_nodes, anonymous, unique = facts.names, facts.config_nodes, facts.anonymous, facts.unique
    on_fail = facts.on_fail
    nodes: dict[str, dict[str, Any]] = {}
    resources: dict[str, dict[str, dict[str, Any]]] = {}
    seen: set[str] = set()
    for record in node_states:
        ns = record.attrs
        name = havm_id(ns.get("uname") or names.get(ns.get("id") or "", ns.get("id") or ""))
        if _bool(ns.get("remote_node"), False) or (config_nodes and name not in config_nodes):
            continue  # remote and guest nodes are not havm members
        seen.add(name)
        transient = record.transient
        node = _node(ns, fencing, transient, config_nodes.get(name, {}))
        nodes[name] = node
        clean_offline = node["status"] == "offline"
        histories: dict[str, list[Mapping[str, str]]] = {}
        for raw_id, ops in record.resources:
            # an anonymous clone may be recorded as fs and fs:0 on one node: one history
            rid = _state_id(raw_id, anonymous, unique)
            if rid in histories:
                histories[rid] = histories[rid] + ops
            else:
                histories[rid] = ops
        for rid, ops in histories.items():
            rec = _replay(ops, fencing, on_fail.get(rid.split(":")[0]))
            if rec.pop("fence") and node["status"] != "unclean":
                node["status"], node["reason"] = "unclean", f"an operation of {rid} failed there (on-fail=fence)"
            if clean_offline:
                rec["role"] = None  # a node that left cleanly runs nothing
            per = resources.get(rid)
            if per is None:
                resources[rid] = {name: rec}
            else:
                per[name] = rec
        _fail_counts(transient, name, resources, anonymous, unique, on_fail)
    for name, attrs in config_nodes.items():
        if name not in seen:
            status = "unclean" if fencing and startup_fencing else "offline"
            nodes[name] = {"status": status, "pending": False, "standby": _bool(attrs.get("standby"), False),
                           "maintenance": _bool(attrs.get("maintenance"), False), "shutdown": False,
                           "reason": "never seen by the cluster" + (" (startup-fencing)" if status == "unclean" else ""),
                           "attributes": {}}
    known = facts.known
    return {
        "format": FORMAT,
        "have_quorum": _bool(root.get("have-quorum", root.get("have_quorum")), False),
        "dc": names.get(root.get("dc-uuid") or "", None),
        "now": _float(root.get("execution-date")),
        "fencing_enabled": fencing,
        "nodes": nodes,
        "resources": resources,
        "orphans": sorted(r for r in resources if r.split(":")[0] not in known),
    }


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    try:
        return pcmk_bool(value)
    except ValueError:
        return default


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _when_member(value: str | None) -> int:
    """in_ccm: -1 never seen, 0 not a member, >0 member ('true' or, since Pacemaker 2.1.7, a timestamp)."""
    if value is None:
        return -1
    v = value.strip().lower()
    if v in ("true", "yes", "on", "y", "1"):
        return 1
    if v in ("false", "no", "off", "n", "0"):
        return 0
    return int(v) if v.isdigit() else -1


def _when_online(value: str | None) -> int:
    """crmd: 'online' or a timestamp > 0 means the node's controller is up."""
    if value is None or value.strip().lower() == "offline":
        return 0
    v = value.strip().lower()
    if v == "online":
        return 1
    return int(v) if v.isdigit() else 0


def _node(ns: Mapping[str, str], fencing: bool, transient: dict[str, str], config: dict[str, str]) -> dict[str, Any]:
    """Pacemaker's determine_online_status (lib/pengine/unpack.c), with and without fencing."""
    member = _when_member(ns.get("in_ccm"))
    online = _when_online(ns.get("crmd"))
    join = (ns.get("join") or "").lower()
    expected = (ns.get("expected") or "down").lower()
    terminate = (transient.get("terminate") or "0").strip().lower() not in ("0", "false", "no", "off")
    shutdown = transient.get("shutdown") not in (None, "", "0")
    status, pending, reason = "offline", False, "down"
    if fencing:
        if shutdown:
            status, reason = ("online", "shutting down") if online > 0 else ("offline", "shut down")
        elif member < 0:
            status, reason = "unclean", "peer has not been seen by the cluster"
        elif join == "nack":
            status, reason = "unclean", "peer failed the membership criteria"
        elif terminate:
            if member <= 0 and online <= 0 and join == "down":
                reason = "was fenced as requested"
            else:
                status, reason = "unclean", "fencing was requested"
        elif expected == "down":
            if member > 0 or online > 0:
                pending, reason = True, "not ready to run resources"
            else:
                reason = "down or still coming up"
        elif member <= 0:
            status, reason = "unclean", "peer is no longer part of the cluster"
        elif online <= 0:
            status, reason = "unclean", "peer process is no longer available"
        elif join == "member":
            status, reason = "online", "active"
        elif join in ("pending", "down"):
            pending, reason = True, "not ready to run resources"
        else:
            status, reason = "unclean", "peer was in an unknown state"
        if pending:
            status = "online"  # as Pacemaker: online (a member), but standby until it has joined
    else:
        if member <= 0:
            reason = "not in the membership"
        elif online > 0:
            if join == "member":
                status, reason = "online", "active"
            else:
                reason = "not ready to run resources"
        elif expected != "member":
            reason = "controller is down"
        else:
            status, reason = "unclean", "peer is unexpectedly down"
    standby = transient.get("standby", config.get("standby"))
    maintenance = transient.get("maintenance", config.get("maintenance"))
    attributes = {k: v for k, v in transient.items()
                  if k not in _SPECIAL and not k.startswith(_NOT_ATTRIBUTES) and not k.startswith("#")}
    # a node shutting down is drained like one in standby (Pacemaker moves everything off it)
    return {"status": status, "pending": pending, "standby": _bool(standby, False) or pending or shutdown,
            "maintenance": _bool(maintenance, False), "shutdown": shutdown, "reason": reason,
            "attributes": attributes}


def _int(v: str | None, default: int) -> int:
    try:
        return int(v) if v is not None else default
    except ValueError:
        return default


def _target_rc(op: Mapping[str, str]) -> int | None:
    key = op.get("transition-key") or ""
    parts = key.split(":")
    return _int(parts[2], -1) if len(parts) >= 4 else None


def _call_order(ops: list[Mapping[str, str]]) -> list[Mapping[str, str]]:
    """``ops`` by call-id (``_int``, default -1), pending operations (call-id -1) last; stable."""
    keyed = []
    for i, op in enumerate(ops):
        try:
            call = int(op.get("call-id"))  # type: ignore[arg-type]  # (None: TypeError)
        except (TypeError, ValueError):
            call = -1
        keyed.append((call < 0, call, i))
    keyed.sort()
    return [ops[i] for _, _, i in keyed]


def _replay(ops: list[Mapping[str, str]], fencing: bool, on_fail: dict[tuple[str, int], str] | None = None
            ) -> dict[str, Any]:
    """Replay a resource's operations on one node, in call-id order (Pacemaker's unpack_rsc_op).

    An operation whose rc is the one it was expected to return (the target rc in
    its transition key) succeeded, even if recorded with an error status.
    A failure with on-fail=fence (the default for a stop when fencing is on)
    sets ``fence``: the node must be fenced; on-fail=block (a failed stop
    without fencing) sets ``blocked``. A later successful stop clears both.
    """
    if len(ops) > 1:
        ops = _call_order(ops)
    role: str | None = None
    failed = blocked = fence = not_installed = False
    last: Mapping[str, str] | None = None
    last_rc = last_interval = 0
    policies = on_fail or {}
    for op in ops:
        # Numbers as _int reads them, inline: a large status holds thousands of operations.
        raw_status, raw_rc, raw_interval = op.get("op-status"), op.get("rc-code"), op.get("interval")
        status = 0 if raw_status == "0" else _int(raw_status, 0)
        name = op.get("operation") or ""
        if status == _STATUS_PENDING:  # in flight: a start or promote may already have taken effect
            if name in ("start", "migrate_to", "migrate_from"):
                role = role or "started"
            elif name == "promote":
                role = "promoted"
            continue
        if status == _STATUS_CANCELLED:
            continue  # a cancelled recurring monitor says nothing of the state
        rc = 0 if raw_rc == "0" else _int(raw_rc, 1)
        try:
            interval = int(raw_interval)  # type: ignore[arg-type]  # (None: TypeError)
        except (TypeError, ValueError):
            interval = 0
        # the target rc (from the transition key) only matters for these
        target = _target_rc(op) if status == _STATUS_ERROR or (interval and name == "monitor") else None
        if status == _STATUS_ERROR and target is not None and rc == target:
            status = _STATUS_DONE  # what was expected: Pacemaker remaps it to success
        ok = status == _STATUS_DONE
        if rc == _RC_NOT_INSTALLED or status == _STATUS_NOT_INSTALLED:
            # a hard error: the resource can never run here (Pacemaker bans the node)
            not_installed = True
            if interval == 0 and name == "monitor":  # a probe: and it does not run here
                role, failed, last, last_rc, last_interval = None, False, op, rc, interval
                continue
        if name == "start":
            role, failed = "started", not (ok and rc == _RC_OK)
        elif name == "stop":
            if ok and rc == _RC_OK:
                role, failed, blocked, fence = None, False, False, False
                last, last_rc, last_interval = op, rc, interval
                continue
            failed = True
            role = role or "started"
        elif name == "monitor" and interval == 0:  # a probe: what is running here?
            if ok and rc == _RC_NOT_RUNNING:
                role, failed = None, False
            elif ok and rc == _RC_OK:
                role, failed = "started", False
            elif ok and rc == _RC_PROMOTED:
                role, failed = "promoted", False
            else:
                role, failed = ("promoted" if rc == _RC_FAILED_PROMOTED else "started"), True
        elif name == "monitor":
            if ok and rc == _RC_NOT_RUNNING and target == _RC_NOT_RUNNING:
                role, failed = None, False  # a monitor of the stopped role: expected
            elif ok and rc == _RC_OK and target != _RC_PROMOTED:
                role, failed = "started", False
            elif ok and rc == _RC_PROMOTED:
                role, failed = "promoted", False
            else:
                # Failed, or stopped behind the cluster's back (rc 7). As Pacemaker
                # ("FAILED node"), keep it active there so recovery stops it first.
                role, failed = role or "started", True
        elif name == "promote":
            role, failed = "promoted", not (ok and rc == _RC_OK)
        elif name == "demote":
            if ok and rc == _RC_OK:
                role, failed = "started", False
            elif policies.get((name, interval)) == "block":
                role, failed = "promoted", True
            else:  # as Pacemaker: unpromoted (recovery stops it), or stopped if it said so
                role, failed = (None if ok and rc == _RC_NOT_RUNNING else "started"), True
        elif name in ("migrate_to", "migrate_from"):
            role, failed = "started", not (ok and rc == _RC_OK)
        else:
            continue  # notify, reload, meta-data...: no change of state
        last, last_rc, last_interval = op, rc, interval
        if failed and policies.get((name, interval)) == "ignore":
            failed = False  # on-fail=ignore: as if it had not failed
            continue
        if failed:
            policy = policies.get((name, interval)) or (
                ("fence" if fencing else "block") if name == "stop" else "restart")
            fence = fence or (policy == "fence" and fencing)
            blocked = blocked or policy == "block"
    return {"role": role, "failed": failed, "blocked": blocked, "failcount": INFINITY if not_installed else 0,
            "last_failure": None,
            "promotion_score": None, "fence": fence, "last_op": None if last is None else {
                "operation": last.get("operation"), "interval": last_interval / 1000.0,
                "rc_code": last_rc, "op_status": _int(last.get("op-status"), 0),
                "call_id": _int(last.get("call-id"), -1), "last_rc_change": _float(last.get("last-rc-change"))}}


def _state_id(raw: str, anonymous: set[str], unique: set[str]) -> str:
    base, sep, instance = raw.partition(":")
    if sep and base in anonymous:
        return havm_id(base)
    if sep and base in unique:
        return f"{havm_id(base)}:{instance}"
    return havm_id(raw)


def _fail_counts(transient: dict[str, str], node: str, resources: dict[str, dict[str, dict[str, Any]]],
                 anonymous: set[str], unique: set[str],
                 on_fail: dict[str, dict[tuple[str, int], str]] | None = None) -> None:
    for key, value in transient.items():
        for prefix in _NOT_ATTRIBUTES:
            if key.startswith(prefix):
                raw, _, op_key = key[len(prefix):].partition("#")
                rid = _state_id(raw, anonymous, unique)
                if op_key and on_fail and prefix in ("fail-count-", "last-failure-"):
                    op_name, _, ms = op_key.rpartition("_")
                    if on_fail.get(rid.split(":")[0], {}).get((op_name, _int(ms, -1))) == "ignore":
                        continue  # failures of an operation with on-fail=ignore do not count
                rec = resources.setdefault(rid, {}).setdefault(node, _replay([], True))
                rec.pop("fence", None)
                try:
                    if prefix == "last-failure-":  # a timestamp, not a score: no saturation
                        rec["last_failure"] = max(float(value), rec["last_failure"] or 0.0)
                    elif prefix == "fail-count-":
                        rec["failcount"] = min(INFINITY, rec["failcount"] + pcmk_score(value))
                    else:
                        rec["promotion_score"] = pcmk_score(value)
                except ValueError:
                    continue


def _clone_members(cib: CibInput, nvpairs: NvPairs) -> tuple[set[str], set[str]]:
    anonymous: set[str] = set()
    unique: set[str] = set()
    for clone in cib.iter("clone", "master", "master_slave"):
        if cib.in_status(clone):
            continue
        opts = {norm(k): v for k, v in nvpairs(clone, "meta_attributes").items()}
        opts.update({norm(k): v for k, v in clone.attrib.items()})
        opts.update({norm(k): v for k, v in nvpairs(clone, "instance_attributes").items() if norm(k) not in opts})
        target = unique if _bool(opts.get("globally-unique"), False) else anonymous
        target.update(p.get("id", "") for p in clone.iter("primitive"))
    return anonymous, unique


def _on_fail_config(cib: CibInput) -> dict[str, dict[tuple[str, int], str]]:
    """Primitive id -> {(operation, interval ms): on-fail} from the configuration."""
    out: dict[str, dict[tuple[str, int], str]] = {}
    for prim in cib.iter("primitive"):
        if cib.in_status(prim):
            continue
        for op in prim.iter("op"):
            policy = op.get("on-fail") or op.get("on_fail")
            if not policy:
                continue
            try:
                interval = int(round(pcmk_interval(op.get("interval") or "0") * 1000))
            except ValueError:
                continue
            out.setdefault(prim.get("id", ""), {})[(op.get("name") or "", interval)] = policy.strip().lower()
    return out


def _resource_ids(cib: CibInput) -> set[str]:
    return {havm_id(el.get("id", "")) for el in cib.iter("primitive") if not cib.in_status(el)}
