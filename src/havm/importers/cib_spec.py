"""A Pacemaker CIB read straight into the scheduler's ``ClusterSpec`` and ``State``.

The fast path of ``havm simulate cluster.xml``: one pass of pyexpat
(``cib_stream``: a small tree of the configuration, the status as records),
one walk of the configuration, no YAML document, no schema validation, no
report, and nothing imported beyond the scheduler's model and pyexpat (not
``xml.etree`` nor ``re``, which cost more to import than reading a
500-resource configuration). It carries over
exactly what ``havm import cib`` would write, for the CIBs clusters are made
of today (Pacemaker 2.x/3.x ``<cib validate-with>``): nodes, cluster
properties, ``rsc_defaults``, primitives (ocf/lsb/systemd/service; stonith
devices are not resources), groups, clones and promotable clones, and
location (node or rule), colocation and order constraints between resources.

Whatever it does not read itself raises ``Unsupported``, and the caller
(``cib_simulation.load_cib_simulation``) takes the full importer's path: a
snippet or Heartbeat 2 XML, ``id-ref`` references, sets with rules, resource
templates, bundles, resource sets, ids the importer would rename, values it
would drop, a DOCTYPE. So the two paths agree on every input the fast one accepts;
tests/importers/test_cib_spec.py compares them on every CIB the tests have.
The status section goes through ``cib_state.read_status``, shared with the
full path.
"""

from __future__ import annotations

from havm.importers.cib_simulation import scheduler_state
from havm.importers.cib_spec_ops import OpFacts, ops_of, role_of, rule_of
from havm.importers.cib_state import StatusFacts, read_status
from havm.importers.cib_stream import Element, Unsupported, read
from havm.importers.pcmk_values import (
    CLONE_OPTIONS,
    HB2_META_NAMES,
    META_OPTIONS,
    PROPERTY_OPTIONS,
    PROPERTY_VALUES,
    is_havm_id,
    norm,
    pcmk_bool,
    pcmk_score,
)
from havm.scheduler.model import (
    INFINITY,
    CloneSpec,
    ClusterSpec,
    ColocationSpec,
    GroupSpec,
    LocationSpec,
    NodeSpec,
    OrderSpec,
    PrimitiveSpec,
    PropertiesSpec,
    State,
    frozen_map,
    primitive_spec,
)

_STRUCTURAL = {"id", "class", "provider", "type", "description"}
_AGENT = r"^(?:ocf:[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+|(?:lsb|systemd|service):[A-Za-z0-9_.@-]+)$"
_AGENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_PRIMITIVE_SETS = ("instance_attributes", "utilization", "meta_attributes")
_NO_UTILIZATION: dict[str, int] = {}  # read only


def load_cib_spec(data: bytes) -> tuple[ClusterSpec, State]:
    """(spec, state) of a CIB, or ``Unsupported``."""
    try:
        return _load(data)
    except ValueError as e:  # a value the importer would refuse or report
        raise Unsupported(str(e)) from None


def _load(data: bytes) -> tuple[ClusterSpec, State]:
    root, node_states = read(data)  # Unsupported: Heartbeat 2 <attributes>, not well-formed...
    if root.tag != "cib" or root.attrib.get("validate-with") is None:
        raise Unsupported("not a Pacemaker 2.x/3.x CIB")
    configs = root.findall("configuration")
    if len(configs) != 1:
        raise Unsupported("no single <configuration>")
    reader = _Reader(configs[0])
    spec = reader.spec()
    if root.find("status") is None:
        return spec, State()
    facts = StatusFacts(reader.raw_props, False, reader.node_ids, reader.node_attrs, reader.anonymous,
                        reader.unique, set(spec.primitives), reader.on_fail)
    return spec, scheduler_state(read_status(root.attrib, node_states, facts), spec)


def _check_agent(agent: str) -> bool:
    """Does ``agent`` match ``_AGENT``? (A plain test first: ``re`` only for odd names.)"""
    kind, _, rest = agent.partition(":")
    if kind == "ocf":
        provider, _, name = rest.partition(":")
        plain = provider and name and _AGENT_CHARS.issuperset(provider) and _AGENT_CHARS.issuperset(name)
    else:
        plain = kind in ("lsb", "systemd", "service") and rest and _AGENT_CHARS.issuperset(rest.replace("@", ""))
    if plain:
        return True
    import re

    return re.match(_AGENT, agent) is not None


def _nvpairs(owner: Element, set_tag: str) -> dict[str, str]:
    """As ``CibInput.nvpairs`` (first value of a name wins), for sets without id-ref or rule."""
    return _sets(owner, (set_tag,)).get(set_tag) or {}


