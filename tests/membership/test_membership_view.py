"""Members, quorum and controller as pure decisions."""

from __future__ import annotations

from havm.membership.view import choose_controller, compute_members, decide_quorum, views_agree
from tests.membership.membership_harness import make_config

F = frozenset


def test_members_are_mutual() -> None:
    hears = {"n2": F({"n1", "n2"}), "n3": F({"n3"})}  # n3 does not hear us
    assert compute_members("n1", {"n2", "n3"}, hears) == F({"n1", "n2"})
    assert compute_members("n1", set(), hears) == F({"n1"})  # n2 heard us, but is dead to us


def test_majority_of_votes() -> None:
    c = make_config(nodes=3)
    assert decide_quorum(c, F({"n1", "n2"}), True, None).quorate
    d = decide_quorum(c, F({"n3"}), True, None)
    assert (d.quorate, d.votes, d.expected, d.reason) == (False, 1, 3, "minority")
    weighted = make_config(nodes=3, votes={"n1": 3})
    assert decide_quorum(weighted, F({"n1"}), True, None).quorate  # 3 of 5
    assert not decide_quorum(weighted, F({"n2", "n3"}), True, None).quorate


def test_two_nodes_without_two_node_mode_need_both() -> None:
    c = make_config(nodes=2, quorum={"tiebreaker": {"type": "lowest-node"}})
    assert not decide_quorum(c, F({"n1"}), True, None).quorate
    assert decide_quorum(c, F({"n1", "n2"}), True, None).quorate


def test_two_node_tiebreakers() -> None:
    none = make_config(nodes=2, quorum={"two_node": True})
    assert not decide_quorum(none, F({"n1"}), True, True).quorate
    lowest = make_config(nodes=2, quorum={"two_node": True, "tiebreaker": {"type": "lowest-node"}})
    assert decide_quorum(lowest, F({"n1"}), True, None).reason == "tiebreaker:lowest-node:won"
    assert not decide_quorum(lowest, F({"n2"}), True, None).quorate
    ping = make_config(nodes=2, quorum={"two_node": True, "tiebreaker": {"type": "ping", "targets": ["10.9.9.9"]}})
    assert decide_quorum(ping, F({"n2"}), True, True).quorate
    assert not decide_quorum(ping, F({"n2"}), True, False).quorate
    assert not decide_quorum(ping, F({"n2"}), True, None).quorate  # no probe result yet
    waiting = decide_quorum(ping, F({"n2"}), False, True)
    assert (waiting.quorate, waiting.reason) == (False, "tiebreaker:ping:waiting")


def test_even_split_of_four_with_lowest_node() -> None:
    c = make_config(nodes=4, quorum={"tiebreaker": {"type": "lowest-node"}})
    assert decide_quorum(c, F({"n1", "n4"}), True, None).quorate
    assert not decide_quorum(c, F({"n2", "n3"}), True, None).quorate
    assert not decide_quorum(make_config(nodes=4), F({"n1", "n4"}), True, None).quorate


def test_controller_is_lowest_of_members_and_their_reports() -> None:
    assert choose_controller(False, F({"n1", "n2"}), {}) is None
    assert choose_controller(True, F({"n2", "n3"}), {"n3": F({"n2", "n3"})}) == "n2"
    # non-transitive: n1-n2 broken, both hear n3; n2 still names n1 as n3 reports it
    assert choose_controller(True, F({"n2", "n3"}), {"n3": F({"n1", "n2", "n3"})}) == "n1"


def test_views_agree() -> None:
    m = F({"n1", "n2"})
    assert views_agree("n1", m, {"n2": m})
    assert not views_agree("n1", m, {"n2": F({"n2"})})
    assert not views_agree("n1", m, {})
