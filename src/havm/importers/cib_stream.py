"""A Pacemaker CIB read in one pass of pyexpat, for ``havm simulate``'s lean reader.

``read(data)`` returns the document as a small tree of ``Element`` (the part of
ElementTree's API the lean reader uses: ``tag``, ``attrib``, ``find``,
``findall``, ``iter``, iteration over children), except for what lies inside
``<status>``: its node states arrive as the status reader's ``NodeStatus``
records, built while the parser streams. The status is most of a large CIB
(one ``<lrm_rsc_op>`` of a dozen attributes per operation recorded), and an
element object per operation, walked again afterwards, would cost more than the
records the status reader needs.

Why not ``xml.etree``: importing it (with ``re``, ``enum`` and ``functools``
behind it) costs more than reading a 500-resource configuration, and its tree
is walked a second time anyway. pyexpat is the same parser underneath, set up
as ElementTree sets it up (namespace separator ``}``), so both see the same
names and values. What the lean reader would have to treat unlike ElementTree
(a DOCTYPE, whose entities and external subset ElementTree handles its own way;
Heartbeat 2 ``<attributes>``; nesting the status reader does not expect) raises
``Unsupported``, as does XML that is not well-formed: the full importer then
reads the file and says where it is broken.
"""

from __future__ import annotations

import pyexpat

from havm.importers.cib_state import NodeStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

_NONE = -9  # depth of an element that is not open


class Unsupported(Exception):
    """This CIB needs the full importer (the message says what)."""


class Element:
    """An element of the configuration tree: tag, attributes (a dict) and children, in document order."""

    __slots__ = ("tag", "attrib", "children")

    def __init__(self, tag: str, attrib: dict[str, str]) -> None:
        self.tag = tag
        self.attrib = attrib
        self.children: list[Element] = []

    def __iter__(self) -> Iterator[Element]:
        return iter(self.children)

    def find(self, tag: str) -> Element | None:
        """The first child with ``tag``."""
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def findall(self, tag: str) -> list[Element]:
        """The children with ``tag``."""
        return [child for child in self.children if child.tag == tag]

    def iter(self, tag: str) -> Iterator[Element]:
        """This element and its descendants with ``tag``, in document order."""
        if self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)


def read(data: bytes) -> tuple[Element, list[NodeStatus]]:
    """The root element, and the ``<node_state>`` records of the ``<status>`` sections under it."""
    parser = pyexpat.ParserCreate(None, "}")  # as ElementTree's XMLParser: namespaced names are uri}name
    document = Element("", {})
    stack = [document]  # open elements of the tree
    push, pop = stack.append, stack.pop
    node_states: list[NodeStatus] = []
    tags: list[str] = []  # open elements inside the <status> being read
    node: NodeStatus | None = None
    ops: list[Mapping[str, str]] = []
    transient: dict[str, str] = {}
    node_depth = rsc_depth = ta_depth = set_depth = _NONE

    def start(tag: str, attrs: dict[str, str]) -> None:
        el = Element(tag, attrs)
        stack[-1].children.append(el)
        push(el)
        if tag == "status" and len(stack) == 3:  # a <status> of the root: streamed
            tags.append(tag)
            parser.StartElementHandler, parser.EndElementHandler = status_start, status_end
        elif tag == "attributes":
            raise Unsupported("Heartbeat 2 <attributes> blocks")

    def end(tag: str) -> None:
        pop()

    # Inside <status>, as the status reader takes it from an ElementTree: every
    # node_state below it; that node_state's transient_attributes children, their
    # instance_attributes children and those sets' nvpairs; every lrm_resource
    # below the node_state, and its lrm_rsc_op children. ``*_depth`` is the depth
    # (len(tags)) of the open node_state, lrm_resource, transient_attributes and set.
    def status_start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal node, ops, transient, node_depth, rsc_depth, ta_depth, set_depth
        tags.append(tag)
        depth = len(tags)
        if tag == "lrm_rsc_op":
            if depth == rsc_depth + 1:
                ops.append(attrs)
        elif tag == "lrm_resource":
            if node is not None:
                if rsc_depth != _NONE:
                    raise Unsupported("an lrm_resource inside another")
                ops = []
                node.resources.append((attrs.get("id") or "", ops))
                rsc_depth = depth
        elif tag == "node_state":
            if node is not None:
                raise Unsupported("a node_state inside another")
            node = NodeStatus(attrs, {}, [])
            node_states.append(node)
            node_depth = depth
        elif tag == "transient_attributes":
            if depth == node_depth + 1:
                transient, ta_depth = {}, depth
        elif tag == "instance_attributes":
            if depth == ta_depth + 1:
                if "id-ref" in attrs:
                    raise Unsupported("<instance_attributes> with id-ref")
                set_depth = depth
        elif tag == "nvpair":
            if depth == set_depth + 1:
                name, value = attrs.get("name"), attrs.get("value")
                if name is None or value is None or "id-ref" in attrs:
                    raise Unsupported("an nvpair without name/value, or with id-ref")
                if name not in transient:  # the first value of a name in a block wins
                    transient[name] = value
        elif tag == "rule":
            if depth == set_depth + 1:
                raise Unsupported("<instance_attributes> with a rule")
        elif tag == "attributes":
            raise Unsupported("Heartbeat 2 <attributes> blocks")

    def status_end(tag: str) -> None:
        nonlocal node, node_depth, rsc_depth, ta_depth, set_depth
        depth = len(tags)
        tags.pop()
        if depth == rsc_depth:
            rsc_depth = _NONE
        elif depth == set_depth:
            set_depth = _NONE
        elif depth == ta_depth:
            assert node is not None
            node.transient.update(transient)  # a later block overrides an earlier one
            ta_depth = _NONE
        elif depth == node_depth:
            node, node_depth = None, _NONE
        elif not tags:  # </status>
            pop()
            parser.StartElementHandler, parser.EndElementHandler = start, end

    def doctype(*_: object) -> None:
        raise Unsupported("a DOCTYPE (its entities are read by the full importer)")

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(data, True)
    except pyexpat.ExpatError:
        raise Unsupported("not well-formed (the full importer reports where)") from None
    except LookupError:  # <?xml encoding="..."?> that Python does not know
        raise Unsupported("an unknown encoding (the full importer reads the file's text)") from None
    return document.children[0], node_states
