"""Reading Pacemaker CIB XML of every era, remembering where each element came from.

One ``CibInput`` holds one or more parsed files. It answers the questions the
importers ask, the same way for Pacemaker 2.x/3.x XML and for Heartbeat-2-era
XML:

- name/value pairs of a set (``instance_attributes``, ``meta_attributes``,
  ``utilization``, ``cluster_property_set``), whether the pairs sit directly in
  the set (today) or in an ``<attributes>`` block (Heartbeat 2), with
  ``id-ref`` references resolved;
- option names normalised (``target_role`` and ``target-role`` are one option);
- where an element is (``file:line``), for the report.

A file may also be a snippet from a guide: a single ``<primitive>``, several
top-level elements with no common root, a ``<configuration>`` or a
``<resources>`` block. Several top-level elements are read by wrapping them in
a ``<snippet>`` root (line numbers are kept).
"""

from __future__ import annotations

import bisect
import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

TYPE_CHECKING = False  # no typing/dataclasses at run time: havm simulate reads CIBs through this module
if TYPE_CHECKING:
    from havm.importers.report import ImportReport

INFINITY = 1_000_000  # Pacemaker's score INFINITY (the config's is the same number)

SET_TAGS = ("instance_attributes", "meta_attributes", "utilization", "cluster_property_set")
RESOURCE_TAGS = ("primitive", "group", "clone", "master", "master_slave", "bundle", "template")
CONTAINER_TAGS = ("group", "clone", "master", "master_slave", "bundle")
CONSTRAINT_TAGS = ("rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket")

# Patterns the fast CIB path (cib_spec) never uses stay strings, compiled on first use
# through re's cache: compiling them all at import cost havm simulate ~2 ms per run.
_XML_DECL = r"(?s)^\s*<\?xml[^>]*\?>"
_MASK = r"(?s)<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"
_DOCTYPE = r"(?s)<!DOCTYPE[^>\[]*(\[[^\]]*\])?\s*>"


def norm(name: str) -> str:
    """Option name in today's spelling: ``target_role`` -> ``target-role``."""
    return name.strip().lower().replace("_", "-")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_BAD = r"[^A-Za-z0-9_.-]"


def is_havm_id(raw: str) -> bool:
    """Is ``raw`` already a valid havm name (so ``havm_id`` keeps it as it is)?"""
    return _NAME.match(raw) is not None


def havm_id(raw: str) -> str:
    """A havm name for a foreign id: invalid characters become '-', at most 63 long.

    Deterministic (no uniqueness suffix), so the state loader maps status ids the
    same way the config importer maps configuration ids.
    """
    if _NAME.match(raw):
        return raw
    fixed = re.sub(_BAD, "-", raw)
    if not fixed or not fixed[0].isalnum():
        fixed = "r" + fixed
    return fixed[:63]


class _Source:
    """One parsed file: where its elements start in ``CibInput.position``, and its text."""

    def __init__(self, first: int, file: str, text: str) -> None:
        self.first = first
        self.file = file
        self.text = text  # as parsed (a rootless snippet wrapped in <snippet>, lines unchanged)
        self.lines: dict[ET.Element, int] = {}
        self.done_tags: set[str] = set()
        self.masked: str | None = None
        self.newlines: list[int] | None = None  # offsets of every newline in ``masked``


