"""Anti-replay: once per link, only newer seqs, generations."""

from __future__ import annotations

import pytest

from havm.membership.packet import PacketError, Reason
from havm.membership.replay import WINDOW, ReplayGuard, Verdict


def refused(guard: ReplayGuard, *args: int) -> str:
    with pytest.raises(PacketError) as info:
        guard.check("n2", *args)
    return info.value.reason


def test_each_seq_once_per_link() -> None:
    g = ReplayGuard()
    assert g.check("n2", 10, 1, 0) == Verdict.FIRST
    assert g.check("n2", 10, 1, 1) == Verdict.ACCEPT  # same round on the other link
    assert refused(g, 10, 1, 0) == Reason.REPLAY
    assert refused(g, 10, 1, 1) == Reason.REPLAY
    assert g.check("n2", 10, 2, 0) == Verdict.ACCEPT


def test_an_older_seq_never_seen_is_still_refused() -> None:
    # a recorded packet the receiver never got (lost, or dropped by an attacker)
    # carries a stale view: it must not be accepted later
    g = ReplayGuard()
    g.check("n2", 10, 5, 0)
    assert refused(g, 10, 3, 0) == Reason.REPLAY
    assert refused(g, 10, 4, 0) == Reason.REPLAY
    assert g.check("n2", 10, 3, 1) == Verdict.ACCEPT  # links are independent
    assert g.check("n2", 10, 5 + WINDOW, 0) == Verdict.ACCEPT
    assert refused(g, 10, 6, 0) == Reason.REPLAY


def test_generations_stale_and_restart() -> None:
    g = ReplayGuard()
    g.check("n2", 10, 100, 0)
    assert refused(g, 9, 500, 0) == Reason.STALE_GENERATION
    assert g.check("n2", 11, 1, 0) == Verdict.RESTART  # seq starts over with the new generation
    assert refused(g, 10, 101, 0) == Reason.STALE_GENERATION
    assert g.generation("n2") == 11


def test_refused_packet_changes_no_state() -> None:
    g = ReplayGuard()
    g.check("n2", 10, 5, 0)
    refused(g, 10, 5, 0)
    assert g.check("n2", 10, 6, 0) == Verdict.ACCEPT


def test_retired_generation_is_refused_and_a_new_one_accepted() -> None:
    g = ReplayGuard()
    g.check("n2", 10, 5, 0)
    g.retire("n2", 10)
    assert refused(g, 10, 6, 0) == Reason.STALE_GENERATION
    assert g.check("n2", 12, 1, 0) == Verdict.RESTART
