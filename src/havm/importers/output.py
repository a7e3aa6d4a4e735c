"""Shared by the importers: ids, node addresses, and the validated YAML output.

Placeholder addresses. Neither a CIB nor an ``ha.cf`` with ``bcast eth0`` says
which address a node has on a heartbeat link, but our config needs one per node
and link. Unless ``--address NODE=IP[,IP...]`` gives it, the importer writes a
placeholder from 198.18.0.0/15, the range RFC 2544 reserves for benchmarking
(never routed, never a real host): link ``i`` (0-based), node ``k`` (0-based)
gets ``198.18.0.0 + 8192*i + k + 1``, so the first link's nodes are 198.18.0.1,
198.18.0.2, ... and the second link's 198.18.32.1, ... Each placeholder is
marked ``# PLACEHOLDER`` in the YAML and listed in the report as a warning.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from havm.config.load import parse_config_text
from havm.config.resources import INFINITY
from havm.config.schema import ClusterConfig
from havm.errors import ConfigError, UsageError
from havm.importers.cibxml import havm_id  # noqa: F401  (re-exported: the importers' id mapping)
from havm.importers.report import ImportFailed, ImportReport

PLACEHOLDER_NET = ipaddress.IPv4Network("198.18.0.0/15")
PLACEHOLDER_STRIDE = 8192


def placeholder_address(link_index: int, node_index: int) -> str:
    if not 0 <= node_index < PLACEHOLDER_STRIDE - 1 or not 0 <= link_index < 16:
        raise ImportFailed("", None, f"too many nodes or links for placeholder addresses "
                                     f"(node {node_index + 1}, link {link_index + 1})")
    base = int(PLACEHOLDER_NET.network_address)
    return str(ipaddress.IPv4Address(base + PLACEHOLDER_STRIDE * link_index + node_index + 1))


def is_placeholder(address: str) -> bool:
    try:
        return ipaddress.IPv4Address(address) in PLACEHOLDER_NET
    except ValueError:
        return False


def parse_address_options(options: Sequence[str]) -> dict[str, list[str]]:
    """``["n1=10.0.0.1", "n2=10.0.0.2,10.1.0.2"]`` -> {"n1": [...], "n2": [...]}.

    Several addresses are for several links, in the order the links are written.
    """
    out: dict[str, list[str]] = {}
    for opt in options:
        node, sep, addrs = opt.partition("=")
        node = node.strip()
        if not sep or not node or not addrs.strip():
            raise UsageError(f"--address {opt!r}: expected NODE=IP or NODE=IP1,IP2 (one per link)")
        ips = [a.strip() for a in addrs.split(",")]
        for ip in ips:
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                raise UsageError(f"--address {opt!r}: {ip!r} is not an IPv4 address such as 10.0.0.1") from None
        if node in out:
            raise UsageError(f"--address {opt!r}: node {node!r} is given twice")
        out[node] = ips
    return out


def format_duration(seconds: float) -> str:
    """30.0 -> '30s', 0.5 -> '500ms', 90 -> '90s' (our config reads all of them)."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    ms = seconds * 1000
    if float(ms).is_integer() or abs(ms - round(ms)) < 1e-6:
        return f"{int(round(ms))}ms"
    return f"{seconds:g}"


def format_score(score: int) -> int | str:
    if score >= INFINITY:
        return "INFINITY"
    if score <= -INFINITY:
        return "-INFINITY"
    return score


def assign_addresses(nodes: Sequence[str], links: Sequence[str], given: Mapping[str, Sequence[str]],
                     known: Mapping[tuple[str, str], str], report: ImportReport,
                     file: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Each node's address on each link, and the placeholders used.

    Priority: ``given`` (from --address, by link order), then ``known`` (found in
    the input, keyed (node, link)), then a placeholder. Unknown names in
    ``given`` are a usage error: a typo must not go unnoticed.
    """
    unknown = sorted(set(given) - set(nodes))
    if unknown:
        raise UsageError(f"--address names unknown node(s) {', '.join(unknown)}; "
                         f"nodes are: {', '.join(nodes)}")
    result: dict[str, dict[str, str]] = {}
    placeholders: list[str] = []
    for k, node in enumerate(nodes):
        addrs: dict[str, str] = {}
        opts = list(given.get(node, ()))
        if len(opts) > len(links):
            raise UsageError(f"--address {node}: {len(opts)} addresses for {len(links)} link(s) "
                             f"({', '.join(links)})")
        for i, link in enumerate(links):
            if i < len(opts):
                addrs[link] = opts[i]
            elif (node, link) in known:
                addrs[link] = known[(node, link)]
            else:
                addr = placeholder_address(i, k)
                addrs[link] = addr
                placeholders.append(addr)
        result[node] = addrs
    if placeholders:
        report.warn(file, None, "node addresses",
                    f"{len(placeholders)} address(es) are placeholders from 198.18.0.0/15 (marked "
                    "# PLACEHOLDER): the input does not say which address each node has on each link; "
                    "set them, or import again with --address NODE=IP[,IP...]")
    return result, placeholders


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: large CIBs
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def render_yaml(document: Mapping[str, object], header: Iterable[str], placeholders: Iterable[str]) -> str:
    """YAML text with a comment header and each placeholder address marked."""
    body = yaml.dump(dict(document), Dumper=_DUMPER, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)
    marks = set(placeholders)
    if marks:
        out = []
        section = ""
        for line in body.splitlines():
            if line[:1].isalpha():
                section = line.split(":", 1)[0]
            key, sep, value = line.rpartition(": ")
            if section == "nodes" and sep and value.strip() in marks:
                line += "  # PLACEHOLDER: set this node's real address on this link"
            out.append(line)
        body = "\n".join(out) + "\n"
    head = "".join(f"# {h}\n" if h else "#\n" for h in header)
    return head + body


def finish(document: dict[str, Any], header: Iterable[str], placeholders: Iterable[str], file: str,
           render: bool = True) -> tuple[str, ClusterConfig]:
    """Validate ``document`` with havm's schema and render it; ("", config) without ``render``.

    The same checks as ``havm config validate``: the document is validated with
    ``ClusterConfig`` and the YAML written must read back as that same document.
    A failure is an importer bug (it produced something our schema refuses); it is
    reported with every issue, located in the YAML, and nothing is written.
    """
    placeholders = list(placeholders)
    try:
        config = ClusterConfig.model_validate(document)
    except ValidationError:
        text = render_yaml(document, header, placeholders)
        try:
            parse_config_text(text, file)  # for issues with file, line and field
        except ConfigError as e:
            raise ImportFailed(file, None, "the imported configuration does not validate (an importer bug, "
                                           "please report it with the input):\n" + str(e)) from None
        raise
    if not render:
        return "", config
    text = render_yaml(document, header, placeholders)
    if yaml.load(text, Loader=_LOADER) != document:
        raise ImportFailed(file, None, "the YAML written does not read back as the imported configuration "
                                       "(an importer bug, please report it with the input)")
    return text, config
