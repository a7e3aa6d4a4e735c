"""Heartbeat resource scripts (``/etc/ha.d/resource.d``) as havm primitives.

A Heartbeat v1 resource is ``NAME::ARG1::ARG2...`` in ``haresources`` (or, in a
Heartbeat 2 CIB, ``class="heartbeat" type="NAME"`` with parameters ``1``, ``2``
...). The arguments are positional; the OCF agent that replaced each script
takes the same values under names. ``map_script`` turns one into a primitive
(agent type and named params) and says what it changed or could not carry.

Scripts we do not know become ``lsb:NAME`` (an init script: Heartbeat looked in
``resource.d`` first, then ``/etc/init.d``); their arguments, if any, cannot be
passed to an init script and are reported.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: script -> (OCF agent, names of its positional arguments)
POSITIONAL: dict[str, tuple[str, tuple[str, ...]]] = {
    "IPsrcaddr": ("ocf:heartbeat:IPsrcaddr", ("ipaddress",)),
    "IPv6addr": ("ocf:heartbeat:IPv6addr", ("ipv6addr",)),
    "Filesystem": ("ocf:heartbeat:Filesystem", ("device", "directory", "fstype", "options")),
    "apache": ("ocf:heartbeat:apache", ("configfile",)),
    "LVM": ("ocf:heartbeat:LVM", ("volgrpname",)),
    "Raid1": ("ocf:heartbeat:Raid1", ("raidconf", "raiddev")),
    "MailTo": ("ocf:heartbeat:MailTo", ("email", "subject")),
    "Xinetd": ("ocf:heartbeat:Xinetd", ("service",)),
    "portblock": ("ocf:heartbeat:portblock", ("protocol", "portno", "action")),
    "Delay": ("ocf:heartbeat:Delay", ("startdelay", "stopdelay")),
    "LinuxSCSI": ("ocf:heartbeat:LinuxSCSI", ("scsi",)),
    "ServeRAID": ("ocf:heartbeat:ServeRAID", ("serveraid", "mergegroup")),
    "WAS": ("ocf:heartbeat:WAS", ("config",)),
    "WinPopup": ("ocf:heartbeat:WinPopup", ("hostfile",)),
    "db2": ("ocf:heartbeat:db2", ("instance",)),
    "ICP": ("ocf:heartbeat:ICP", ("driveid", "device")),
}
#: scripts that start one Xen domain named by their first argument
XEN_SCRIPTS = ("Xen", "xen", "xendomains", "xendomain", "xendomU", "XenDomU", "xm")
NOT_APPLICABLE = {
    "OCF": "the OCF wrapper reads its parameters from /etc/ha.d/conf; name the OCF agent directly",
    "hto-mapfuncs": "a helper library of Heartbeat, not a resource",
}
_LSB_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


@dataclass
class Mapped:
    """One script turned into a primitive, or the reason it could not be.

    ``kind``: ``primitive``; ``drbd`` (a DRBD resource: the caller builds the
    promotable clone); ``none`` (not carried over, ``why`` says why).
    """

    kind: str
    type: str = ""
    params: dict[str, str] = field(default_factory=dict)
    suggested_id: str = ""
    notes: list[str] = field(default_factory=list)  # info: what was changed
    warnings: list[str] = field(default_factory=list)  # check before use
    why: str = ""


def _ip_spec(spec: str, extra: Sequence[str]) -> Mapped:
    """``10.0.0.10/24/eth0/10.0.0.255`` (IPaddr, IPaddr2) -> IPaddr2 params."""
    parts = spec.split("/")
    ip = parts[0]
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        return Mapped("none", why=f"{ip!r} is not an IPv4 address (expected IP[/BITS[/IFACE[/BROADCAST]]])")
    params = {"ip": ip}
    notes: list[str] = []
    if len(parts) > 1 and parts[1]:
        bits = parts[1]
        if not bits.isdigit():
            try:
                bits = str(ipaddress.IPv4Network(f"0.0.0.0/{bits}").prefixlen)
                notes.append(f"netmask {parts[1]} written as prefix length {bits}")
            except ValueError:
                return Mapped("none", why=f"{parts[1]!r} is neither a prefix length nor a netmask")
        params["cidr_netmask"] = bits
    if len(parts) > 2 and parts[2]:
        params["nic"] = parts[2]
    if len(parts) > 3 and parts[3]:
        params["broadcast"] = parts[3]
    m = Mapped("primitive", "ocf:heartbeat:IPaddr2", params, f"ip-{ip}", notes)
    if len(parts) > 4 or extra:
        m.warnings.append(f"extra arguments {'/'.join(parts[4:]) or '::'.join(extra)} ignored")
    return m


def default_xen_config(domain: str) -> str:
    return domain if os.path.isabs(domain) else f"/etc/xen/{domain}"


def map_script(name: str, args: Sequence[str],
               xen_config: Callable[[str], str] = default_xen_config) -> Mapped:
    """The primitive for Heartbeat resource script ``name`` with positional ``args``."""
    args = list(args)
    if not args and _is_ipv4(name):
        m = _ip_spec(name, [])
        m.notes.append("a bare address in haresources is IPaddr::ADDRESS")
        return m
    if name in ("IPaddr", "IPaddr2"):
        if not args:
            return Mapped("none", why=f"{name} needs an address (expected {name}::IP[/BITS[/IFACE]])")
        m = _ip_spec(args[0], args[1:])
        if name == "IPaddr":
            m.notes.append("IPaddr (ifconfig aliases) is carried over as ocf:heartbeat:IPaddr2 (ip addr)")
        return m
    if name == "drbddisk":
        res = args[0] if args else "all"
        m = Mapped("drbd", "ocf:linbit:drbd", {"drbd_resource": res}, f"drbd-{res}")
        if not args:
            m.warnings.append("drbddisk without an argument means every DRBD resource; "
                              "written as drbd_resource=all: list them one by one")
        return m
    if name in XEN_SCRIPTS:
        if not args:
            if name == "xendomains":
                return Mapped("primitive", "lsb:xendomains", {}, "xendomains",
                              warnings=["xendomains without an argument starts every domain in "
                                        "/etc/xen/auto as one resource; give each domain its own vm "
                                        "resource (type vm, params.xen_config) to fail them over one by one"])
            return Mapped("none", why=f"{name} needs the domain name or config file as argument")
        domain = args[0]
        path = xen_config(domain)
        dom_name = os.path.basename(domain)
        dom_name = dom_name[:-4] if dom_name.endswith(".cfg") else dom_name
        m = Mapped("primitive", "vm", {"xen_config": path}, dom_name,
                   [f"Xen domain {domain} becomes a havm vm read from its Xen config {path} "
                    "(havm runs it under QEMU/KVM)"])
        if len(args) > 1:
            m.warnings.append(f"extra arguments {'::'.join(args[1:])} ignored")
        return m
    if name in NOT_APPLICABLE:
        return Mapped("none", why=NOT_APPLICABLE[name])
    if name in POSITIONAL:
        agent, names = POSITIONAL[name]
        params = dict(zip(names, args, strict=False))
        m = Mapped("primitive", agent, params, _suggest(name, args))
        m.notes.append(f"resource script {name} carried over as {agent}")
        if len(args) > len(names):
            m.warnings.append(f"extra arguments {'::'.join(args[len(names):])} ignored "
                              f"({agent} takes {', '.join(names)})")
        return m
    if not _LSB_NAME.match(name):
        return Mapped("none", why=f"{name!r} is not a valid init script name")
    m = Mapped("primitive", f"lsb:{name}", {}, name)
    m.notes.append(f"{name} is taken to be an init script (lsb:{name}), as Heartbeat looked in "
                   "resource.d and then /etc/init.d")
    if args:
        m.warnings.append(f"arguments {'::'.join(args)} cannot be passed to an init script and are "
                          "dropped; check that the script works without them")
    return m


def _suggest(name: str, args: Sequence[str]) -> str:
    if name == "Filesystem" and len(args) > 1:
        tail = args[1].strip("/").replace("/", "-")
        return f"fs-{tail}" if tail else "fs-root"
    if args:
        return f"{name.lower()}-{os.path.basename(args[0].rstrip('/')) or 'root'}"
    return name.lower()


def _is_ipv4(text: str) -> bool:
    head = text.split("/")[0]
    try:
        ipaddress.IPv4Address(head)
    except ValueError:
        return False
    return True
