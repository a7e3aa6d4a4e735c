"""Operator changes as edits of the configuration text, keeping its comments.

``havm resource stop vm1`` is a configuration change like any other (as
Pacemaker's crm_resource edits the CIB): it goes through the controller, gets
an epoch, survives restarts, and shows in ``havm config show``. Edits keep the
operator's comments and layout (ruamel.yaml round trip).

Constraints the CLI creates carry an id: ``cli-prefer-<rsc>`` (move, migrate)
and ``cli-ban-<rsc>-<node>`` (ban); ``clear`` removes exactly those.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from havm.errors import NotFound, UsageError


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096
    return y


def _load(text: str) -> Any:
    return _yaml().load(text)


def _dump(doc: Any) -> str:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def keep_comment_lines(old: str, new: str) -> str:
    """``new`` with every whole-line comment of ``old`` that it lost put back.

    ruamel.yaml keeps a comment line with the node before it: removing that node (the
    last constraint, the whole ``constraints:`` section on ``clear``) dropped the comment
    too, such as a section header for the next key or a note the operator appended at
    the end. A lost comment goes back before the next line of ``old`` that ``new`` still
    has exactly once (the end of the text if none), in its order, with its indentation.
    """
    new_lines = new.splitlines()
    left = Counter(line for line in new_lines if _is_comment(line))  # comments still there
    old_lines = old.splitlines()
    in_old, in_new = Counter(old_lines), Counter(new_lines)
    lost: list[tuple[str | None, str]] = []
    for i, line in enumerate(old_lines):
        if not _is_comment(line):
            continue
        if left[line] > 0:
            left[line] -= 1
            continue
        anchor = next((a for a in old_lines[i + 1:] if a.strip() and not _is_comment(a)
                       and in_old[a] == 1 and in_new[a] == 1), None)
        lost.append((anchor, line))
    if not lost:
        return new
    out: list[str] = []
    for line in new_lines:
        out += [c for a, c in lost if a == line]
        out.append(line)
    out += [c for a, c in lost if a is None]
    return "\n".join(out) + "\n"


def _find_resource(doc: Any, rsc: str) -> Any:
    """The mapping that defines ``rsc`` (a primitive, group or clone)."""
    def walk(items: Any) -> Any:
        for item in items or []:
            if not isinstance(item, dict):
                continue
            if item.get("id") == rsc or item.get("group") == rsc or item.get("clone") == rsc:
                return item
            if "resources" in item:
                found = walk(item["resources"])
                if found is not None:
                    return found
            if "resource" in item:
                found = walk([item["resource"]])
                if found is not None:
                    return found
        return None

    found = walk(doc.get("resources"))
    if found is None:
        raise NotFound(f"no resource {rsc!r} in the configuration")
    return found


def _find_node(doc: Any, node: str) -> Any:
    for n in doc.get("nodes") or []:
        if isinstance(n, dict) and n.get("name") == node:
            return n
    raise NotFound(f"no node {node!r} in the configuration")


def _set_meta(item: Any, key: str, value: Any) -> None:
    meta = item.get("meta")
    if meta is None:
        meta = CommentedMap()
        item["meta"] = meta
    if value is None:
        meta.pop(key, None)
        if not meta:
            del item["meta"]
    else:
        meta[key] = value


def _constraints(doc: Any) -> Any:
    if doc.get("constraints") is None:
        doc["constraints"] = []
    return doc["constraints"]


def _drop_constraints(doc: Any, pred: Any) -> int:
    cons = doc.get("constraints") or []
    keep = [c for c in cons if not pred(c)]
    removed = len(cons) - len(keep)
    if removed:
        cons[:] = keep
    return removed


def _location(rsc: str, cid: str, node: str, score: str) -> CommentedMap:
    m = CommentedMap()
    m["location"] = rsc
    m["id"] = cid
    m["node"] = node
    m["score"] = score
    m.fa.set_flow_style()
    return m


def edit(text: str, op: str, target: str, node: str | None = None) -> str:
    """Apply one operator change to the configuration ``text``; returns the new text.

    ops: resource-start, resource-stop, resource-move, resource-ban, resource-clear,
    resource-manage, resource-unmanage, node-standby, node-online, node-maintenance,
    node-unmaintenance. Idempotent: applying twice gives the same text.
    """
    doc = _load(text)
    if not isinstance(doc, dict):
        raise UsageError("the configuration is not a mapping")
    if op.startswith("resource-"):
        item = _find_resource(doc, target)
        if op == "resource-start":
            _set_meta(item, "target_role", None)
        elif op == "resource-stop":
            _set_meta(item, "target_role", "stopped")
        elif op == "resource-manage":
            _set_meta(item, "is_managed", None)
        elif op == "resource-unmanage":
            _set_meta(item, "is_managed", False)
        elif op in ("resource-move", "resource-ban"):
            if not node:
                raise UsageError(f"{op[len('resource-'):]} needs a node")
            _find_node(doc, node)
            # a move replaces the resource's one preference; a ban is one per node
            cid, score = ((f"cli-prefer-{target}", "INFINITY") if op == "resource-move"
                          else (f"cli-ban-{target}-{node}", "-INFINITY"))
            _drop_constraints(doc, lambda c: isinstance(c, dict) and c.get("id") == cid)
            _constraints(doc).append(_location(target, cid, node, score))
        elif op == "resource-clear":
            ids = (f"cli-prefer-{target}", f"cli-ban-{target}-")
            _drop_constraints(doc, lambda c: isinstance(c, dict) and isinstance(c.get("id"), str)
                              and (c["id"] == ids[0] or c["id"].startswith(ids[1])))
            if doc.get("constraints") == []:
                del doc["constraints"]
        else:
            raise UsageError(f"unknown resource operation {op!r}")
    elif op.startswith("node-"):
        n = _find_node(doc, target)
        if op == "node-standby":
            n["standby"] = True
        elif op == "node-online":
            n.pop("standby", None)
        elif op == "node-maintenance":
            n["maintenance"] = True
        elif op == "node-unmaintenance":
            n.pop("maintenance", None)
        else:
            raise UsageError(f"unknown node operation {op!r}")
    else:
        raise UsageError(f"unknown operation {op!r}")
    return keep_comment_lines(text, _dump(doc))
