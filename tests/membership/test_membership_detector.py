"""The failure detector's timers, with exact times."""

from __future__ import annotations

from havm.config.cluster import Timing
from havm.membership.detector import FailureDetector, LinkStatus, PeerStatus

T = Timing(keepalive=0.5, warntime=1.5, deadtime=3.0, initdead=6.0)


def detector(start: float = 100.0) -> FailureDetector:
    return FailureDetector(T, ["n2", "n3"], ["l0", "l1"], start)


def kinds(events) -> list[tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    return [(e.kind, e.peer, e.link) for e in events]


def test_unheard_peer_is_unknown_until_initdead_then_dead() -> None:
    d = detector()
    assert d.evaluate(105.9) == []
    assert d.status("n2") == PeerStatus.UNKNOWN and not d.settled()
    assert kinds(d.evaluate(106.0)) == [("dead", "n2", None), ("dead", "n3", None)]
    assert d.settled()
    assert d.link_status("n2", 0) == LinkStatus.DOWN


def test_dead_after_deadtime_of_silence_and_not_before() -> None:
    d = detector()
    assert kinds(d.heard("n2", 0, 101.0)) == [("alive", "n2", None)]
    d.heard("n2", 1, 101.0)
    assert kinds(d.evaluate(103.99)) == [("late", "n2", None)]
    assert d.status("n2") == PeerStatus.LATE
    events = d.evaluate(104.0)
    assert kinds(events) == [("dead", "n2", None)]
    assert events[0].silence == 3.0


def test_late_is_warned_once_per_episode() -> None:
    d = detector()
    d.heard("n2", 0, 101.0)
    assert d.evaluate(102.49) == []
    assert kinds(d.evaluate(102.5)) == [("late", "n2", None)]
    assert d.evaluate(102.8) == []  # still late: no second warning
    assert d.status("n2") == PeerStatus.LATE
    d.heard("n2", 0, 103.0)
    assert d.status("n2") == PeerStatus.ALIVE
    assert kinds(d.evaluate(104.5)) == [("late", "n2", None)]  # a new episode


def test_one_link_down_keeps_the_peer_alive() -> None:
    d = detector()
    for t in (101.0, 101.5):
        d.heard("n2", 0, t)
        d.heard("n2", 1, t)
    now = 101.5
    events = []
    while now < 110.0:  # link 1 goes silent, link 0 keeps working
        now += 0.5
        events += d.heard("n2", 0, now)
        events += d.evaluate(now)
    assert d.status("n2") == PeerStatus.ALIVE
    assert d.link_status("n2", 0) == LinkStatus.UP
    assert d.link_status("n2", 1) == LinkStatus.DOWN
    assert ("link-down", "n2", "l1") in kinds(events)
    assert not [e for e in events if e.kind == "dead" and e.peer == "n2"]
    assert kinds(d.heard("n2", 1, now + 0.1)) == [("link-up", "n2", "l1")]


def test_link_never_heard_is_down_after_initdead() -> None:
    d = detector()
    now = 100.0
    events = []
    while now < 107.0:
        now += 0.5
        events += d.heard("n2", 0, now)
        events += d.evaluate(now)
    assert d.link_status("n2", 1) == LinkStatus.DOWN
    assert ("link-down", "n2", "l1") in kinds(events)


def test_dead_peer_back_and_left() -> None:
    d = detector()
    d.heard("n2", 0, 101.0)
    d.evaluate(104.0)
    assert kinds(d.heard("n2", 0, 120.0)) == [("alive", "n2", None)]
    assert kinds(d.left("n2", 120.2)) == [("left", "n2", None)]
    assert d.status("n2") == PeerStatus.DEAD and d.has_left("n2")
    assert d.link_status("n2", 0) == LinkStatus.DOWN


def test_next_deadline_is_the_next_timer() -> None:
    d = detector()
    assert d.next_deadline(100.0) == 106.0  # initdead
    d.heard("n2", 0, 101.0)
    d.heard("n3", 0, 101.0)
    d.heard("n2", 1, 101.0)
    d.heard("n3", 1, 101.0)
    assert d.next_deadline(101.0) == 102.5  # warntime
    d.evaluate(102.5)
    assert d.next_deadline(102.5) == 104.0  # deadtime


def test_peers_added_later_get_initdead_from_then() -> None:
    d = detector()
    d.heard("n2", 0, 101.0)
    d.heard("n3", 0, 101.0)
    d.set_peers(["n2", "n3", "n4"], 200.0)
    d.evaluate(205.9)
    assert d.status("n4") == PeerStatus.UNKNOWN
    assert kinds(d.evaluate(206.0))[-1] == ("dead", "n4", None)
    d.set_peers(["n2"], 207.0)
    assert d.peers == ("n2",)
