"""`havm status` (text): the controller's wait for actions under way."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from havm.cli.status_cmd import render

STATUS = json.loads((Path(__file__).parent / "data" / "status.json").read_text())


def test_status_text_says_what_the_controller_waits_for():
    st = copy.deepcopy(STATUS)
    assert "waits for" not in render(st)  # an older daemon's document has no controller_waiting
    st["controller_waiting"] = []
    assert "waits for" not in render(st)
    st["controller_waiting"] = ["start vm1 on n3", "n2 still driving fence n1"]
    assert ("controller waits for actions under way: start vm1 on n3; n2 still driving fence n1"
            in render(st))


def test_status_text_shows_the_controller_term():
    st = copy.deepcopy(STATUS)
    assert "(term" not in render(st)  # an older daemon's document has no controller_term
    st["controller"], st["controller_term"] = "n1", 7
    assert "Controller: n1 (term 7)" in render(st)
    st["controller"] = None  # no quorum: no controller, no term shown
    assert "Controller: -" in render(st) and "(term" not in render(st)
