"""`havm status` shows fences waiting for a watchdog, impossible fences (loudly) and the node's watchdog."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from havm.cli.status_cmd import render

STATUS = json.loads((Path(__file__).parent.parent / "cli" / "data" / "status.json").read_text())


def test_status_text_shows_watchdog_waits_and_impossible_fences():
    st = copy.deepcopy(STATUS)
    st["watchdog"] = {
        "enabled": True, "backend": "/dev/watchdog (softdog)", "armed": True, "timeout": 10.0,
        "decision": "feed", "reason": "quorate",
        "fence_waits": {"n2": {"state": "wait", "remaining": 12.5,
                               "reason": "waiting for n2's watchdog: 12.5s of fencing_watchdog_timeout 25s left"},
                        "n3": {"state": "impossible", "remaining": 0,
                               "reason": "no fence device can fence n3 and there is no watchdog"}}}
    text = render(st)
    assert "FENCING n2 BY ITS WATCHDOG: waiting for n2's watchdog: 12.5s" in text
    assert "CANNOT FENCE n3: no fence device can fence n3" in text
    assert "Watchdog: armed (/dev/watchdog (softdog), timeout 10.0s): feed, quorate" in text
    st["watchdog"] = {"enabled": False, "fence_waits": {}}
    assert "atchdog" not in render(st)
