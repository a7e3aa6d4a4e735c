"""The heartbeat wire format: a versioned header, a JSON payload, an HMAC-SHA256.

Layout (network byte order)::

    magic      4s   b"HAVM"
    version    u8   PROTOCOL_VERSION
    type       u8   MessageType
    cluster    u8 length + bytes
    sender     u8 length + bytes
    generation u64  the sender daemon's incarnation (new, larger, at every start)
    seq        u64  per sender generation; one per heartbeat round, the same on every link
    timestamp  f64  sender's wall clock (for people and for latency measurement only)
    link       u8   index of the link (in config order) the packet was sent on
    length     u16  payload length
    payload    compact JSON object
    mac        32s  HMAC-SHA256(key, every byte above)

Guarantees of ``PacketCodec.decode``: it never raises anything but
``PacketError`` whatever the bytes; it trusts no field beyond the magic, version
and cluster name before the MAC has been checked; a returned ``Packet`` was
made by a holder of the cluster key and names a configured node and link.
Freshness (replay, stale generation) is checked by ``replay.ReplayGuard``,
which needs state the stateless codec does not have.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from typing import Any

MAGIC = b"HAVM"
PROTOCOL_VERSION = 1
MAC_BYTES = 32
# One datagram on a 1500-byte MTU without fragmentation: 1500 - 20 (IP) - 8 (UDP)
# = 1472. We stay below so a VLAN tag or a tunnel does not fragment heartbeats.
MAX_PACKET_BYTES = 1400


class MessageType(IntEnum):
    """Message types on the wire. ONLY APPEND: a number once used keeps its meaning."""

    HEARTBEAT = 1  # "I am alive, I hear these nodes, these are my members"
    LEAVE = 2  # "I am stopping on purpose": peers mark the sender dead at once


class Reason:
    """Why a packet was dropped: machine codes used in counters and logs. ONLY APPEND."""

    BAD_MAGIC = "bad-magic"
    BAD_VERSION = "bad-version"
    TRUNCATED = "truncated"
    BAD_MAC = "bad-mac"
    OTHER_CLUSTER = "other-cluster"
    UNKNOWN_NODE = "unknown-node"
    REPLAY = "replay"
    STALE_GENERATION = "stale-generation"
    TOO_LARGE = "too-large"
    BAD_PAYLOAD = "bad-payload"
    BAD_TYPE = "bad-type"  # a message type this version does not know
    BAD_LINK = "bad-link"  # link index not configured
    WRONG_LINK = "wrong-link"  # arrived on another link's socket than it names: cross-wired links
    OWN = "own"  # our own packet looped back (broadcast, multicast loop)

    ALL = (BAD_MAGIC, BAD_VERSION, TRUNCATED, BAD_MAC, OTHER_CLUSTER, UNKNOWN_NODE, REPLAY,
           STALE_GENERATION, TOO_LARGE, BAD_PAYLOAD, BAD_TYPE, BAD_LINK, WRONG_LINK, OWN)


class PacketError(Exception):
    """A packet was refused; ``reason`` is one of ``Reason``'s codes."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class Packet:
    """One authenticated message. ``payload`` is a parsed JSON object: do not mutate it."""

    version: int
    type: MessageType
    cluster: str
    sender: str
    generation: int
    seq: int
    timestamp: float
    link: int
    payload: Mapping[str, Any] = field(hash=False, compare=True)
    size: int = 0


_FIXED = struct.Struct(">4sBB")
_NUMBERS = struct.Struct(">QQdB")
_LENGTH = struct.Struct(">H")
# magic+version+type, two length bytes, numbers, payload length, mac
MIN_PACKET_BYTES = _FIXED.size + 2 + _NUMBERS.size + _LENGTH.size + MAC_BYTES


def _name_bytes(name: str) -> bytes:
    raw = name.encode("utf-8")
    if not raw or len(raw) > 255:
        raise ValueError(f"name {name!r} must be 1-255 bytes")
    return raw


