"""Forged, replayed, stale and other-cluster heartbeats sent for real (UDP) at
running daemons: each is dropped, counted in status, and membership stays."""

from __future__ import annotations

import socket
import time

import pytest

from havm.config.load import load_config, read_key
from havm.membership.packet import Heartbeat, MessageType, PacketCodec
from tests.daemon.cluster_proc import loopback_cluster

ROUNDS = 20


@pytest.fixture
def cluster(tmp_path):
    with loopback_cluster(tmp_path / "c", keepalive=0.2, deadtime=1.2) as c:
        yield c


def test_hostile_packets_are_dropped_counted_and_change_nothing(cluster):
    cluster.start_all()
    cluster.wait(cluster.converged, what="convergence")
    key = read_key(str(cluster.root / "authkey"))
    name = load_config(str(cluster.config_path)).config.cluster
    marks = {n: len((cluster.root / n / "havmd.log").read_text().splitlines()) for n in cluster.names}
    names = cluster.names
    st = cluster.status("n1")
    gen_n3 = next(n["generation"] for n in st["nodes"] if n["name"] == "n3")
    before = dict(st["packets"]["dropped"])
    # A heartbeat that, if believed, would say n3 no longer hears anyone: n1 would
    # drop n3 from its membership. Every variant below must be refused.
    lonely = Heartbeat(hears=("n3",), members=("n3",), quorate=False).to_payload("n3")
    good = PacketCodec(key, name, names, 1)
    forger = PacketCodec(b"not-the-cluster-key-at-all!!", name, names, 1)
    other = PacketCodec(key, "some-other-cluster", names, 1)
    now = time.time()
    packets = {
        "bad-mac": forger.encode(MessageType.HEARTBEAT, "n3", gen_n3, 10**9, now, 0, lonely),
        "other-cluster": other.encode(MessageType.HEARTBEAT, "n3", gen_n3, 10**9, now, 0, lonely),
        "replay": good.encode(MessageType.HEARTBEAT, "n3", gen_n3, 1, now, 0, lonely),  # an old seq
        "stale-generation": good.encode(MessageType.HEARTBEAT, "n3", gen_n3 - 1, 10**9, now, 0, lonely),
    }
    target = (cluster.addr["n1"], 694)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((cluster.addr["n3"].rsplit(".", 1)[0] + ".99", 0))
        for _ in range(ROUNDS):
            for data in packets.values():
                s.sendto(data, target)
            time.sleep(0.02)
    time.sleep(1.5)  # longer than deadtime: any effect would show by now
    after = cluster.status("n1")
    dropped = after["packets"]["dropped"]
    for reason in packets:
        assert dropped.get(reason, 0) - before.get(reason, 0) >= ROUNDS, (reason, dropped)
    assert after["members"] == names and after["controller"] == "n1" and after["view_agreed"]
    for n in names:  # no membership event at all since the attack began
        later = (cluster.root / n / "havmd.log").read_text().splitlines()[marks[n]:]
        assert not [line for line in later if "is dead" in line or "members:" in line or "controller:" in line]