def _sets(owner: Element, set_tags: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``_nvpairs`` of several set tags in one pass: set tag -> name -> value (tags without a set left out)."""
    out: dict[str, dict[str, str]] = {}
    for nvset in owner.children:
        set_tag = nvset.tag
        if set_tag not in set_tags:
            continue
        pairs = out.get(set_tag)
        if pairs is None:
            pairs = out[set_tag] = {}
        if "id-ref" in nvset.attrib:
            raise Unsupported(f"<{set_tag}> with id-ref")
        for pair in nvset.children:
            if pair.tag == "rule":
                raise Unsupported(f"<{set_tag}> with a rule")
            if pair.tag != "nvpair":
                continue
            attrib = pair.attrib
            name, value = attrib.get("name"), attrib.get("value")
            if name is None or value is None or "id-ref" in attrib:
                raise Unsupported("an nvpair without name/value, or with id-ref")
            if name not in pairs:
                pairs[name] = value
    return out


def _check_id(raw: str | None) -> str:
    if not raw or not is_havm_id(raw):
        raise Unsupported(f"id {raw!r} the importer would rename")
    return raw


class _Reader:
    def __init__(self, config: Element) -> None:
        self.config = config
        self.raw_props: dict[str, str] = {}  # normalised name -> value, for the status reader
        self.node_ids: dict[str, str] = {}
        self.node_attrs: dict[str, dict[str, str]] = {}
        self.anonymous: set[str] = set()
        self.unique: set[str] = set()
        self.on_fail: dict[str, dict[tuple[str, int], str]] = {}
        self.kinds: dict[str, str] = {}  # imported id -> primitive/group/clone/promotable
        self.dropped: set[str] = set()  # stonith devices (and clones of them): not resources
        self.prims: dict[str, PrimitiveSpec] = {}
        self.groups: dict[str, GroupSpec] = {}
        self.clones: dict[str, CloneSpec] = {}
        self.top: list[str] = []
        self.agents: set[str] = set()  # agent names already checked
        self.op_memo: dict[tuple[str | None, ...], OpFacts] = {}

    # -- properties, defaults, nodes -------------------------------------------------------
    def properties(self) -> dict[str, object]:
        props: dict[str, object] = {}
        for crm in self.config.findall("crm_config"):
            for name, value in _nvpairs(crm, "cluster_property_set").items():
                key = norm(name)
                if key not in self.raw_props:
                    self.raw_props[key] = value
                if key not in PROPERTY_OPTIONS:
                    continue  # bookkeeping, tuning, fencing timeouts...: nothing the planner reads
                field, conv = PROPERTY_OPTIONS[key]
                try:
                    converted = conv(value)
                except ValueError:
                    raise Unsupported(f"property {name}={value}") from None
                if isinstance(converted, str) and field in PROPERTY_VALUES:
                    converted = converted.strip().lower()
                    if converted not in PROPERTY_VALUES[field]:
                        raise Unsupported(f"property {name}={value}")
                props[field] = converted
        return props

    def defaults(self) -> dict[str, object]:
        pairs: dict[str, str] = {}
        for d in self.config.findall("rsc_defaults"):
            for k, v in _nvpairs(d, "meta_attributes").items():
                if k not in pairs:
                    pairs[k] = v
        return _meta(pairs, None)

    def nodes(self) -> tuple[NodeSpec, ...]:
        out: dict[str, dict] = {}  # type: ignore[type-arg]
        for section in self.config.findall("nodes"):
            for el in section.findall("node"):
                if (el.attrib.get("type") or "member").lower() not in ("member", "normal"):
                    continue
                name = _check_id(el.attrib.get("uname") or el.attrib.get("id") or "")
                node = out.setdefault(name, {"attributes": {}, "utilization": {}, "standby": False,
                                             "maintenance": False})
                attrs = _nvpairs(el, "instance_attributes")
                if (el.attrib.get("type") or "member") in ("member", "normal"):  # the status reader's test
                    self.node_ids[el.attrib.get("id") or name] = name
                    self.node_attrs[name] = {norm(k): v for k, v in attrs.items()}
                for key, value in attrs.items():
                    if norm(key) in ("standby", "maintenance"):
                        try:
                            node[norm(key)] = pcmk_bool(value)
                        except ValueError:
                            raise Unsupported(f"node {key}={value}") from None
                    else:
                        node["attributes"][_check_id(key)] = value
                for key, value in _nvpairs(el, "utilization").items():
                    node["utilization"][key] = _integer(value)
        if not out:
            raise Unsupported("no nodes")
        return tuple(NodeSpec(name, frozen_map(n["attributes"]), frozen_map(n["utilization"]), n["standby"],
                              n["maintenance"]) for name, n in out.items())

    # -- resources ---------------------------------------------------------------------------
    def resources(self, defaults: dict[str, object], default_stickiness: int) -> None:
        self.rsc_defaults = defaults
        self.default_stickiness = default_stickiness
        for section in self.config.findall("resources"):
            for el in section:
                tag = el.tag
                if tag == "primitive":
                    p = self.primitive(el, (), None, None)
                    if p is not None:
                        self.top.append(p)
                elif tag == "group":
                    g = self.group(el, (), None)
                    self.top.append(g)
                elif tag in ("clone", "master", "master_slave"):
                    c = self.clone(el)
                    if c is not None:
                        self.top.append(c)
                elif isinstance(tag, str):
                    raise Unsupported(f"<{tag}> in resources")

    def claim(self, el: Element, kind: str) -> str:
        rid = _check_id(el.attrib.get("id"))
        if rid in self.kinds or rid in self.dropped:
            raise Unsupported(f"duplicate id {rid!r}")
        self.kinds[rid] = kind
        return rid

    def primitive(self, el: Element, outer: tuple[dict[str, object], ...], group: str | None,
                  clone: str | None) -> str | None:
        attrib = el.attrib
        if not attrib.keys() <= _STRUCTURAL:
            k = next(k for k in attrib if k not in _STRUCTURAL)
            raise Unsupported(f"primitive option {k}= (template or Heartbeat 2 style)")
        cls, rtype = attrib.get("class"), attrib.get("type")
        if cls is None or rtype is None:
            raise Unsupported("a primitive without class or type")
        c = cls.strip().lower()
        if c == "stonith":  # a fence device, not a resource
            _nvpairs(el, "instance_attributes")  # (as the importer reads it: Unsupported if it cannot)
            rid = el.attrib.get("id", "")
            if rid in self.kinds or rid in self.dropped or group is not None:
                raise Unsupported("a fence device in a group, or a duplicate id")
            self.dropped.add(rid)
            return None
        if c == "ocf":
            agent = f"ocf:{attrib.get('provider') or 'heartbeat'}:{rtype}"
        elif c in ("lsb", "systemd", "service"):
            agent = f"{c}:{rtype}"
        else:
            raise Unsupported(f"resource class {cls!r}")
        sets = _sets(el, _PRIMITIVE_SETS)
        params = sets.get("instance_attributes") or {}
        if agent not in self.agents:  # a large CIB names a few agents thousands of times
            if not _check_agent(agent):
                raise Unsupported(f"agent {agent!r}")
            self.agents.add(agent)
        for k in params:
            if ("_" in k and norm(k) in HB2_META_NAMES) or not is_havm_id(k):
                raise Unsupported(f"parameter {k!r}")
        rid = self.claim(el, "primitive")
        raw_util = sets.get("utilization")
        util = {_check_id(k): _integer(v) for k, v in raw_util.items()} if raw_util else _NO_UTILIZATION
        raw_meta = sets.get("meta_attributes")
        meta = _meta(raw_meta, None) if raw_meta else {}
        monitor, on_fail = ops_of(el, self.op_memo)
        if on_fail:
            self.on_fail[rid] = on_fail
        self.prims[rid] = primitive_spec(rid, agent, params, util, monitor,
                                         (meta, *outer, self.rsc_defaults), self.default_stickiness, group, clone)
        return rid

    def group(self, el: Element, outer: tuple[dict[str, object], ...], clone: str | None) -> str:
        for k in el.attrib:
            if k not in ("id", "description"):
                raise Unsupported(f"group option {k}=")
        gid = self.claim(el, "group")
        pairs = _nvpairs(el, "meta_attributes")
        for k, v in _nvpairs(el, "instance_attributes").items():
            if k not in pairs:
                pairs[k] = v
        metas = (_meta(pairs, None), *outer)
        members: list[str] = []
        for child in el:
            if child.tag == "primitive":
                p = self.primitive(child, metas, gid, clone)
                if p is None:
                    raise Unsupported("a fence device in a group")
                members.append(p)
            elif child.tag in ("group", "clone", "master", "master_slave", "bundle"):
                raise Unsupported("a group holding more than primitives")
        if not members:
            raise Unsupported("an empty group")
        self.groups[gid] = GroupSpec(gid, tuple(members), clone)
        return gid

    def clone(self, el: Element) -> str | None:
        for k in el.attrib:
            if k not in ("id", "description"):
                raise Unsupported(f"clone option {k}= (Heartbeat 2 style)")
        children = [c for c in el if c.tag in ("primitive", "group", "clone", "master", "master_slave", "bundle")]
        if len(children) != 1 or children[0].tag not in ("primitive", "group"):
            raise Unsupported("a clone not holding exactly one primitive or group")
        inner = children[0]
        if inner.tag == "primitive" and (inner.attrib.get("class") or "").strip().lower() == "stonith":
            self.primitive(inner, (), None, None)  # a clone of a fence device: no resource at all
            self.dropped.add(el.attrib.get("id", ""))
            return None
        cid = self.claim(el, "clone")
        pairs = _nvpairs(el, "meta_attributes")
        for k, v in _nvpairs(el, "instance_attributes").items():
            if k not in pairs:
                pairs[k] = v
        fields: dict[str, object] = {"promotable": True} if el.tag in ("master", "master_slave") else {}
        meta = _meta(pairs, fields)
        promotable = bool(fields.get("promotable", False))
        unique = bool(fields.get("globally_unique", False))
        clone_max, node_max = fields.get("clone_max"), fields.get("clone_node_max", 1)
        promoted_max, promoted_node_max = fields.get("promoted_max", 1), fields.get("promoted_node_max", 1)
        if (promotable or unique) and inner.tag == "group":
            raise Unsupported("a promotable or globally unique clone of a group")
        numbers = (clone_max if clone_max is not None else 0, node_max, promoted_max, promoted_node_max)
        if min(numbers) < 0 or node_max == 0 or promoted_node_max == 0:  # type: ignore[type-var,operator]
            raise Unsupported("clone limits the importer rewrites or refuses")
        if node_max > 1 and not unique:  # type: ignore[operator]
            raise Unsupported("clone-node-max > 1 on an anonymous clone")
        if inner.tag == "primitive":
            child = self.primitive(inner, (meta,), None, cid)
            assert child is not None
            members: tuple[str, ...] = (child,)
        else:
            child = self.group(inner, (meta,), cid)
            members = self.groups[child].members
        if promotable:
            self.kinds[cid] = self.kinds[child] = "promotable"
        (self.unique if unique else self.anonymous).update(
            p.attrib.get("id", "") for p in el.iter("primitive"))
        self.clones[cid] = CloneSpec(cid, child, members, clone_max, node_max, bool(fields.get("interleave", False)),  # type: ignore[arg-type]
                                     unique, promotable, promoted_max, promoted_node_max)  # type: ignore[arg-type]
        return cid

    # -- constraints -------------------------------------------------------------------------
    def ref(self, raw: str | None) -> str | None:
        """The imported id a constraint names; None if it names a fence device or nothing."""
        if raw in self.kinds:
            return raw
        if not raw:
            raise Unsupported("a constraint without its resource")
        return None  # the importer drops the constraint (and reports it)

    def check_role(self, rsc: str, role: str | None) -> bool:
        return role not in ("promoted", "unpromoted") or self.kinds.get(rsc) == "promotable"

    def constraints(self, node_names: set[str]) -> tuple[list[LocationSpec], list[ColocationSpec], list[OrderSpec]]:
        locs: list[LocationSpec] = []
        colos: list[ColocationSpec] = []
        orders: list[OrderSpec] = []
        for section in self.config.findall("constraints"):
            for el in section:
                if el.find("resource_set") is not None:
                    raise Unsupported("resource sets")
                if el.tag == "rsc_location":
                    self.location(el, node_names, locs)
                elif el.tag == "rsc_colocation":
                    self.colocation(el, colos)
                elif el.tag == "rsc_order":
                    self.order(el, orders)
        return locs, colos, orders

    def location(self, el: Element, node_names: set[str], out: list[LocationSpec]) -> None:
        if el.attrib.get("rsc-pattern"):
            raise Unsupported("rsc-pattern")
        rsc = self.ref(el.attrib.get("rsc"))
        role = role_of(el.attrib.get("role"))
        if rsc is None:
            return
        node = el.attrib.get("node")
        if node is not None:
            raw = el.attrib.get("score")
            if raw is None or node not in node_names or not self.check_role(rsc, role):
                return  # dropped by the importer
            out.append(LocationSpec(rsc, _score(raw), node, None, role))
            return
        rules = el.findall("rule")
        if not rules:
            return
        found = False
        for rule in rules:
            if "id-ref" in rule.attrib:
                raise Unsupported("a rule with id-ref")
            parsed = rule_of(rule)
            if parsed is None:
                continue
            score, rule_spec, rule_role = parsed
            if not self.check_role(rsc, rule_role or role):
                continue
            out.append(LocationSpec(rsc, score, None, rule_spec, rule_role or role))
            found = True
        if not found:
            return

    def colocation(self, el: Element, out: list[ColocationSpec]) -> None:
        if el.attrib.get("from") is not None or el.attrib.get("to") is not None:
            raise Unsupported("Heartbeat 2 colocation (from/to)")
        attr = el.attrib.get("node-attribute") or el.attrib.get("node_attribute")
        if attr and attr != "#uname":
            raise Unsupported("node-attribute")
        raw = el.attrib.get("score")
        score = INFINITY if raw is None else _score(raw)
        dep, primary = self.ref(el.attrib.get("rsc")), self.ref(el.attrib.get("with-rsc"))
        dep_role = role_of(_first(el, "rsc-role", "from_role", "from-role"))
        primary_role = role_of(_first(el, "with-rsc-role", "to_role", "to-role"))
        if dep is None or primary is None or dep == primary:
            return
        if not self.check_role(dep, dep_role) or not self.check_role(primary, primary_role):
            return
        out.append(ColocationSpec(dep, primary, score, dep_role, primary_role))

    def order(self, el: Element, out: list[OrderSpec]) -> None:
        if el.attrib.get("first") is None and el.attrib.get("then") is None:
            raise Unsupported("Heartbeat 2 order (from/to)")
        kind = (el.attrib.get("kind") or "").strip().lower()
        if not kind:
            raw = el.attrib.get("score")
            kind = "optional" if raw is not None and _score(raw) == 0 else "mandatory"
        elif kind not in ("mandatory", "optional", "serialize"):
            raise Unsupported(f"order kind {kind!r}")
        if kind == "mandatory" and el.attrib.get("require-all") is not None and not pcmk_bool(el.attrib.get("require-all", "")):
            kind = "optional"  # as the importer: "any instance of first" is no hard order in havm
        sym = el.attrib.get("symmetrical")
        first_action = _action(el.attrib.get("first-action") or "start")
        then_action = _action(el.attrib.get("then-action") or first_action)
        first, then = self.ref(el.attrib.get("first")), self.ref(el.attrib.get("then"))
        if first is None or then is None or first == then:
            return
        symmetrical = pcmk_bool(sym) if sym is not None else kind != "serialize"
        out.append(OrderSpec(first, then, kind, symmetrical, first_action, then_action))

    # -- all of it -------------------------------------------------------------------------------
    def spec(self) -> ClusterSpec:
        props = self.properties()
        defaults = self.defaults()
        nodes = self.nodes()
        stickiness = defaults.get("stickiness")
        self.resources(defaults, int(stickiness if stickiness is not None else props.get("stickiness", 0)))  # type: ignore[call-overload]
        locs, colos, orders = self.constraints({n.name for n in nodes})
        return ClusterSpec(
            nodes, frozen_map(self.prims), frozen_map(self.groups), frozen_map(self.clones), tuple(self.top),
            tuple(locs), tuple(colos), tuple(orders),
            PropertiesSpec(str(props.get("no_quorum_policy", "stop")), bool(props.get("fencing_enabled", True)),
                           bool(props.get("symmetric_cluster", True)), bool(props.get("maintenance_mode", False)),
                           str(props.get("placement_strategy", "default"))))


def _first(el: Element, *names: str) -> str | None:
    for n in names:
        v = el.attrib.get(n)
        if v is not None:
            return v
    return None


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Unsupported(f"utilization {value!r}") from None


def _score(raw: str) -> int:
    try:
        return pcmk_score(raw)
    except ValueError:
        raise Unsupported(f"score {raw!r}") from None


def _action(raw: str) -> str:
    a = norm(raw)
    if a not in ("start", "promote"):
        raise Unsupported(f"order action {raw!r}")
    return a


def _meta(pairs: dict[str, str], clone: dict[str, object] | None) -> dict[str, object]:
    """Meta values (as the importer's ``convert_meta``); clone options go into ``clone``."""
    meta: dict[str, object] = {}
    for name, value in pairs.items():
        key = norm(name)
        if key in META_OPTIONS:
            field, conv = META_OPTIONS[key]
            target = meta
        elif clone is not None and key in CLONE_OPTIONS:
            field, conv = CLONE_OPTIONS[key]
            target = clone
        else:
            continue  # an option havm does not have (the importer reports it)
        if key == "target-role" and value.strip().lower() in ("default", "#default"):
            continue
        try:
            target[field] = conv(value)
        except ValueError:
            continue  # the importer drops a value it cannot read (and reports it)
    return meta


__all__ = ["Unsupported", "load_cib_spec"]