class PacketCodec:
    """Encodes and checks packets of one cluster, seen from one node.

    ``nodes`` are the configured node names (a packet from any other sender is
    refused as unknown-node); ``links`` is the number of configured links.
    """

    def __init__(self, key: bytes, cluster: str, nodes: Collection[str], links: int) -> None:
        if not key:
            raise ValueError("the cluster key must not be empty")
        self._key = key
        self.cluster = cluster
        self._cluster_raw = _name_bytes(cluster)
        self._nodes = {_name_bytes(n): n for n in nodes}
        self._links = links

    def encode(self, type: MessageType, sender: str, generation: int, seq: int,
               timestamp: float, link: int, payload: Mapping[str, Any]) -> bytes:
        """Build one signed packet; raises PacketError(too-large) if it would not fit a datagram."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
        sender_raw = _name_bytes(sender)
        head = b"".join((
            _FIXED.pack(MAGIC, PROTOCOL_VERSION, int(type)),
            bytes((len(self._cluster_raw),)), self._cluster_raw,
            bytes((len(sender_raw),)), sender_raw,
            _NUMBERS.pack(generation, seq, timestamp, link),
            _LENGTH.pack(len(body)),
            body,
        ))
        size = len(head) + MAC_BYTES
        if size > MAX_PACKET_BYTES:
            raise PacketError(Reason.TOO_LARGE, f"{size} bytes > {MAX_PACKET_BYTES} (payload {len(body)} bytes)")
        return head + hmac.new(self._key, head, hashlib.sha256).digest()

    def decode(self, data: bytes) -> Packet:
        """Check and parse one datagram. Raises only PacketError."""
        n = len(data)
        if n > MAX_PACKET_BYTES:
            raise PacketError(Reason.TOO_LARGE, f"{n} bytes > {MAX_PACKET_BYTES}")
        if data[:4] != MAGIC[: min(n, 4)]:
            raise PacketError(Reason.BAD_MAGIC, repr(bytes(data[:4])))
        if n < MIN_PACKET_BYTES:
            raise PacketError(Reason.TRUNCATED, f"{n} bytes < {MIN_PACKET_BYTES}")
        _, version, mtype = _FIXED.unpack_from(data, 0)
        if version != PROTOCOL_VERSION:
            raise PacketError(Reason.BAD_VERSION, f"version {version}, this daemon speaks {PROTOCOL_VERSION}")
        pos = _FIXED.size
        cluster_raw, pos = _read_name(data, pos)
        if cluster_raw != self._cluster_raw:
            raise PacketError(Reason.OTHER_CLUSTER, cluster_raw.decode("utf-8", "replace"))
        sender_raw, pos = _read_name(data, pos)
        if pos + _NUMBERS.size + _LENGTH.size + MAC_BYTES > n:
            raise PacketError(Reason.TRUNCATED, "header cut short")
        generation, seq, timestamp, link = _NUMBERS.unpack_from(data, pos)
        pos += _NUMBERS.size
        (length,) = _LENGTH.unpack_from(data, pos)
        pos += _LENGTH.size
        end = pos + length
        if end + MAC_BYTES > n:
            raise PacketError(Reason.TRUNCATED, f"payload of {length} bytes cut short")
        if end + MAC_BYTES < n:
            raise PacketError(Reason.BAD_PAYLOAD, f"{n - end - MAC_BYTES} bytes after the payload")
        expected = hmac.new(self._key, bytes(data[:end]), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, bytes(data[end:])):
            raise PacketError(Reason.BAD_MAC, "wrong key or altered packet")
        # Authenticated from here on: the sender holds the cluster key.
        sender = self._nodes.get(bytes(sender_raw))
        if sender is None:
            raise PacketError(Reason.UNKNOWN_NODE, sender_raw.decode("utf-8", "replace"))
        if link >= self._links:
            raise PacketError(Reason.BAD_LINK, f"link index {link}, {self._links} configured")
        try:
            message_type = MessageType(mtype)
        except ValueError:
            raise PacketError(Reason.BAD_TYPE, f"message type {mtype}") from None
        try:
            payload = json.loads(bytes(data[pos:end]).decode("utf-8"))
        except (ValueError, RecursionError) as e:
            raise PacketError(Reason.BAD_PAYLOAD, f"not JSON: {e}") from None
        if not isinstance(payload, dict):
            raise PacketError(Reason.BAD_PAYLOAD, "payload is not a JSON object")
        if timestamp != timestamp:  # NaN: refuse, it poisons latency statistics
            raise PacketError(Reason.BAD_PAYLOAD, "timestamp is NaN")
        return Packet(PROTOCOL_VERSION, message_type, self.cluster, sender, generation, seq,
                      timestamp, link, payload, n)


def _read_name(data: bytes, pos: int) -> tuple[bytes, int]:
    if pos >= len(data):
        raise PacketError(Reason.TRUNCATED, "name length missing")
    length = data[pos]
    pos += 1
    if length == 0:
        raise PacketError(Reason.BAD_PAYLOAD, "empty name")
    if pos + length > len(data):
        raise PacketError(Reason.TRUNCATED, "name cut short")
    return bytes(data[pos:pos + length]), pos + length


@dataclass(frozen=True)
class Heartbeat:
    """The payload of a HEARTBEAT.

    ``hears``: nodes whose heartbeats the sender currently receives (alive in its
    failure detector); ``members``: its membership (a subset of hears, plus
    itself); ``app``: the daemon's small app info (config version, API port).
    Encoded compactly: members as a bit mask over the sorted ``hears`` list.
    """

    hears: tuple[str, ...]
    members: tuple[str, ...]
    quorate: bool
    app: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @cached_property
    def hears_set(self) -> frozenset[str]:
        return frozenset(self.hears)

    @cached_property
    def members_set(self) -> frozenset[str]:
        return frozenset(self.members)

    def to_payload(self, sender: str) -> dict[str, Any]:
        hears = sorted(set(self.hears) | {sender})
        mask = 0
        members = set(self.members)
        for i, name in enumerate(hears):
            if name in members:
                mask |= 1 << i
        return {"h": hears, "m": mask, "q": 1 if self.quorate else 0, "a": dict(self.app)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Heartbeat:
        """Parse a heartbeat payload; raises PacketError(bad-payload) on any wrong shape."""
        hears = payload.get("h")
        mask = payload.get("m")
        quorate = payload.get("q", 0)
        app = payload.get("a", {})
        if not isinstance(hears, list) or not all(isinstance(h, str) for h in hears):
            raise PacketError(Reason.BAD_PAYLOAD, "'h' must be a list of node names")
        if not isinstance(mask, int) or isinstance(mask, bool) or mask < 0 or mask >> len(hears):
            raise PacketError(Reason.BAD_PAYLOAD, "'m' must be a bit mask over 'h'")
        if quorate not in (0, 1) or isinstance(quorate, bool):
            raise PacketError(Reason.BAD_PAYLOAD, "'q' must be 0 or 1")
        if not isinstance(app, dict):
            raise PacketError(Reason.BAD_PAYLOAD, "'a' must be an object")
        members = tuple(h for i, h in enumerate(hears) if mask >> i & 1)
        return cls(tuple(hears), members, bool(quorate), app)