class CibInput:
    """Parsed input files plus, for each element, its file, line, parent and position.

    Indexed once after parsing (by tag, by id, parent, document position), so that
    a 10,000-resource CIB is not walked again for every question. The C parser
    keeps no line numbers; ``where`` finds an element's line only when a report
    asks for it: the k-th ``<tag`` of a file (comments and CDATA masked) is the
    k-th element with that tag.
    """

    def __init__(self) -> None:
        self.roots: list[ET.Element] = []
        self.parent_of: dict[ET.Element, ET.Element] = {}
        self.by_id: dict[str, ET.Element] = {}
        self.by_tag: dict[str, list[ET.Element]] = {}
        self.position: dict[ET.Element, int] = {}
        self.sources: list[_Source] = []

    def add_text(self, text: str, file: str) -> ET.Element:
        root, parsed = _parse(text, file)
        self.sources.append(_Source(len(self.position), file, parsed))
        self.add_element(root)
        return root

    def add_element(self, root: ET.Element) -> None:
        parent_of, by_id, position, by_tag = self.parent_of, self.by_id, self.position, self.by_tag
        n = len(position)
        for el in root.iter():
            position[el] = n
            n += 1
            tagged = by_tag.get(el.tag)
            if tagged is None:
                by_tag[el.tag] = [el]
            else:
                tagged.append(el)
            for child in el:
                parent_of[child] = el
            ident = el.get("id")
            if ident and el.tag != "lrm_rsc_op" and el.get("id-ref") is None and ident not in by_id:
                by_id[ident] = el
        self.roots.append(root)

    def where(self, el: ET.Element) -> tuple[str, int | None]:
        pos = self.position.get(el)
        if pos is None or not self.sources:
            return "", None
        src = self.sources[bisect.bisect_right([s.first for s in self.sources], pos) - 1]
        if el.tag not in src.done_tags:
            self._locate(src, el.tag)
        return src.file, src.lines.get(el)

    def _locate(self, src: _Source, tag: str) -> None:
        src.done_tags.add(tag)
        if src.masked is None:
            src.masked = re.sub(_MASK, lambda m: re.sub(r"[^\n]", " ", m.group(0)), src.text)
        end = next((s.first for s in self.sources if s.first > src.first), len(self.position))
        elements = [e for e in self.by_tag.get(tag, ()) if src.first <= self.position[e] < end]
        offsets = [m.start() for m in re.finditer(rf"<{re.escape(tag)}[\s/>]", src.masked)]
        if len(offsets) != len(elements):
            return  # an odd file (entities?): no line rather than a wrong one
        if src.newlines is None:
            src.newlines = [m.start() for m in re.finditer("\n", src.masked)]
        for el, off in zip(elements, offsets, strict=True):
            src.lines[el] = bisect.bisect_left(src.newlines, off) + 1

    def parent(self, el: ET.Element) -> ET.Element | None:
        return self.parent_of.get(el)

    def iter(self, *tags: str) -> list[ET.Element]:
        """Every element with one of ``tags``, in document order (files in the order given)."""
        if len(tags) == 1:
            return list(self.by_tag.get(tags[0], ()))
        found = [el for tag in tags for el in self.by_tag.get(tag, ())]
        found.sort(key=self.position.__getitem__)
        return found

    def in_status(self, el: ET.Element) -> bool:
        p = self.parent(el)
        while p is not None:
            if p.tag == "status":
                return True
            p = self.parent(p)
        return False

    def resolve(self, el: ET.Element, report: ImportReport) -> ET.Element | None:
        """Follow ``id-ref``; None (reported) if the target is missing."""
        ref = el.get("id-ref")
        if ref is None:
            return el
        target = self.by_id.get(ref)
        if target is None or target.tag != el.tag:
            file, line = self.where(el)
            report.drop(file, line, describe(el), f"id-ref {ref!r} names no <{el.tag}> in the input")
            return None
        return target

    def nvpairs(self, owner: ET.Element, set_tag: str, report: ImportReport) -> dict[str, tuple[str, ET.Element]]:
        """Name -> (value, nvpair element) from ``owner``'s ``set_tag`` children.

        Sets with a ``<rule>`` apply only sometimes (a node attribute, a date):
        havm has no conditional options, so such sets are reported and skipped.
        The first value of a name wins, as in Pacemaker for sets without scores.
        """
        out: dict[str, tuple[str, ET.Element]] = {}
        for raw_set in owner.findall(set_tag):
            nvset = self.resolve(raw_set, report)
            if nvset is None:
                continue
            if nvset.find("rule") is not None:
                file, line = self.where(raw_set)
                report.drop(file, line, describe(raw_set),
                            "a set that applies only when its <rule> matches: havm options are unconditional")
                continue
            pairs = list(nvset.findall("nvpair"))
            for attrs in nvset.findall("attributes"):  # Heartbeat 2: <attributes><nvpair/></attributes>
                pairs.extend(attrs.findall("nvpair"))
            for raw_pair in pairs:
                pair = self.resolve(raw_pair, report)
                if pair is None:
                    continue
                name, value = pair.get("name"), pair.get("value")
                if name is None or value is None:
                    file, line = self.where(raw_pair)
                    report.drop(file, line, describe(raw_pair), "an nvpair needs both 'name' and 'value'")
                    continue
                out.setdefault(name, (value, raw_pair))
        return out


