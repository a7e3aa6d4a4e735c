"""Reading Heartbeat's ``ha.cf`` (and ``authkeys``) with precise errors.

``parse_hacf`` returns what havm can use (nodes, media, timers, auto_failback,
ping targets) and keeps every other directive with its line so the importer
can report it. A malformed value is an ``ImportFailed`` naming the file, the
line and what was expected; an unknown directive is only reported (Heartbeat
itself ignored some of them across versions).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass, field

from havm.importers.report import ImportFailed

TIMERS = ("keepalive", "warntime", "deadtime", "initdead")
#: Heartbeat's defaults when ha.cf leaves a timer out
TIMER_DEFAULTS = {"keepalive": 2.0, "deadtime": 30.0}
_TIME = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|msec|us|usec|s|sec)?$")
_UNIT = {None: 1.0, "s": 1.0, "sec": 1.0, "ms": 0.001, "msec": 0.001, "us": 1e-6, "usec": 1e-6}


@dataclass(frozen=True)
class Medium:
    """One heartbeat medium line: ``bcast eth0``, ``mcast eth0 239.0.0.1 694 1 0``, ``ucast eth0 IP``."""

    kind: str  # bcast, mcast, ucast, serial
    iface: str
    args: tuple[str, ...]
    line: int


@dataclass
class HaCf:
    file: str
    nodes: list[tuple[str, int]] = field(default_factory=list)
    media: list[Medium] = field(default_factory=list)
    udpport: tuple[int, int] | None = None  # (port, line)
    timers: dict[str, tuple[float, int]] = field(default_factory=dict)
    auto_failback: tuple[str, int] | None = None  # on, off or legacy
    ping: list[tuple[str, int]] = field(default_factory=list)  # (address, line)
    ping_groups: list[tuple[str, tuple[str, ...], int]] = field(default_factory=list)
    crm: tuple[bool, int] | None = None
    other: list[tuple[str, str, int]] = field(default_factory=list)  # (directive, rest, line)


def logical_lines(text: str, inline_comments: bool = True) -> list[tuple[int, str]]:
    """(line number, text) without comments and blank lines; a trailing backslash continues.

    ``inline_comments=False`` (authkeys): only whole lines starting with '#' are
    comments, so a secret may contain '#'.
    """
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("#"):
            line = ""
        else:
            line = raw.split("#", 1)[0].rstrip() if inline_comments else raw.rstrip()
        if pending:
            line = pending + " " + line.strip()
        else:
            start = n
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        pending = ""
        if line.strip():
            out.append((start, line.strip()))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _seconds(file: str, line: int, directive: str, value: str) -> float:
    m = _TIME.match(value.strip().lower())
    if not m:
        raise ImportFailed(file, line, f"{directive} {value!r}: expected a time such as 2, 500ms or 1.5 "
                                       "(seconds unless followed by ms or us)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def _ipv4(file: str, line: int, what: str, value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ImportFailed(file, line, f"{what}: {value!r} is not an IPv4 address such as 10.0.0.1") from None
    return value


def parse_hacf(text: str, file: str) -> HaCf:
    cf = HaCf(file)
    for line, content in logical_lines(text):
        directive, _, rest = content.partition(" ")
        directive = directive.strip().lower()
        args = rest.split()
        if directive == "node":
            if not args:
                raise ImportFailed(file, line, "node: expected one or more node names (as uname -n prints them)")
            cf.nodes.extend((a, line) for a in args)
        elif directive == "bcast":
            if not args:
                raise ImportFailed(file, line, "bcast: expected one or more interfaces, e.g. bcast eth0 eth1")
            cf.media.extend(Medium("bcast", a, (), line) for a in args)
        elif directive == "mcast":
            if len(args) != 5:
                raise ImportFailed(file, line, f"mcast: expected 'mcast IFACE GROUP PORT TTL LOOP' "
                                               f"(5 values), got {len(args)}")
            iface, group, port, ttl, loop = args
            _ipv4(file, line, "mcast group", group)
            if not ipaddress.IPv4Address(group).is_multicast:
                raise ImportFailed(file, line, f"mcast: {group} is not a multicast address (224.0.0.0/4)")
            _int(file, line, "mcast port", port, 1, 65535)
            _int(file, line, "mcast ttl", ttl, 1, 255)
            _int(file, line, "mcast loop", loop, 0, 1)
            cf.media.append(Medium("mcast", iface, (group, port, ttl, loop), line))
        elif directive == "ucast":
            if len(args) != 2:
                raise ImportFailed(file, line, f"ucast: expected 'ucast IFACE PEER-ADDRESS', got {content!r}")
            _ipv4(file, line, "ucast peer", args[1])
            cf.media.append(Medium("ucast", args[0], (args[1],), line))
        elif directive == "serial":
            cf.media.extend(Medium("serial", a, (), line) for a in args)
        elif directive == "udpport":
            if len(args) != 1:
                raise ImportFailed(file, line, "udpport: expected one port number")
            cf.udpport = (_int(file, line, "udpport", args[0], 1, 65535), line)
        elif directive in TIMERS:
            if len(args) != 1:
                raise ImportFailed(file, line, f"{directive}: expected one time value such as 2 or 500ms")
            cf.timers[directive] = (_seconds(file, line, directive, args[0]), line)
        elif directive in ("auto_failback", "nice_failback"):
            if len(args) != 1:
                raise ImportFailed(file, line, f"{directive}: expected on or off")
            value = args[0].lower()
            if directive == "nice_failback":
                if value not in ("on", "off", "yes", "no", "true", "false"):
                    raise ImportFailed(file, line, f"nice_failback {args[0]!r}: expected on or off")
                value = "off" if value in ("on", "yes", "true") else "on"  # nice = no failback
            elif value in ("yes", "true"):
                value = "on"
            elif value in ("no", "false"):
                value = "off"
            if value not in ("on", "off", "legacy"):
                raise ImportFailed(file, line, f"auto_failback {args[0]!r}: expected on, off or legacy")
            cf.auto_failback = (value, line)
        elif directive == "ping":
            if not args:
                raise ImportFailed(file, line, "ping: expected one or more addresses")
            cf.ping.extend((a, line) for a in args)
        elif directive == "ping_group":
            if len(args) < 2:
                raise ImportFailed(file, line, "ping_group: expected 'ping_group NAME ADDRESS...'")
            cf.ping_groups.append((args[0], tuple(args[1:]), line))
        elif directive == "crm":
            value = (args[0].lower() if args else "")
            if value not in ("on", "off", "yes", "no", "true", "false", "respawn"):
                raise ImportFailed(file, line, f"crm {rest!r}: expected on, off or respawn")
            cf.crm = (value in ("on", "yes", "true", "respawn"), line)
        else:
            cf.other.append((directive, rest.strip(), line))
    return cf


def _int(file: str, line: int, what: str, value: str, lo: int, hi: int) -> int:
    if not value.isdigit() or not lo <= int(value) <= hi:
        raise ImportFailed(file, line, f"{what}: expected an integer from {lo} to {hi}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class AuthKey:
    method: str  # md5 or sha1
    secret: str
    line: int
    exposed: bool  # the authkeys file was readable by group or others


def parse_authkeys(text: str, file: str, mode: int | None = None) -> AuthKey:
    """The active key of an ``authkeys`` file; crc is refused (it authenticates nothing)."""
    active: tuple[str, int] | None = None
    keys: dict[str, tuple[str, str, int]] = {}
    for line, content in logical_lines(text, inline_comments=False):
        words = content.split(None, 2)
        if words[0].lower() == "auth":
            if len(words) != 2:
                raise ImportFailed(file, line, "auth: expected 'auth N', the number of the key in use")
            active = (words[1], line)
            continue
        if not words[0].isdigit() or len(words) < 2:
            raise ImportFailed(file, line, "expected 'auth N' or 'N METHOD [SECRET]' (METHOD sha1, md5 or crc)")
        method = words[1].lower()
        if method not in ("sha1", "md5", "crc"):
            raise ImportFailed(file, line, f"method {words[1]!r}: expected sha1, md5 or crc")
        secret = words[2].strip() if len(words) > 2 else ""
        if method != "crc" and not secret:
            raise ImportFailed(file, line, f"{method} needs a secret: 'N {method} SECRET'")
        keys[words[0]] = (method, secret, line)
    if active is None:
        raise ImportFailed(file, None, "no 'auth N' line: which key is in use?")
    if active[0] not in keys:
        raise ImportFailed(file, active[1], f"auth {active[0]}: no key {active[0]} is defined "
                                            f"(defined: {', '.join(sorted(keys)) or 'none'})")
    method, secret, line = keys[active[0]]
    if method == "crc":
        raise ImportFailed(file, line, "the key in use is crc, a checksum that anyone on the network can "
                                       "compute: it authenticates nothing and havm refuses it. Use "
                                       "--new-key for a fresh random key, or switch authkeys to sha1 first")
    exposed = mode is not None and bool(stat.S_IMODE(mode) & 0o077)
    return AuthKey(method, secret, line, exposed)


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        raise ImportFailed(path, None, "file not found") from None
    except IsADirectoryError:
        raise ImportFailed(path, None, "is a directory, expected a file") from None


def file_mode(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None
