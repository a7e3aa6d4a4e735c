"""Whole services over the fake network, driven by a ManualClock: no sockets, no sleeps."""

from __future__ import annotations

import pytest

from havm.membership.packet import MessageType, PacketCodec, Reason
from havm.membership.view import MembershipView
from tests.membership.membership_harness import KEY, Cluster, make_config


def members(c: Cluster, name: str) -> tuple[str, ...]:
    return c.view(name).members


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_three_nodes_join_agree_and_elect_one_controller(cluster_of) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    for name in ("n1", "n2", "n3"):
        v = c.view(name)
        assert v.members == ("n1", "n2", "n3")
        assert v.quorate and v.votes == 3 and v.expected_votes == 3 and v.quorum_reason == "majority"
        assert v.controller == "n1" and v.agreed
        assert {p.name: p.state for p in v.peers} == {p: "alive" for p in ("n1", "n2", "n3") if p != name}
        assert all(s == "up" for p in v.peers for s in p.links.values())
        assert all(lk.up and lk.peers_up == 2 for lk in v.links)
    v = c.view("n2")
    assert v.peer("n1").app == {"api_port": 7694, "epoch": 1}
    assert v.advertised("n1", "epoch") == 1
    assert v.advertised("n1", "cfg") is None and v.advertised("n9", "epoch") is None  # not sent; no such peer
    assert v.peer("n1").clock_offset == pytest.approx(0.0, abs=0.1)  # one clock, delivery within a step
    assert v.traffic.sent_packets == v.seq * 2 * 2 and v.traffic.drops == {}
    assert v.jitter.count == v.seq and v.jitter.max <= c.STEP


