"""``ip``: a virtual IPv4 address on a network interface (Heartbeat's IPaddr2).

start adds the address (with netlink, through pyroute2) and announces it with
gratuitous ARP, so switches and neighbours that cached the previous owner's
MAC move to this node at once; stop removes it; monitor reports whether the
address sits on the interface. Nothing else is kept: the kernel's address
list is the state.

Parameters:

* ``ip`` (required): the address, e.g. ``10.0.0.50`` or ``10.0.0.50/24``;
* ``cidr_netmask``: prefix length (``24``) or dotted mask (``255.255.255.0``);
  default: the prefix in ``ip``, else that of the interface's subnet that
  contains the address;
* ``nic``: the interface; default: the interface whose subnet contains ``ip``
  (as IPaddr2 picks it);
* ``label``: an address label; ``web`` becomes ``<nic>:web`` (at most 15 chars);
* ``arp_count`` (default 3) and ``arp_interval_ms`` (default 100): how many
  gratuitous ARP rounds start sends (each round an unsolicited ARP request and
  an unsolicited ARP reply, from a raw AF_PACKET socket: nothing to install).

Guarantees on top of the base class: start is a success only once the address
is on the interface (GARP failures are logged, not fatal: the address works,
neighbours learn it at their next ARP); stop is a success only once the
address is on no interface of this node; monitor only reads.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from havm.agents.base import OCF, ActionLog, Agent, AgentResult, Progress

IFNAMSIZ = 15
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
BROADCAST_MAC = b"\xff" * 6

_META = """<?xml version="1.0"?>
<resource-agent name="ip" version="1.0">
  <version>1.0</version>
  <shortdesc lang="en">A virtual IPv4 address</shortdesc>
  <longdesc lang="en">Adds an IPv4 address to an interface, announces it with gratuitous ARP,
