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
import re
import xml.etree.ElementTree as ET

# Pacemaker's value syntax lives in pcmk_values (no imports: havm simulate's lean
# reader uses it without this module); re-exported here for the importers.
from havm.importers.pcmk_values import (  # noqa: F401
    CLONE_OPTIONS,
    HB2_META_NAMES,
    INFINITY,
    META_OPTIONS,
    META_WHY_NOT,
    PROPERTY_OPTIONS,
    PROPERTY_VALUES,
    havm_id,
    is_havm_id,
    norm,
    pcmk_bool,
    pcmk_int,
    pcmk_interval,
    pcmk_role,
    pcmk_score,
)

TYPE_CHECKING = False  # no typing/dataclasses at run time (the full importer's start-up)
if TYPE_CHECKING:
    from havm.importers.report import ImportReport

SET_TAGS = ("instance_attributes", "meta_attributes", "utilization", "cluster_property_set")
RESOURCE_TAGS = ("primitive", "group", "clone", "master", "master_slave", "bundle", "template")
CONTAINER_TAGS = ("group", "clone", "master", "master_slave", "bundle")
CONSTRAINT_TAGS = ("rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket")

# Patterns that only some inputs need stay strings, compiled on first use through
# re's cache: compiling them all at import would cost every import ~2 ms.
_XML_DECL = r"(?s)^\s*<\?xml[^>]*\?>"
_MASK = r"(?s)<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"
_DOCTYPE = r"(?s)<!DOCTYPE[^>\[]*(\[[^\]]*\])?\s*>"


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