_SECRET = r"(?i)pass|secret|key|token|community"


def shown(name: str, value: str) -> str:
    """``name=value`` for the report, with the value hidden when the name says it is a secret."""
    return f"{name}=***" if re.search(_SECRET, name) else f"{name}={value}"


def describe(el: ET.Element) -> str:
    """``<rsc_order id="o1">``: how the report names an element."""
    for key in ("id", "name", "uname", "id-ref"):
        if el.get(key) is not None:
            return f'<{el.tag} {key}="{el.get(key)}">'
    return f"<{el.tag}>"


def _parse(text: str, file: str) -> tuple[ET.Element, str]:
    """The tree, and the text that was parsed (wrapped in <snippet> if it had several roots)."""
    # imported here, not at the top: havm simulate reads CIBs without the report's classes
    from havm.importers.report import ImportFailed

    try:
        return _parse_once(text), text
    except ET.ParseError as e:
        if "junk after document element" not in str(e):
            raise ImportFailed(file, e.position[0], f"not well-formed XML: {_message(e)} "
                                                    f"(column {e.position[1] + 1})") from None
    # Several top-level elements (a guide's snippet): wrap them, keeping line numbers.
    body = re.sub(_XML_DECL, lambda m: "\n" * m.group(0).count("\n"), text, count=1)
    body = re.sub(_DOCTYPE, lambda m: "\n" * m.group(0).count("\n"), body, count=1)
    wrapped = "<snippet>" + body + "</snippet>"
    try:
        return _parse_once(wrapped), wrapped
    except ET.ParseError as e:
        raise ImportFailed(file, e.position[0], f"not well-formed XML: {_message(e)}") from None


def _message(e: ET.ParseError) -> str:
    return str(e).split(":")[0]


def _parse_once(text: str) -> ET.Element:
    # The C parser (expat underneath): no entity can reach outside the file, as
    # expat fetches no external entities and expands none it was not given.
    parser = ET.XMLParser()
    parser.feed(text)
    return parser.close()


# --- values in Pacemaker's syntax --------------------------------------------

_TRUE = {"true", "on", "yes", "y", "1"}
_FALSE = {"false", "off", "no", "n", "0"}


def pcmk_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false, yes/no, on/off, 1/0), got {value!r}")


@functools.lru_cache(maxsize=4096)  # a large CIB repeats a few values thousands of times
def pcmk_score(value: str) -> int:
    v = value.strip().lower()
    if v in ("infinity", "+infinity"):
        return INFINITY
    if v == "-infinity":
        return -INFINITY
    if re.fullmatch(r"[+-]?\d+", v):
        return max(-INFINITY, min(INFINITY, int(v)))
    raise ValueError(f"expected a score (an integer, INFINITY or -INFINITY), got {value!r}")


_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "secs": 1.0, "ms": 0.001, "msec": 0.001, "msecs": 0.001,
          "us": 1e-6, "usec": 1e-6, "m": 60.0, "min": 60.0, "mins": 60.0, "h": 3600.0, "hr": 3600.0,
          "hrs": 3600.0}
_ISO = r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"


@functools.lru_cache(maxsize=4096)
def pcmk_interval(value: str) -> float:
    """Seconds from Pacemaker's interval syntax: ``30``, ``30s``, ``10min``, ``1h``, ``500ms``, ``PT1M``."""
    v = value.strip().lower()
    if v == "":
        return 0.0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", v)
    if m and m.group(2) in _UNITS:
        return float(m.group(1)) * _UNITS[m.group(2)]
    iso = re.match(_ISO, value.strip().upper())
    if iso and any(iso.groups()):
        d, h, mi, s = (float(g) if g else 0.0 for g in iso.groups())
        return d * 86400 + h * 3600 + mi * 60 + s
    loose = re.fullmatch(r"P(\d+)([HS])", value.strip().upper())  # 'P10S': Pacemaker reads it, so do we
    if loose:
        return float(loose.group(1)) * (3600.0 if loose.group(2) == "H" else 1.0)
    raise ValueError(f"expected an interval such as 30s, 10min, 1h, 500ms or PT1M, got {value!r}")


