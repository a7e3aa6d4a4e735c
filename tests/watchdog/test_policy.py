"""The feeding policy: a pure function of one snapshot."""

from __future__ import annotations

import pytest

from havm.watchdog.policy import WatchdogSnapshot, decide


def snap(**kw) -> WatchdogSnapshot:
    base = {"armed": True, "quorate": True}
    base.update(kw)
    return WatchdogSnapshot(**base)


@pytest.mark.parametrize(("kw", "action"), [
    # quorate: fed (armed even with nothing running: a start may come any moment)
    ({"armed": False}, "feed"),
    ({"running": ("vm1",)}, "feed"),
    # quorum lost: stop feeding at once while anything runs or is under way
    ({"quorate": False, "running": ("vm1",)}, "hold"),
    ({"quorate": False, "in_flight": 1}, "hold"),
    # ... and arm (without feeding) if a restarted daemon finds resources running in a minority
    ({"armed": False, "quorate": False, "running": ("vm1",)}, "hold"),
    # everything confirmed stopped before the countdown: disarm cleanly, stay up empty
    ({"quorate": False}, "disarm"),
    # never ran anything and no quorum: never armed
    ({"armed": False, "quorate": False}, "idle"),
    # a failed stop: only a reset makes the node safe, quorum or not
    ({"running": ("vm1",), "stop_failed": ("vm1",)}, "hold"),
    ({"running": ("vm1",), "stop_failed": ("vm1",), "fencing_enabled": False}, "feed"),
    # a control loop that was blocked past the limit does not feed
    ({"loop_age": 6.0, "loop_limit": 5.0}, "hold"),
    ({"armed": False, "loop_age": 6.0, "loop_limit": 5.0}, "idle"),
    # clean stop: fed while resources stop (quorate), disarmed once nothing runs
    ({"stopping": True, "running": ("vm1",)}, "feed"),
    ({"stopping": True}, "disarm"),
    ({"stopping": True, "quorate": False, "running": ("vm1",)}, "hold"),
])
def test_decision(kw, action):
    d = decide(snap(**kw))
    assert d.action == action, d.reason
    assert d.reason


def test_reasons_name_what_runs():
    assert "vm1" in decide(snap(quorate=False, running=("vm1",))).reason
    assert "stop of vm1 failed" in decide(snap(stop_failed=("vm1",), running=("vm1",))).reason