def test_dead_after_deadtime_and_not_before(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    c.kill("n3")
    age = c.view("n1").peer("n3").last_heard_age
    assert age is not None and age < 0.5
    c.run(2.95 - age)  # just under deadtime since n3 was last heard
    v = c.view("n1")
    assert v.peer("n3").state == "late" and "n3" in v.members
    assert v.peer("n3").last_heard_age < 3.0
    c.run(0.1)
    v = c.view("n1")
    assert v.peer("n3").state == "dead" and v.members == ("n1", "n2")
    assert v.quorate and v.controller == "n1"
    c.run(1.0)  # n2's next heartbeat reports the same members
    assert c.view("n1").agreed and c.view("n2").members == ("n1", "n2")
    assert warnings_about(caplog, "peer n3 is dead")
    assert len(warnings_about(caplog, "peer n3 is late")) == 2  # once on n1, once on n2


def test_initdead_grace_for_a_peer_never_heard(cluster_of) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.kill("n3")  # never sends anything
    c.run(5.9)  # initdead is 6 s: n3 is unknown, not dead, although deadtime passed
    v = c.view("n1")
    assert not v.settled
    assert v.peer("n3").state == "unknown" and v.peer("n3").links == {"l0": "unknown", "l1": "unknown"}
    assert v.members == ("n1", "n2") and v.quorate
    c.run(0.2)
    assert c.view("n1").peer("n3").state == "dead" and c.view("n1").settled


def test_one_link_down_keeps_the_node_alive(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    c.net.cut(1, "n1", "n2")
    c.run(4.0)
    v = c.view("n1")
    assert v.members == ("n1", "n2", "n3")
    assert v.peer("n2").state == "alive"
    assert v.peer("n2").links == {"l0": "up", "l1": "down"}
    assert v.peer("n3").links == {"l0": "up", "l1": "up"}
    assert [(lk.name, lk.up, lk.peers_up) for lk in v.links] == [("l0", True, 2), ("l1", True, 1)]
    assert warnings_about(caplog, "link l1 to peer n2 is down")
    assert not warnings_about(caplog, "is dead")
    c.net.restore(1, "n1", "n2")
    c.run(1.0)
    assert c.view("n1").peer("n2").links["l1"] == "up"


def test_link_down_for_every_peer_is_reported(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    for a, b in (("n1", "n2"), ("n1", "n3")):
        c.net.cut(0, a, b)
    c.run(4.0)
    v = c.view("n1")
    assert [(lk.name, lk.up) for lk in v.links] == [("l0", False), ("l1", True)]
    assert v.members == ("n1", "n2", "n3")
    assert warnings_about(caplog, "link l0 is down: no peer heard on it")
    assert v.links[0].lost == 0  # nothing lost *on l1*; losses are counted where gaps appear


def test_warntime_warns_once_without_changing_membership(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    c.net.partition(["n1", "n3"], ["n2", "n3"])  # n1 and n2 cannot hear each other for a while
    c.run(2.2)  # warntime 1.5 < silence < deadtime 3
    assert c.view("n1").peer("n2").state == "late"
    assert "n2" in c.view("n1").members
    c.net.heal()
    c.run(1.0)
    assert c.view("n1").peer("n2").state == "alive"
    assert len(warnings_about(caplog, "peer n2 is late")) == 1
    assert not warnings_about(caplog, "is dead")


def test_forged_replayed_other_cluster_and_stale_packets_are_dropped(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    before = c.view("n1")
    # a genuine packet of n2, captured from the wire: replayed later
    genuine = [d for (src, link, d) in c.net.captured if src == "n2" and link == 0][-1]
    codec = PacketCodec(KEY, "lab", ["n1", "n2", "n3"], 2)
    hb_all = {"h": ["n1", "n2", "n3"], "m": 0, "q": 0, "a": {"evil": 1}}
    forged = PacketCodec(b"wrong-key-wrong-key-wrong-key!!!", "lab", ["n1", "n2", "n3"], 2).encode(
        MessageType.LEAVE, "n2", 2**63, 10**6, 0.0, 0, {})
    other = PacketCodec(KEY, "prod", ["n1", "n2", "n3"], 2).encode(
        MessageType.LEAVE, "n2", 2**63, 10**6, 0.0, 0, {})
    stale = codec.encode(MessageType.LEAVE, "n2", c.view("n1").peer("n2").generation - 1, 10**6, 0.0, 0, {})
    wrong_link = codec.encode(MessageType.HEARTBEAT, "n2", c.view("n1").peer("n2").generation, 10**6, 0.0, 1,
                              hb_all)
    for data in (genuine, forged, other, stale, b"garbage", wrong_link):
        c.net.inject("n1", 0, data)
    c.net.deliver()
    after = c.view("n1")
    assert after.traffic.drops == {Reason.REPLAY: 1, Reason.BAD_MAC: 1, Reason.OTHER_CLUSTER: 1,
                                   Reason.STALE_GENERATION: 1, Reason.BAD_MAGIC: 1, Reason.WRONG_LINK: 1}
    assert after.key == before.key
    assert after.peer("n2").app == {"api_port": 7694, "epoch": 1}
    assert warnings_about(caplog, "wrong cluster key on a sender, or forged packets")
    for _ in range(5):  # more forgeries within the minute: counted, not logged again
        c.net.inject("n1", 0, forged)
    c.net.deliver()
    assert len(warnings_about(caplog, "forged packets")) == 1
    c.run(61.0)
    c.net.inject("n1", 0, forged)
    c.net.deliver()
    assert warnings_about(caplog, "dropped 6 packet(s) in the last minute: wrong cluster key")
    assert c.view("n1").traffic.drops[Reason.BAD_MAC] == 7


def test_partition_two_plus_one_then_heal(cluster_of) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    c.net.partition(["n1", "n2"], ["n3"])
    c.run(4.0)
    for name in ("n1", "n2"):
        v = c.view(name)
        assert v.members == ("n1", "n2") and v.quorate and v.controller == "n1" and v.agreed
    v3 = c.view("n3")
    assert v3.members == ("n3",) and not v3.quorate and v3.controller is None
    c.net.partition(["n2", "n3"], ["n1"])  # the controller itself is cut off
    c.run(4.0)
    assert c.view("n1").controller is None and not c.view("n1").quorate
    assert c.view("n2").controller == "n2" and c.view("n3").controller == "n2"
    c.net.heal()
    c.run(2.0)
    views = [c.view(n) for n in ("n1", "n2", "n3")]
    assert {v.members for v in views} == {("n1", "n2", "n3")}
    assert {v.controller for v in views} == {"n1"}
    assert all(v.quorate and v.agreed for v in views)


def test_non_transitive_split_still_names_one_controller(cluster_of) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    for link in (0, 1):
        c.net.cut(link, "n1", "n2")
    c.run(4.0)
    assert c.view("n1").members == ("n1", "n3")
    assert c.view("n2").members == ("n2", "n3")
    assert {c.view(n).controller for n in ("n1", "n2", "n3")} == {"n1"}
    assert not any(c.view(n).agreed for n in ("n1", "n2", "n3"))


@pytest.mark.parametrize("tiebreaker, ping, lone_quorate", [
    ({"type": "none"}, None, {"n1": False, "n2": False}),
    ({"type": "lowest-node"}, None, {"n1": True, "n2": False}),
    ({"type": "ping", "targets": ["192.0.2.1"]}, True, {"n1": True, "n2": True}),
    ({"type": "ping", "targets": ["192.0.2.1"]}, False, {"n1": False, "n2": False}),
])
def test_two_node_split_with_each_tiebreaker(cluster_of, tiebreaker, ping, lone_quorate) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of(nodes=2, quorum={"two_node": True, "tiebreaker": tiebreaker}, ping=ping)
    c.run(2.0)
    assert all(c.view(n).quorate and c.view(n).controller == "n1" for n in ("n1", "n2"))
    c.net.partition(["n1"], ["n2"])
    c.run(4.0)
    for name, quorate in lone_quorate.items():
        v = c.view(name)
        assert v.members == (name,)
        assert v.quorate is quorate, (name, v.quorum_reason)
        assert v.controller == (name if quorate else None)


def test_two_node_lone_start_waits_for_initdead_before_the_tiebreaker(cluster_of) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of(nodes=2, quorum={"two_node": True, "tiebreaker": {"type": "ping", "targets": ["192.0.2.1"]}},
                   ping=True)
    c.kill("n2")
    c.run(5.9)
    v = c.view("n1")
    assert not v.quorate and v.quorum_reason == "tiebreaker:ping:waiting"
    c.run(0.2)
    assert c.view("n1").quorate and c.view("n1").controller == "n1"
    c.probers["n1"].result = False  # the ping targets become unreachable
    c.run(0.5)
    assert not c.view("n1").quorate


def test_restart_is_detected_and_reported(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    old = c.view("n1").peer("n2").generation
    c.kill("n2")
    c.run(1.0)
    c.start("n2")
    c.run(1.0)
    p = c.view("n1").peer("n2")
    assert p.generation > old and p.restarts == 1 and p.state == "alive" and p.member
    assert warnings_about(caplog, "peer n2 restarted")
    assert c.view("n2").members == ("n1", "n2", "n3")


def test_leave_marks_the_peer_dead_at_once(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    c.services["n3"].leave()
    c.kill("n3")
    c.run(0.1)
    p = c.view("n1").peer("n3")
    assert p.state == "dead" and p.left and c.view("n1").members == ("n1", "n2")
    assert warnings_about(caplog, "peer n3 left")


def test_subscribers_hear_changes_only(cluster_of) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    seen: list[MembershipView] = []
    c.services["n1"].subscribe(seen.append)
    c.run(2.0)
    assert seen and seen[-1].members == ("n1", "n2", "n3")
    count = len(seen)
    c.run(2.0)  # steady state: nothing to say
    assert len(seen) == count
    c.app["n2"] = {"api_port": 7694, "epoch": 2}
    c.run(1.0)
    assert len(seen) == count + 1 and seen[-1].peer("n2").app["epoch"] == 2
    c.kill("n3")
    c.run(4.0)
    assert seen[-1].members == ("n1", "n2")


def test_update_config_adds_a_node_with_initdead(cluster_of) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    bigger = make_config(nodes=4)
    for s in c.services.values():
        s.update_config(bigger)
    c.config = bigger
    c.run(1.0)
    v = c.view("n1")
    assert v.peer("n4").state == "unknown" and v.expected_votes == 4 and v.quorate
    c.start("n4")
    c.run(1.5)
    assert {c.view(n).members for n in c.services} == {("n1", "n2", "n3", "n4")}
    with pytest.raises(ValueError, match="links changed"):
        c.services["n1"].update_config(make_config(nodes=4, links=1))


def test_heartbeat_rounds_keep_a_fixed_cadence(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    s = c.services["n1"]
    c.run(1.0)
    seq = s.snapshot().seq
    due = s.next_heartbeat_at
    c.clock.advance(due - c.clock.monotonic() + 0.2)  # woken 0.2 s late: sends at once...
    s.tick()
    assert s.snapshot().seq == seq + 1 and s.snapshot().jitter.max == pytest.approx(0.2)
    assert s.snapshot().jitter.histogram["500ms"] == 1  # 0.2 s late: in the (100ms, 500ms] bucket
    assert s.next_heartbeat_at == pytest.approx(due + 0.5)  # ...and the next round stays on the grid
    c.clock.advance(0.3)
    s.tick()
    assert s.snapshot().seq == seq + 2
    c.clock.advance(2.0)  # stalled for several rounds: they are skipped, not sent in a burst
    s.tick()
    assert s.snapshot().seq == seq + 3
    assert s.next_heartbeat_at > c.clock.monotonic()
    assert warnings_about(caplog, "round(s) skipped")


def test_bad_app_info_never_stops_heartbeats(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(1.0)
    good = dict(c.app["n2"])

    def broken() -> dict:
        raise RuntimeError("config store busy")
    c.services["n2"]._app_info = broken
    c.run(2.0)
    assert c.view("n1").peer("n2").state == "alive"
    assert c.view("n1").peer("n2").app == good  # the last good app info is sent again
    assert len([r for r in caplog.records if "app info unavailable" in r.getMessage()]) == 1
    c.services["n2"]._app_info = lambda: {"blob": "x" * 1000}  # too large for a heartbeat
    c.run(1.0)
    assert c.view("n1").peer("n2").app == good and c.view("n1").peer("n2").state == "alive"


def test_update_config_to_a_ping_tiebreaker_makes_a_ping_prober(cluster_of) -> None:  # type: ignore[no-untyped-def]
    from havm.membership.tiebreak import PingProber
    c = cluster_of(nodes=2, quorum={"two_node": True})
    s = c.services["n1"]
    s.prober = None
    s.update_config(make_config(nodes=2, quorum={"two_node": True, "tiebreaker": {
        "type": "ping", "targets": ["127.0.0.1"]}}))
    assert isinstance(s.prober, PingProber) and s.prober.targets == ["127.0.0.1"]
    s.update_config(make_config(nodes=2, quorum={"two_node": True}))
    assert s.prober is None


def test_lost_heartbeats_are_counted_per_link(cluster_of) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    first = c.view("n2").seq + 1
    c.net.cut(0, "n2", "n1", both_ways=False)  # n2 -> n1 on link l0 only
    c.run(1.0)
    last = c.view("n2").seq
    c.net.restore(0, "n2", "n1")
    c.run(1.0)
    v = c.view("n1")
    assert [lk.lost for lk in v.links] == [last - first + 1, 0]
    assert v.peer("n2").links == {"l0": "up", "l1": "up"}


def test_delay_and_single_losses_below_warntime_change_nothing(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    before = c.view("n1").key
    c.net.set_delay(0.4)
    c.run(3.0)
    for _ in range(6):
        c.net.drop_next(1)  # a datagram lost now and then: the other link still carries
        c.run(0.5)
    assert c.view("n1").key == before
    assert not warnings_about(caplog, "is late") and not warnings_about(caplog, "is down")


def test_all_peers_dead_leaves_links_unknown_not_down(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    c = cluster_of()
    c.run(2.0)
    c.kill("n2")
    c.kill("n3")
    c.run(4.0)
    v = c.view("n1")
    assert v.members == ("n1",) and not v.quorate and v.controller is None
    assert [lk.state for lk in v.links] == ["unknown", "unknown"]  # dead peers or dead links: cannot tell
    assert not warnings_about(caplog, "link l0 is down")
    assert warnings_about(caplog, "quorum lost (1 of 3 votes, minority)")


def freeze(c: Cluster, name: str, seconds: float) -> None:
    """``name``'s process is stopped (SIGSTOP) for ``seconds``: it neither ticks nor reads
    (what peers send meanwhile is lost, the worst case); the others run on."""
    service = c.services.pop(name)
    receiver = c.net._receivers.pop(name)
    c.run(seconds)
    c.net._receivers[name] = receiver
    c.services[name] = service


def test_a_node_resuming_from_a_freeze_does_not_judge_the_silence_it_did_not_hear(cluster_of, caplog) -> None:  # type: ignore[no-untyped-def]
    # Chaos finding 3: n2's havmd was stopped ~4 s; at the instant it resumed it declared n1
    # dead (it had not listened), won quorum alone through the ping tiebreaker and fenced n1.
    c = cluster_of(nodes=2, quorum={"two_node": True, "tiebreaker": {"type": "ping", "targets": ["192.0.2.1"]}},
                   ping=True)
    c.run(2.0)
    seen: list[MembershipView] = []
    c.services["n2"].subscribe(seen.append)
    freeze(c, "n2", 4.0)  # more than deadtime (3 s): n1 declared n2 dead meanwhile
    assert c.view("n1").members == ("n1",)
    c.services["n2"].tick()  # the wake-up, before any datagram is read
    v = c.view("n2")
    assert v.peer("n1").state in ("alive", "late") and v.controller != "n2"
    assert warnings_about(caplog, "membership thread stalled 3.50s")  # 4 s less one keepalive (a normal sleep)
    c.run(1.0)  # n1's heartbeats (it does not hear n2 yet), then each hears the other
    assert c.view("n1").members == c.view("n2").members == ("n1", "n2")
    assert not [w for w in seen if w.peer("n1").state == "dead"]  # n2 never took n1 for dead
    # (n2 alone may be quorate for the one heartbeat in which n1 does not list it yet: n1 is
    # then alive but not a member, which the controller waits deadtime for, never fences)
    assert all(w.peer("n1").state == "alive" for w in seen if w.controller == "n2")


def test_time_listened_before_a_stall_still_counts(cluster_of) -> None:  # type: ignore[no-untyped-def]
    # a stall delays the verdict on a really dead peer by the stall only, never forever
    c = cluster_of()
    c.run(2.0)
    c.kill("n3")
    c.run(1.0)  # n1 listened to n3's silence for over 1 s
    listened = c.view("n1").peer("n3").last_heard_age
    freeze(c, "n1", 5.0)
    c.services["n1"].tick()
    assert c.view("n1").peer("n3").state == "late"  # not dead at the wake-up...
    # (the last keepalive before the wake-up counts as listened: a normal sleep is that long)
    c.run(3.0 - listened - 0.5 - 0.1)
    assert c.view("n1").peer("n3").state == "late"
    c.run(0.2)  # ...dead once it has listened to deadtime of silence in all
    assert c.view("n1").peer("n3").state == "dead" and c.view("n1").members == ("n1", "n2")


def test_a_view_is_stale_from_a_long_stall_until_the_node_has_listened_again(cluster_of) -> None:  # type: ignore[no-untyped-def]
    # keepalive 0.5 s, deadtime 3 s: a node whose membership thread did not run for
    # deadtime/2 may have been declared dead; it starts nothing until it listened again
    c = cluster_of()
    c.run(2.0)
    assert c.view("n1").stale == ""
    freeze(c, "n1", 1.0)  # shorter than deadtime/2: no peer can have declared n1 dead
    assert c.view("n1").stale == ""
    c.services["n1"].tick()
    assert c.view("n1").stale == ""
    freeze(c, "n1", 4.0)
    # asked before the membership thread ran again (the control thread, right after SIGCONT)
    assert c.view("n1").stale.startswith("the membership thread has not run for 4.")
    c.services["n1"].tick()  # the wake-up: the stall is noted, peers are not heard yet
    assert "from a 4." in c.view("n1").stale and "listening to peers again" in c.view("n1").stale
    c.run(0.9)
    assert c.view("n1").stale != ""
    c.run(0.2)  # 2 x keepalive after the wake-up: every live peer was heard again
    assert c.view("n1").stale == ""
    assert c.view("n2").stale == ""  # the others never stalled