def pcmk_int(value: str) -> int:
    """An integer, also written as ``2.0`` (Pacemaker's own tests do)."""
    v = value.strip()
    try:
        return int(v)
    except ValueError:
        f = float(v)  # raises ValueError with the value in it
        if not f.is_integer():
            raise ValueError(f"expected an integer, got {value!r}") from None
        return int(f)


def pcmk_role(value: str) -> str | None:
    """Our role name for Pacemaker's (old and new spellings); None if havm has no equivalent."""
    return {"started": "started", "master": "promoted", "promoted": "promoted", "slave": "unpromoted",
            "unpromoted": "unpromoted"}.get(value.strip().lower())


def _int(v: str) -> int:
    try:
        return pcmk_int(v)
    except ValueError:
        raise ValueError(f"expected an integer, got {v!r}") from None


def _migration_threshold(v: str) -> int:
    n = pcmk_score(v)
    if n < 0:
        raise ValueError(f"expected 0 or more, got {v!r}")
    return n


def _target_role(v: str) -> str:
    role = pcmk_role(v) or ("stopped" if v.strip().lower() == "stopped" else None)
    if role is None:
        raise ValueError(f"expected Started, Stopped, Promoted or Unpromoted, got {v!r}")
    return role


#: meta option -> (our Meta field, converter to its value: scores as int, durations in seconds)
META_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "resource-stickiness": ("stickiness", pcmk_score),
    "migration-threshold": ("migration_threshold", _migration_threshold),
    "failure-timeout": ("failure_timeout", pcmk_interval),
    "allow-migrate": ("allow_migrate", pcmk_bool),
    "target-role": ("target_role", _target_role),
    "priority": ("priority", _int),
    "is-managed": ("is_managed", pcmk_bool),
}
#: clone option -> (our Clone field, converter)
CLONE_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "clone-max": ("clone_max", _int), "clone-node-max": ("clone_node_max", _int),
    "globally-unique": ("globally_unique", pcmk_bool), "interleave": ("interleave", pcmk_bool),
    "promotable": ("promotable", pcmk_bool),
    "promoted-max": ("promoted_max", _int), "master-max": ("promoted_max", _int),
    "promoted-node-max": ("promoted_node_max", _int), "master-node-max": ("promoted_node_max", _int),
}
#: meta options havm does not have, and why
META_WHY_NOT = {
    "notify": "havm sends no clone notifications (pre/post start/stop events to every instance)",
    "ordered": "havm starts clone instances in parallel",
    "multiple-active": "havm always recovers a resource found active twice by stopping it everywhere and "
                       "starting it once",
    "requires": "havm decides from the fencing configuration what a start requires",
    "resource-failure-stickiness": "Heartbeat 2's failure stickiness has no exact equivalent; "
                                   "use meta.migration_threshold",
    "restart-type": "Heartbeat 2's restart_type has no havm equivalent",
    "description": "descriptions are not kept",
    "critical": "havm has no per-resource 'critical' option",
    "collocated": "havm groups are always colocated",
    "remote-node": "guest and remote nodes (a resource that is also a node) are not supported",
    "container": "guest and remote nodes (a resource that is also a node) are not supported",
    "remote-allow-migrate": "guest and remote nodes (a resource that is also a node) are not supported",
    "clone-min": "havm has no clone-min (ordering on a minimum number of instances)",
    "provides": "unfencing is configured in havm's fencing section",
    "maintenance": "per-resource maintenance: use is_managed: false",
}
#: Heartbeat 2 put these meta options among a resource's instance_attributes
HB2_META_NAMES = set(META_OPTIONS) | set(CLONE_OPTIONS) | set(META_WHY_NOT)
#: cluster property -> (our properties field, converter to its value)
PROPERTY_OPTIONS: dict[str, tuple[str, Callable[[str], object]]] = {
    "stonith-enabled": ("fencing_enabled", pcmk_bool),
    "fencing-enabled": ("fencing_enabled", pcmk_bool),
    "symmetric-cluster": ("symmetric_cluster", pcmk_bool),
    "maintenance-mode": ("maintenance_mode", pcmk_bool),
    "no-quorum-policy": ("no_quorum_policy", str),
    "placement-strategy": ("placement_strategy", str),
    "default-resource-stickiness": ("stickiness", pcmk_score),
}
PROPERTY_VALUES = {"no_quorum_policy": ("stop", "freeze", "ignore", "demote"),
                   "placement_strategy": ("default", "utilization", "balanced", "minimal")}
