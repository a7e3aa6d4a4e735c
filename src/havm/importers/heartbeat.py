"""``havm import heartbeat``: a classic ``/etc/ha.d`` (ha.cf, haresources, authkeys) as cluster.yaml.

What maps to what:

- ``node`` lines -> nodes; ``bcast IFACE`` / ``mcast IFACE GROUP PORT TTL LOOP`` /
  ``ucast IFACE PEER`` -> one link per interface and kind (``udpport`` is the
  port of bcast and ucast links); ``serial`` is reported (havm links are UDP).
- ``keepalive``/``warntime``/``deadtime``/``initdead`` -> timing (Heartbeat's
  defaults, 2 s and 30 s, when absent; warntime defaults to half the deadtime
  and initdead to the deadtime; values our rules refuse are adjusted and reported).
- ``auto_failback on`` -> ``properties.auto_failback: true`` (resources go back to
  their preferred node); ``off`` (and ``nice_failback on``) -> ``false`` (they stay:
  default stickiness INFINITY);
  ``legacy`` is read as ``on`` and reported.
- ``ping``/``ping_group`` -> the ping tiebreaker's targets (what ipfail did).
- two nodes -> ``quorum.two_node`` (Heartbeat never needed a majority); without a
  ping node a lone survivor has no tiebreaker, hence no quorum: reported.
- no ``stonith``/``stonith_host``: reported (havm recovers a lost node's
  resources only once it is fenced, and fence devices are configured apart).
- haresources -> groups with preferred nodes (``havm.importers.haresources``).
- authkeys -> ``ImportResult.key``: SHA-256 of the md5/sha1 secret in hex, so
  every node imported from the same authkeys derives the same key; crc is refused.

Node addresses come from ``--address``, then a hosts file (``--hosts``), then
the ``ucast`` lines (matched to nodes through the hosts file, or guessed in
node order when the counts match, with a warning), else placeholders.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping, Sequence
from typing import Any

from havm.agents.xen_config import parse_xen_config
from havm.errors import ConfigError
from havm.importers.hacf import (
    TIMER_DEFAULTS,
    HaCf,
    file_mode,
    parse_authkeys,
    parse_hacf,
    read_text,
)
from havm.importers.haresources import convert_haresources
from havm.importers.output import (
    assign_addresses,
    finish,
    format_duration,
    havm_id,
)
from havm.importers.report import ImportFailed, ImportReport, ImportResult
from havm.importers.scripts import default_xen_config

_LOGGING = "havmd logs to journald or a file of its own choosing"
NOT_APPLICABLE = {
    "logfile": _LOGGING, "debugfile": _LOGGING, "logfacility": _LOGGING, "use_logd": _LOGGING,
    "conn_logd_time": _LOGGING, "debug": _LOGGING,
    "compression": "havm heartbeats are small and never compressed",
    "compression_threshold": "havm heartbeats are small and never compressed",
    "traditional_compression": "havm heartbeats are small and never compressed",
    "coredumps": "a process setting of Heartbeat's daemons", "realtime": "a process setting of Heartbeat's daemons",
    "rtprio": "a process setting of Heartbeat's daemons", "env": "environment of Heartbeat's children",
    "uuidfrom": "havm identifies nodes by name and keeps no UUIDs",
    "autojoin": "havm's members are the nodes listed in the configuration; none join on their own",
    "hopfudge": "serial links are not supported", "baud": "serial links are not supported",
    "deadping": "ping targets are checked by the tiebreaker every quorum.tiebreaker.interval",
    "stonith": "a Heartbeat STONITH plugin: configure the matching fence agent (fence_ipmilan, fence_apc, ...) "
               "in havm's fencing section",
    "stonith_host": "a Heartbeat STONITH plugin: configure the matching fence agent (fence_ipmilan, "
                    "fence_apc, ...) in havm's fencing section",
    "watchdog": "the watchdog belongs to havm's fencing configuration",
    "apiauth": "permissions of Heartbeat's client API; havm's API has its own roles",
    "msgfmt": "Heartbeat's wire format; havm's is fixed and versioned",
    "max_rexmit_delay": "Heartbeat's retransmission tuning; havm does not retransmit heartbeats",
    "memreserve": "a process setting of Heartbeat's daemons",
}
_RESPAWN = {
    "ipfail": "ipfail's job (keep quorum only where the ping targets answer) is done by the ping tiebreaker",
    "dopd": "DRBD's outdate-peer daemon: use DRBD's fencing handlers with havm's fencing",
    "pingd": "pingd's node attribute has no havm equivalent; use the ping tiebreaker",
    "mgmtd": "Heartbeat's GUI daemon; use havm's dashboard",
}


def import_heartbeat(directory: str, addresses: Mapping[str, Sequence[str]] | None = None,
                     cluster: str | None = None, hosts: Mapping[str, str] | None = None,
                     new_key: bool = False, output_name: str = "cluster.yaml",
                     key_file: str = "authkey") -> ImportResult:
    """Convert the ha.d ``directory`` into a validated havm config (and key)."""
    if not os.path.isdir(directory):
        raise ImportFailed(directory, None, "not a directory (expected a Heartbeat configuration directory "
                                            "such as /etc/ha.d)")
    report = ImportReport()
    hacf_path = os.path.join(directory, "ha.cf")
    cf = parse_hacf(read_text(hacf_path), hacf_path)
    if not cf.nodes:
        raise ImportFailed(hacf_path, None, "no 'node NAME' line: havm needs the list of cluster members")
    nodes: dict[str, str] = {}  # lower-cased Heartbeat name -> havm name
    for raw, line in cf.nodes:
        name = havm_id(raw)
        if raw.lower() in nodes:
            raise ImportFailed(hacf_path, line, f"node {raw!r} is listed twice")
        if name != raw:
            report.info(hacf_path, line, f"node {raw}", f"renamed to {name!r} (havm names are [A-Za-z0-9_.-])")
        nodes[raw.lower()] = name
    node_names = list(dict.fromkeys(nodes.values()))

    links, known = _links(cf, node_names, hosts or {}, report)
    addr, placeholders = assign_addresses(node_names, [lk["name"] for lk in links], addresses or {}, known,
                                          report, hacf_path)
    doc: dict[str, Any] = {
        "cluster": cluster or "heartbeat",
        "nodes": [{"name": n, "addresses": addr[n]} for n in node_names],
        "links": links,
        "timing": _timing(cf, report),
    }
    quorum = _quorum(cf, len(node_names), report)
    if quorum:
        doc["quorum"] = quorum
    auto_failback = _failback(cf, report)
    _report_others(cf, report)
    if not any(d in ("stonith", "stonith_host") for d, _, _ in cf.other):
        report.warn(cf.file, None, "fencing", "ha.cf configures no STONITH: havm recovers what a lost node ran "
                    "only once a fence device has confirmed it off; add one to fencing.devices, or failover "
                    "waits")

    resources: list[dict[str, Any]] = []
    constraints: list[dict[str, Any]] = []
    har_path = os.path.join(directory, "haresources")
    if cf.crm and cf.crm[0]:
        report.drop(hacf_path, cf.crm[1], "crm on", "Heartbeat ran the CRM: resources are in its CIB "
                    "(/var/lib/heartbeat/crm/cib.xml), not in haresources; import it with 'havm import cib'")
        if os.path.exists(har_path):
            report.drop(har_path, None, "haresources", "ignored, as Heartbeat did with crm on")
    elif os.path.exists(har_path):
        xen_dir = os.path.join(os.path.dirname(os.path.abspath(directory)), "xen")
        converted = convert_haresources(read_text(har_path), har_path, nodes, report,
                                        lambda dom: _xen_config(dom, xen_dir, har_path, report))
        resources, constraints = converted.resources, converted.constraints
    else:
        report.info(har_path, None, "haresources", "not found: no resources imported")
    if resources:
        doc["properties"] = {"auto_failback": auto_failback}
        doc["resources"] = resources
    if constraints:
        doc["constraints"] = constraints

    key = _key(directory, new_key, report)
    if key is not None and key_file != "authkey":
        doc["auth"] = {"key_file": key_file}
    header = [f"Imported by 'havm import heartbeat' from {directory}.",
              "Read the import report: what it lists as dropped is not in this file."]
    if placeholders:
        header.append("Addresses marked PLACEHOLDER are not real: set them before use.")
    text, config = finish(doc, header, placeholders, output_name)
    return ImportResult(doc, text, report, key, tuple(placeholders), config)


def _links(cf: HaCf, nodes: list[str], hosts: Mapping[str, str], report: ImportReport
           ) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    port = cf.udpport[0] if cf.udpport else None
    links: list[dict[str, Any]] = []
    ucast: dict[str, list[str]] = {}  # link name -> peer addresses in file order
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for m in cf.media:
        if m.kind == "serial":
            report.drop(cf.file, m.line, f"serial {m.iface}", "havm links are UDP; serial heartbeats are not supported")
            continue
        key = (m.kind, m.iface)
        if key in by_key:
            if m.kind == "ucast":
                ucast[by_key[key]["name"]].append(m.args[0])
            else:
                report.info(cf.file, m.line, f"{m.kind} {m.iface}", "the same medium twice; written once")
            continue
        names = {lk["name"] for lk in links}
        name = havm_id(m.iface)
        if name in names:
            name = havm_id(f"{m.iface}-{m.kind}")
        link: dict[str, Any] = {"name": name}
        if m.kind == "bcast":
            link["mode"] = "broadcast"
        elif m.kind == "mcast":
            group, mport, ttl, loop = m.args
            link.update(mode="multicast", group=group, port=int(mport), ttl=int(ttl))
            if loop == "1":
                report.info(cf.file, m.line, f"mcast {m.iface} ... loop 1",
                            "multicast loopback is not configurable in havm (a node ignores its own heartbeats)")
        else:
            link["mode"] = "unicast"
            ucast[name] = [m.args[0]]
        if m.kind != "mcast" and port is not None:
            link["port"] = port
        report.info(cf.file, m.line, f"{m.kind} {m.iface}", f"link {name!r} ({link['mode']}); the interface "
                    "is chosen by each node's address on it")
        by_key[key] = link
        links.append(link)
    if not links:
        raise ImportFailed(cf.file, None, "no UDP heartbeat medium: expected a 'bcast IFACE', "
                                          "'mcast IFACE GROUP PORT TTL LOOP' or 'ucast IFACE PEER' line")
    if len(links) > 8:
        raise ImportFailed(cf.file, None, f"{len(links)} heartbeat links; havm supports at most 8")
    known: dict[tuple[str, str], str] = {}
    for node in nodes:  # a hosts file gives each node one address: use it on every link it belongs to
        ip = hosts.get(node)
        if ip is None:
            continue
        for lk in links:
            peers = ucast.get(lk["name"])
            if peers is not None and ip in peers:
                known[(node, lk["name"])] = ip
            elif peers is None and len(links) == 1:
                known[(node, lk["name"])] = ip
        if not any(k[0] == node for k in known):
            report.warn(cf.file, None, f"hosts: {node} {ip}", "matches none of the ucast addresses; not used")
    for link_name, peers in ucast.items():
        missing = [n for n in nodes if (n, link_name) not in known]
        free = [p for p in dict.fromkeys(peers) if p not in {v for (_, lk), v in known.items() if lk == link_name}]
        if missing and len(free) == len(missing):
            pairs = ", ".join(f"{n}={ip}" for n, ip in zip(missing, free, strict=True))
            known.update({(n, link_name): ip for n, ip in zip(missing, free, strict=True)})
            report.warn(cf.file, None, f"ucast addresses on link {link_name!r}",
                        f"ha.cf does not say which node has which address; assigned in node order: {pairs}. "
                        "Check it, or give --address NODE=IP or --hosts /etc/hosts")
        elif missing:
            report.warn(cf.file, None, f"ucast addresses on link {link_name!r}",
                        f"{len(free)} unassigned address(es) ({', '.join(free) or 'none'}) for {len(missing)} "
                        f"node(s) ({', '.join(missing)}): not used; give --address NODE=IP")
    return links, known


def _timing(cf: HaCf, report: ImportReport) -> dict[str, str]:
    t = {k: v for k, (v, _) in cf.timers.items()}
    keepalive = t.get("keepalive", TIMER_DEFAULTS["keepalive"])
    deadtime = t.get("deadtime", TIMER_DEFAULTS["deadtime"])
    for name in ("keepalive", "deadtime"):
        if name not in t:
            report.info(cf.file, None, name, f"not set: Heartbeat's default {format_duration(TIMER_DEFAULTS[name])}")
    if deadtime <= 2 * keepalive:
        fixed = 3 * keepalive
        report.warn(cf.file, _line(cf, "deadtime"), f"deadtime {format_duration(deadtime)}",
                    f"must be more than twice keepalive ({format_duration(keepalive)}) so that one lost "
                    f"heartbeat does not kill a node: written as {format_duration(fixed)}")
        deadtime = fixed
    warntime = t.get("warntime", deadtime / 2)
    if not keepalive <= warntime < deadtime:
        fixed = max(keepalive, deadtime / 2)
        report.warn(cf.file, _line(cf, "warntime"), f"warntime {format_duration(warntime)}",
                    f"must be at least keepalive and less than deadtime: written as {format_duration(fixed)}")
        warntime = fixed
    initdead = t.get("initdead", deadtime)
    if initdead < deadtime:
        report.warn(cf.file, _line(cf, "initdead"), f"initdead {format_duration(initdead)}",
                    f"must be at least deadtime: written as {format_duration(deadtime)}")
        initdead = deadtime
    return {"keepalive": format_duration(keepalive), "warntime": format_duration(warntime),
            "deadtime": format_duration(deadtime), "initdead": format_duration(initdead)}


def _line(cf: HaCf, timer: str) -> int | None:
    return cf.timers[timer][1] if timer in cf.timers else None


def _quorum(cf: HaCf, node_count: int, report: ImportReport) -> dict[str, Any]:
    quorum: dict[str, Any] = {}
    if node_count == 2:
        quorum["two_node"] = True
        report.info(cf.file, None, "quorum", "two nodes: quorum.two_node is set (Heartbeat needed no majority)")
    targets: list[str] = []
    for addr, line in cf.ping:
        _target(cf, addr, line, f"ping {addr}", targets, report)
    for name, addrs, line in cf.ping_groups:
        for addr in addrs:
            _target(cf, addr, line, f"ping_group {name} {addr}", targets, report)
        report.info(cf.file, line, f"ping_group {name}", "its members become ping targets of their own "
                                                         "(havm's tiebreaker needs any one target to answer)")
    if targets:
        quorum["tiebreaker"] = {"type": "ping", "targets": list(dict.fromkeys(targets))}
    elif node_count == 2:
        report.warn(cf.file, None, "quorum", "no ping node: a node left alone keeps quorum only through a "
                    "tiebreaker and none is written, so a lone survivor takes nothing over (Heartbeat's did, at "
                    "the risk of split brain); add quorum.tiebreaker {type: ping, targets: [GATEWAY]}")
    return quorum


def _target(cf: HaCf, addr: str, line: int, what: str, targets: list[str], report: ImportReport) -> None:
    try:
        ipaddress.IPv4Address(addr)
    except ValueError:
        report.drop(cf.file, line, what, "the ping tiebreaker needs an IPv4 address, not a host name")
        return
    targets.append(addr)


def _failback(cf: HaCf, report: ImportReport) -> bool:
    value, line = cf.auto_failback or ("legacy", None)
    if cf.auto_failback is None:
        report.info(cf.file, None, "auto_failback", "not set: Heartbeat's default 'legacy' is read as 'on'")
    elif value == "legacy":
        report.info(cf.file, line, "auto_failback legacy", "read as 'on' (resources return to their "
                                                           "preferred node); havm has no legacy mode")
    return value in ("on", "legacy")


def _report_others(cf: HaCf, report: ImportReport) -> None:
    for directive, rest, line in cf.other:
        what = f"{directive} {rest}".strip()
        if directive in ("stonith", "stonith_host"):
            # the rest holds the device's login and password: keep them out of the report
            what = f"{directive} {' '.join(rest.split()[:2])} ..."
        if directive == "respawn":
            program = os.path.basename(rest.split()[-1]) if rest.split() else ""
            if program == "ipfail" and (cf.ping or cf.ping_groups):
                report.info(cf.file, line, what, _RESPAWN["ipfail"])
            else:
                report.drop(cf.file, line, what, _RESPAWN.get(program, "havm does not run helper daemons"))
        elif directive in NOT_APPLICABLE:
            report.drop(cf.file, line, what, NOT_APPLICABLE[directive])
        else:
            report.drop(cf.file, line, what, "unknown ha.cf directive")


def _xen_config(domain: str, xen_dir: str, file: str, report: ImportReport) -> str:
    """The Xen config file of ``domain``: found beside ha.d (../xen/DOM or DOM.cfg), else /etc/xen/DOM."""
    if os.path.isabs(domain):
        return domain
    for candidate in (domain, f"{domain}.cfg"):
        path = os.path.join(xen_dir, candidate)
        if os.path.isfile(path):
            _check_xen_config(path, domain, file, report)
            return os.path.abspath(path)
    path = default_xen_config(domain)
    report.warn(file, None, f"Xen domain {domain}", f"no config found in {xen_dir}; assumed {path}: check it")
    return path


def _check_xen_config(path: str, domain: str, file: str, report: ImportReport) -> None:
    """Read the domain's Xen config now, so a problem shows in the report, not at failover."""
    try:
        parsed = parse_xen_config(read_text(path), path)
    except ConfigError as e:
        report.warn(file, None, f"Xen domain {domain}", f"its config {path} cannot be run by havm's vm agent: {e}")
        return
    if parsed.ignored:
        report.info(file, None, f"Xen domain {domain}", f"settings of {path} with no meaning under QEMU are "
                                                        f"ignored: {', '.join(parsed.ignored)}")


def _key(directory: str, new_key: bool, report: ImportReport) -> str | None:
    path = os.path.join(directory, "authkeys")
    if new_key:
        report.warn(path, None, "authkeys", "not used (--new-key): a fresh random key was written; "
                                            "copy it to every node (mode 0600)")
        return os.urandom(32).hex() + "\n"
    if not os.path.exists(path):
        report.warn(path, None, "authkeys", "not found: no key written; create one with 'havm keygen FILE'")
        return None
    key = parse_authkeys(read_text(path), path, file_mode(path))
    if key.exposed:
        report.warn(path, None, "authkeys mode", "authkeys is readable by group or others: the old secret may "
                                                 "be known; consider --new-key")
    if len(key.secret) < 16:
        report.warn(path, key.line, f"{key.method} key", f"the secret is only {len(key.secret)} characters: "
                                                         "a short secret stays weak; consider --new-key")
    report.warn(path, key.line, f"{key.method} key", "carried over as an HMAC-SHA256 key (SHA-256 of the "
                "secret): every node must get the new key file (mode 0600); havm and Heartbeat nodes cannot "
                "talk to each other")
    return hashlib.sha256(key.secret.encode("utf-8")).hexdigest() + "\n"
