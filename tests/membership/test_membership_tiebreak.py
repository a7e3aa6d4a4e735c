"""The ping prober: real ping on loopback; an unreachable target via a failing ping."""

from __future__ import annotations

import shutil

import pytest

from havm.membership.tiebreak import FakeProber, PingProber


@pytest.mark.skipif(shutil.which("ping") is None, reason="needs the ping command (iputils-ping)")
def test_ping_reaches_loopback() -> None:
    assert PingProber(["127.0.0.1"]).probe_once() is True


def test_unreachable_when_ping_fails_or_is_missing() -> None:
    prober = PingProber(["127.0.0.1"])
    prober._ping = shutil.which("false")
    assert prober.probe_once() is False
    prober._ping = None
    assert prober.probe_once() is False
    assert prober.reachable() is None  # no probe finished in the background yet


def test_fake_prober() -> None:
    p = FakeProber(True)
    assert p.reachable() is True
    p.result = False
    assert p.reachable() is False