removes it on stop. Monitor: the address is on the interface.</longdesc>
  <parameters>
    <parameter name="ip" required="1" unique="1"><content type="string"/>
      <shortdesc lang="en">IPv4 address, optionally with /prefix</shortdesc></parameter>
    <parameter name="cidr_netmask"><content type="string"/>
      <shortdesc lang="en">Prefix length or dotted netmask (default: the subnet's)</shortdesc></parameter>
    <parameter name="nic"><content type="string"/>
      <shortdesc lang="en">Interface (default: the one whose subnet contains ip)</shortdesc></parameter>
    <parameter name="label"><content type="string"/>
      <shortdesc lang="en">Address label (nic:label, at most 15 characters)</shortdesc></parameter>
    <parameter name="arp_count"><content type="integer" default="3"/>
      <shortdesc lang="en">Gratuitous ARP rounds sent on start</shortdesc></parameter>
    <parameter name="arp_interval_ms"><content type="integer" default="100"/>
      <shortdesc lang="en">Milliseconds between gratuitous ARP rounds</shortdesc></parameter>
  </parameters>
  <actions>
    <action name="start" timeout="20s"/>
    <action name="stop" timeout="20s"/>
    <action name="monitor" timeout="20s" interval="10s"/>
    <action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="20s"/>
  </actions>
</resource-agent>
"""


class ParamError(ValueError):
    """A parameter is wrong; the message names it and says what was expected."""


@dataclass(frozen=True)
class IpSpec:
    """The parsed parameters (everything static: no system lookups)."""

    address: ipaddress.IPv4Address
    prefixlen: int | None  # None: take the containing subnet's
    nic: str | None
    label: str | None
    arp_count: int
    arp_interval: float


def parse_params(params: Mapping[str, Any]) -> IpSpec:
    raw = str(params.get("ip") or "").strip()
    if not raw:
        raise ParamError("parameter 'ip' is required (an IPv4 address such as 10.0.0.50 or 10.0.0.50/24)")
    addr_text, slash, prefix_text = raw.partition("/")
    try:
        address = ipaddress.ip_address(addr_text)
    except ValueError:
        raise ParamError(f"parameter 'ip': {addr_text!r} is not an IP address") from None
    if not isinstance(address, ipaddress.IPv4Address):
        raise ParamError(f"parameter 'ip': {address} is IPv6; the ip agent manages IPv4 addresses")
    if address.is_unspecified or address.is_multicast or address.is_loopback:
        raise ParamError(f"parameter 'ip': {address} is not a unicast host address")
    prefixlen: int | None = None
    if slash:
        prefixlen = _prefix(prefix_text, "ip")
    mask = params.get("cidr_netmask")
    if mask not in (None, ""):
        mask_len = _prefix(str(mask), "cidr_netmask")
        if prefixlen is not None and mask_len != prefixlen:
            raise ParamError(f"parameter 'cidr_netmask' ({mask}) contradicts the prefix in 'ip' ({raw})")
        prefixlen = mask_len
    nic = str(params["nic"]).strip() if params.get("nic") else None
    if nic is not None and (len(nic) > IFNAMSIZ or "/" in nic or " " in nic):
        raise ParamError(f"parameter 'nic': {nic!r} is not an interface name (at most {IFNAMSIZ} characters)")
    label = str(params["label"]).strip() if params.get("label") else None
    try:
        arp_count = int(params.get("arp_count", 3))
        arp_interval = int(params.get("arp_interval_ms", 100)) / 1000.0
    except (TypeError, ValueError):
        raise ParamError("parameters 'arp_count' and 'arp_interval_ms' must be integers") from None
    if not 0 <= arp_count <= 100 or not 0 <= arp_interval <= 10:
        raise ParamError("'arp_count' must be 0..100 and 'arp_interval_ms' 0..10000")
    return IpSpec(address, prefixlen, nic, label, arp_count, arp_interval)


def _prefix(text: str, param: str) -> int:
    text = text.strip()
    if text.isdigit():
        n = int(text)
        if 1 <= n <= 32:
            return n
        raise ParamError(f"parameter {param!r}: prefix length {n} is outside 1..32")
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        raise ParamError(f"parameter {param!r}: {text!r} is neither a prefix length (24) "
                         "nor a dotted netmask (255.255.255.0)") from None


def full_label(nic: str, label: str | None) -> str | None:
    if not label:
        return None
    full = label if label.startswith(nic + ":") or label == nic else f"{nic}:{label}"
    if len(full) > IFNAMSIZ:
        raise ParamError(f"parameter 'label': {full!r} is longer than {IFNAMSIZ} characters")
    return full


@dataclass(frozen=True)
class Placement:
    """Where the address lives, once resolved against this node's interfaces."""

    index: int
    nic: str
    prefixlen: int
    mac: bytes


@contextmanager
def _iproute() -> Iterator[Any]:
    from pyroute2 import IPRoute  # imported here: meta-data and parsing need no netlink

    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _links(ipr: Any) -> dict[int, tuple[str, bytes, bool]]:
    """index -> (name, MAC, administratively up)."""
    out: dict[int, tuple[str, bytes, bool]] = {}
    for link in ipr.get_links():
        mac = link.get_attr("IFLA_ADDRESS") or "00:00:00:00:00:00"
        out[link["index"]] = (link.get_attr("IFLA_IFNAME"), bytes.fromhex(mac.replace(":", "")),
                              bool(link["flags"] & 1))
    return out


def _addresses(ipr: Any) -> list[tuple[int, ipaddress.IPv4Interface]]:
    return [(a["index"], ipaddress.IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"))
            for a in ipr.get_addr(family=socket.AF_INET)]


def where_is(ipr: Any, address: ipaddress.IPv4Address) -> list[int]:
    """Indexes of the interfaces that carry ``address``."""
    return [idx for idx, iface in _addresses(ipr) if iface.ip == address]


def place(ipr: Any, spec: IpSpec) -> Placement:
    """Resolve nic and prefix against this node's interfaces (ParamError if impossible)."""
    links = _links(ipr)
    by_name = {name: idx for idx, (name, _, _) in links.items()}
    containing = [(idx, iface) for idx, iface in _addresses(ipr)
                  if spec.address in iface.network and iface.ip != spec.address]
    if spec.nic is not None:
        if spec.nic not in by_name:
            raise ParamError(f"parameter 'nic': no interface {spec.nic!r} on this node "
                             f"(interfaces: {', '.join(sorted(by_name))})")
        index = by_name[spec.nic]
        containing = [c for c in containing if c[0] == index]
    elif not containing:
        raise ParamError(f"no interface has a subnet containing {spec.address}; set parameter 'nic'")
    else:
        index = containing[0][0]
    prefixlen = spec.prefixlen
    if prefixlen is None:
        if not containing:
            raise ParamError(f"interface {links[index][0]} has no subnet containing {spec.address}: "
                             "set 'cidr_netmask' (or give ip as CIDR)")
        prefixlen = containing[0][1].network.prefixlen
    name, mac, _ = links[index]
    return Placement(index, name, prefixlen, mac)


def arp_frames(mac: bytes, address: ipaddress.IPv4Address) -> list[bytes]:
    """An unsolicited ARP request and an unsolicited ARP reply announcing ``address`` at ``mac``."""
    ip = address.packed
    frames = []
    for op, target_mac in ((1, b"\x00" * 6), (2, BROADCAST_MAC)):
        arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, op, mac, ip, target_mac, ip)
        frames.append(BROADCAST_MAC + mac + struct.pack("!H", ETH_P_ARP) + arp)
    return frames


def send_gratuitous_arp(nic: str, mac: bytes, address: ipaddress.IPv4Address, count: int,
                        interval: float) -> int:
    """Send ``count`` rounds of gratuitous ARP on ``nic``; return frames sent (OSError on failure)."""
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((nic, ETH_P_ARP))
        for round_no in range(count):
            if round_no and interval:
                time.sleep(interval)
            for frame in arp_frames(mac, address):
                sock.send(frame)
                sent += 1
    return sent


class IpAgent(Agent):
    kind = "ip"

    def meta_data(self) -> str:
        return _META

    def _spec(self) -> IpSpec | AgentResult:
        try:
            return parse_params(self.params)
        except ParamError as e:
            return AgentResult(OCF.ERR_CONFIGURED, f"ip {self.resource_id}: {e}")

    def validate(self) -> AgentResult:
        spec = self._spec()
        if isinstance(spec, AgentResult):
            return spec
        try:
            with _iproute() as ipr:
                p = place(ipr, spec)
                full_label(p.nic, spec.label)
        except ParamError as e:
            return AgentResult(OCF.ERR_CONFIGURED, f"ip {self.resource_id}: {e}")
        except ImportError as e:
            return AgentResult(OCF.ERR_INSTALLED, f"ip: pyroute2 is not installed: {e}")
        return AgentResult(OCF.SUCCESS, f"{spec.address}/{p.prefixlen} on {p.nic}")

    def start(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        spec = self._spec()
        if isinstance(spec, AgentResult):
            return spec
        from pyroute2 import NetlinkError

        try:
            with _iproute() as ipr:
                p = place(ipr, spec)
                label = full_label(p.nic, spec.label)
                if p.index in where_is(ipr, spec.address):
                    log(f"{spec.address} already on {p.nic}")
                    return log.result(OCF.SUCCESS, {"nic": p.nic})
                elsewhere = where_is(ipr, spec.address)
                if elsewhere:
                    names = _links(ipr)
                    log(f"{spec.address} is already on {names[elsewhere[0]][0]}, not {p.nic}")
                    return log.result(OCF.ERR_GENERIC)
                _, _, up = _links(ipr)[p.index]
                if not up:
                    ipr.link("set", index=p.index, state="up")
                    log(f"set {p.nic} up")
                net = ipaddress.IPv4Network(f"{spec.address}/{p.prefixlen}", strict=False)
                extra: dict[str, Any] = {"label": label} if label else {}
                if p.prefixlen < 31:
                    extra["broadcast"] = str(net.broadcast_address)
                ipr.addr("add", index=p.index, address=str(spec.address), prefixlen=p.prefixlen, **extra)
                log(f"added {spec.address}/{p.prefixlen} to {p.nic}" + (f" as {label}" if label else ""))
                if p.index not in where_is(ipr, spec.address):
                    log(f"{spec.address} is not on {p.nic} after adding it")
                    return log.result(OCF.ERR_GENERIC)
        except ParamError as e:
            return AgentResult(OCF.ERR_CONFIGURED, f"ip {self.resource_id}: {e}")
        except NetlinkError as e:
            log(f"netlink refused adding {spec.address} to {spec.nic or 'its interface'}: {e}")
            return log.result(OCF.ERR_GENERIC)
        sent = 0
        if spec.arp_count:
            try:
                sent = send_gratuitous_arp(p.nic, p.mac, spec.address, spec.arp_count, spec.arp_interval)
                log(f"sent {sent} gratuitous ARP frames on {p.nic}")
            except OSError as e:  # the address works; neighbours learn it at their next ARP
                log(f"gratuitous ARP on {p.nic} failed: {e}")
        return log.result(OCF.SUCCESS, {"nic": p.nic, "prefixlen": p.prefixlen, "garp_frames": sent})

    def stop(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        spec = self._spec()
        if isinstance(spec, AgentResult):
            return spec
        from pyroute2 import NetlinkError

        # Remove it wherever it is: a copy left on another interface would still answer ARP.
        with _iproute() as ipr:
            names = _links(ipr)
            for idx, iface in _addresses(ipr):
                if iface.ip != spec.address:
                    continue
                try:
                    ipr.addr("del", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
                    log(f"removed {iface} from {names[idx][0]}")
                except NetlinkError as e:
                    if e.code != 99:  # EADDRNOTAVAIL: it went away meanwhile
                        log(f"netlink refused removing {iface} from {names[idx][0]}: {e}")
            left = where_is(ipr, spec.address)
            if left:
                log(f"{spec.address} is still on {', '.join(names[i][0] for i in left)}")
                return log.result(OCF.ERR_GENERIC)
        return log.result(OCF.SUCCESS)

    def monitor(self) -> AgentResult:
        spec = self._spec()
        if isinstance(spec, AgentResult):
            return spec
        with _iproute() as ipr:
            links = _links(ipr)
            on = where_is(ipr, spec.address)
            if not on:
                return AgentResult(OCF.NOT_RUNNING, f"{spec.address} is on no interface")
            nics = [links[i][0] for i in on]
            if spec.nic is not None and spec.nic not in nics:
                return AgentResult(OCF.ERR_GENERIC, f"{spec.address} is on {', '.join(nics)}, not {spec.nic}")
            return AgentResult(OCF.SUCCESS, f"{spec.address} on {', '.join(nics)}", data={"nic": nics[0]})
