"""The wire format: round trip, every refusal reason, and a fuzzed decoder."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from havm.membership.packet import (
    MAX_PACKET_BYTES,
    Heartbeat,
    MessageType,
    PacketCodec,
    PacketError,
    Reason,
)

KEY = b"k" * 32
NODES = ["n1", "n2", "n3"]


def codec(key: bytes = KEY, cluster: str = "lab", nodes: list[str] = NODES, links: int = 2) -> PacketCodec:
    return PacketCodec(key, cluster, nodes, links)


def packet(c: PacketCodec | None = None, sender: str = "n1", link: int = 0, payload: dict | None = None,
           mtype: MessageType = MessageType.HEARTBEAT) -> bytes:
    return (c or codec()).encode(mtype, sender, 1_700_000_000_000_000_000, 7, 1_700_000_000.5, link,
                                 payload if payload is not None else {"h": ["n1"], "m": 1, "q": 0, "a": {}})


def reason(data: bytes, c: PacketCodec | None = None) -> str:
    with pytest.raises(PacketError) as info:
        (c or codec()).decode(data)
    return info.value.reason


def test_round_trip_keeps_every_field() -> None:
    data = packet(payload={"h": ["n1", "n2"], "m": 3, "q": 1, "a": {"epoch": 4}}, link=1)
    p = codec().decode(data)
    assert (p.version, p.type, p.cluster, p.sender) == (1, MessageType.HEARTBEAT, "lab", "n1")
    assert (p.generation, p.seq, p.timestamp, p.link) == (1_700_000_000_000_000_000, 7, 1_700_000_000.5, 1)
    assert p.payload == {"h": ["n1", "n2"], "m": 3, "q": 1, "a": {"epoch": 4}}
    assert p.size == len(data)
    assert data.startswith(b"HAVM\x01\x01")


def test_header_refusals() -> None:
    good = packet()
    assert reason(b"XAVM" + good[4:]) == Reason.BAD_MAGIC
    assert reason(b"HAV") == Reason.TRUNCATED
    assert reason(good[:4] + b"\x02" + good[5:]) == Reason.BAD_VERSION
    assert reason(good[:40]) == Reason.TRUNCATED
    assert reason(good[:-1]) == Reason.TRUNCATED
    assert reason(good + b"\x00") == Reason.BAD_PAYLOAD
    assert reason(b"\x00" * (MAX_PACKET_BYTES + 1)) == Reason.TOO_LARGE


def test_forged_and_altered_packets_fail_the_mac() -> None:
    assert reason(packet(codec(key=b"x" * 32))) == Reason.BAD_MAC
    good = bytearray(packet())
    good[-40] ^= 1  # inside the payload
    assert reason(bytes(good)) == Reason.BAD_MAC


def test_other_cluster_and_unknown_node() -> None:
    assert reason(packet(codec(cluster="prod"))) == Reason.OTHER_CLUSTER
    # n9 holds the key but is not configured here
    assert reason(packet(codec(nodes=NODES + ["n9"]), sender="n9")) == Reason.UNKNOWN_NODE
    assert reason(packet(codec(links=4), link=3)) == Reason.BAD_LINK


def signed(body: bytes, key: bytes = KEY) -> bytes:
    """A correctly signed packet around an arbitrary payload (bypassing encode)."""
    head = (b"HAVM\x01\x01" + b"\x03lab" + b"\x02n1" + struct.pack(">QQdB", 1, 1, 0.0, 0)
            + struct.pack(">H", len(body)) + body)
    return head + hmac.new(key, head, hashlib.sha256).digest()


def test_bad_payload_and_type_after_a_good_mac() -> None:
    assert reason(signed(b"not json")) == Reason.BAD_PAYLOAD
    assert reason(signed(b"[1, 2]")) == Reason.BAD_PAYLOAD
    assert reason(signed(b"\xff\xfe")) == Reason.BAD_PAYLOAD
    assert reason(signed(b"[" * 1000 + b"]" * 1000)) in (Reason.BAD_PAYLOAD, Reason.TOO_LARGE)
    unknown_type = bytearray(signed(b"{}"))
    unknown_type[5] = 99
    data = bytes(unknown_type[:-32]) + hmac.new(KEY, bytes(unknown_type[:-32]), hashlib.sha256).digest()
    assert reason(data) == Reason.BAD_TYPE


def test_encode_refuses_a_packet_larger_than_a_datagram() -> None:
    with pytest.raises(PacketError) as info:
        packet(payload={"a": "x" * MAX_PACKET_BYTES})
    assert info.value.reason == Reason.TOO_LARGE


def test_heartbeat_payload_round_trip_and_members_mask() -> None:
    hb = Heartbeat(("n2", "n3"), ("n1", "n3"), True, {"epoch": 2})
    payload = hb.to_payload("n1")
    assert payload["h"] == ["n1", "n2", "n3"]
    back = Heartbeat.from_payload(payload)
    assert back.members == ("n1", "n3") and back.quorate and back.app == {"epoch": 2}
    assert set(back.hears) == {"n1", "n2", "n3"}


@pytest.mark.parametrize("payload", [
    {}, {"h": "n1", "m": 0}, {"h": [1], "m": 0}, {"h": ["n1"], "m": 2}, {"h": ["n1"], "m": -1},
    {"h": ["n1"], "m": True}, {"h": ["n1"], "m": 1, "q": 2}, {"h": ["n1"], "m": 1, "a": []},
])
def test_heartbeat_payload_shapes_are_checked(payload: dict) -> None:
    with pytest.raises(PacketError) as info:
        Heartbeat.from_payload(payload)
    assert info.value.reason == Reason.BAD_PAYLOAD


def test_thirty_two_nodes_with_app_info_fit_one_datagram() -> None:
    names = [f"node-{i:02d}" for i in range(1, 33)]
    c = codec(nodes=names)
    app = {"admin_epoch": 12, "epoch": 345, "digest": "ab" * 32, "api_port": 7694}
    data = c.encode(MessageType.HEARTBEAT, "node-01", 2**62, 2**40, 1.7e9, 0,
                    Heartbeat(tuple(names), tuple(names), True, app).to_payload("node-01"))
    assert len(data) <= 1200
    assert Heartbeat.from_payload(c.decode(data).payload).members == tuple(names)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1500))
def test_fuzz_arbitrary_bytes_raise_only_packet_error(data: bytes) -> None:
    try:
        codec().decode(data)
    except PacketError as e:
        assert e.reason in Reason.ALL


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_after_a_valid_prefix(tail: bytes) -> None:
    for data in (b"HAVM\x01\x01\x03lab" + tail, signed(tail), packet()[:30] + tail):
        try:
            p = codec().decode(data)
        except PacketError as e:
            assert e.reason in Reason.ALL
        else:
            assert isinstance(p.payload, dict)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=10))
def test_fuzz_signed_json_payloads_never_crash_the_heartbeat_parser(value: object) -> None:
    import json
    try:
        p = codec().decode(signed(json.dumps({"h": value, "m": value, "q": value, "a": value}).encode()))
        Heartbeat.from_payload(p.payload)
    except PacketError as e:
        assert e.reason in (Reason.BAD_PAYLOAD, Reason.TOO_LARGE)
