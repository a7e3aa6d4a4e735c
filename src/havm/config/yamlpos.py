"""YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers and silently lets a duplicate key
override an earlier one. Operators need "cluster.yaml:12: nodes[1].addresses.ring0:
expected an IPv4 address", so we compose the node tree ourselves and keep a map
from each value's path (a tuple of keys and list indexes) to its 1-based line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from havm.errors import ConfigError, ConfigIssue

Path = tuple[str | int, ...]


@dataclass
class Located:
    """A loaded document plus the line of every path in it."""

    data: Any
    file: str
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


_SCALARS = yaml.SafeLoader("")  # used only to construct scalars with YAML 1.1 safe tags


def _scalar(node: yaml.Node) -> Any:
    return _SCALARS.construct_object(node, deep=True)


def _build(node: yaml.Node, path: Path, out: Located, issues: list[ConfigIssue]) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                issues.append(ConfigIssue(out.file, key_node.start_mark.line + 1,
                                          _fmt(path), "YAML merge keys (<<) are not supported"))
                continue
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int):
                issues.append(ConfigIssue(out.file, key_node.start_mark.line + 1, _fmt(path),
                                          "mapping keys must be plain strings"))
                continue
            if key in result:
                issues.append(ConfigIssue(out.file, key_node.start_mark.line + 1, _fmt(path + (key,)),
                                          f"duplicate key (first given on line {out.lines[path + (key,)]})"))
                continue
            out.lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, path + (key,), out, issues)
            # keep the key's line: errors about a value read best on the key's line
            out.lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), out, issues) for i, item in enumerate(node.value)]
    return _scalar(node)


def _fmt(path: Path) -> str:
    return format_path(path)


def format_path(path: Path) -> str:
    """``("nodes", 1, "addresses", "ring0")`` -> ``nodes[1].addresses.ring0``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_yaml_text(text: str, file: str) -> Located:
    """Parse ``text``; raise ConfigError listing every structural problem."""
    out = Located(data=None, file=file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError([ConfigIssue(file, line, "", f"not valid YAML: {e.problem or e}")]) from None
    except yaml.YAMLError as e:
        raise ConfigError([ConfigIssue(file, None, "", f"not valid YAML: {e}")]) from None
    if root is None:
        out.data = {}
        return out
    issues: list[ConfigIssue] = []
    out.data = _build(root, (), out, issues)
    if issues:
        raise ConfigError(issues)
    return out


def load_yaml_file(path: str) -> Located:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(path, None, "", "file not found")]) from None
    except OSError as e:
        raise ConfigError([ConfigIssue(path, None, "", f"cannot read: {e.strerror}")]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([ConfigIssue(path, None, "", f"not UTF-8 text: {e.reason}")]) from None
    return load_yaml_text(text, path)
