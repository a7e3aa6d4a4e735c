"""Heartbeat lateness as the metrics read it: send lateness sum, per-link receive lateness and silence."""

from __future__ import annotations

import pytest

from tests.membership.membership_harness import Cluster, make_config


def test_receive_lateness_counts_every_heartbeat_and_a_cut_link_grows_silence() -> None:
    c = Cluster(make_config(nodes=2, links=2))
    c.run(3.0)
    v = c.view("n1")
    p = v.peer("n2")
    l0 = p.receive_lateness["l0"]
    heard_after_first = sum(l0.histogram.values())
    # every heartbeat after the first one on the link is counted, on time (the fake
    # network delivers within one 50 ms step, keepalive 0.5 s)
    assert heard_after_first >= 4
    assert l0.histogram["inf"] == 0 and l0.histogram["1s"] == 0
    assert abs(l0.total) <= heard_after_first * c.STEP
    assert p.link_ages["l0"] is not None and p.link_ages["l0"] <= 0.5 + c.STEP
    c.net.cut(1, "n1", "n2")
    c.run(2.0)
    c.net.restore(1, "n1", "n2")
    c.run(1.0)
    p = c.view("n1").peer("n2")
    l1 = p.receive_lateness["l1"]
    # the heartbeat after the 2 s cut came ~2 s late on l1 (bucket above 1 s), not on l0
    assert l1.histogram["inf"] == 1 and l1.total >= 1.5
    assert p.receive_lateness["l0"].histogram["inf"] == 0
    c.net.cut(1, "n1", "n2")
    c.run(1.5)
    p = c.view("n1").peer("n2")
    assert p.link_ages["l1"] >= 1.4 and p.link_ages["l0"] <= 0.5 + c.STEP


def test_send_lateness_total_adds_each_round() -> None:
    c = Cluster(make_config(nodes=2, links=1))
    s = c.services["n1"]
    c.run(2.0)
    before = s.snapshot().jitter
    assert sum(before.histogram.values()) == before.count
    c.clock.advance(s.next_heartbeat_at - c.clock.monotonic() + 0.2)  # woken 0.2 s late
    s.tick()
    after = s.snapshot().jitter
    assert after.total - before.total == pytest.approx(0.2)
    assert after.histogram["500ms"] - before.histogram["500ms"] == 1
