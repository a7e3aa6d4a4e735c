"""Planner regressions found by running Pacemaker's own scheduler inputs (bench/conformance.py)."""

from __future__ import annotations

from pathlib import Path

from havm.importers.cib import load_cib_simulation
from havm.scheduler import plan

CTS = Path(__file__).resolve().parent.parent / "importers" / "data" / "pacemaker-cts"


def test_promotable_globally_unique_clone_is_planned_like_pacemaker():
    # crashed with KeyError: targets of unique clones are kept per instance (child_rsc1:0, :1)
    spec, state = load_cib_simulation(str(CTS / "inc11.xml"))
    tr = plan(spec, state)
    assert tr.placement["child_rsc1"] == ("node1", "node2")
    assert tr.promoted["rsc1"] == ("node2",)  # crm_simulate 2.1.5: child_rsc1:1 Promoted node2
    promotes = [a for a in tr.real_actions if a.op == "promote"]
    assert len(promotes) == 1 and promotes[0].node == "node2"
