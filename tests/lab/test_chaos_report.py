"""The campaign report's figures (pure)."""

from __future__ import annotations

from havm.lab.chaos.invariants import IterationRecord
from havm.lab.chaos.report import figures, iteration_line, recovery_figures


def rec(index, kinds, start, stop, recovered, **kw):
    return IterationRecord(index=index, faults=tuple(kinds), kinds=tuple(kinds), started_at=start, stopped_at=stop,
                           recovered_at=recovered, **kw)


def test_figures():
    assert figures([]) == {"count": 0, "median": None, "p90": None, "max": None}
    f = figures([3.0, 1.0, 2.0, 10.0])
    assert (f["count"], f["median"], f["max"]) == (4, 2.5, 10.0)
    assert f["p90"] == 10.0


def test_recovery_by_kind_counts_overlapping_iterations_under_each_kind():
    records = [rec(1, ["kill"], 0.0, 5.0, 12.0), rec(2, ["kill", "loss"], 20.0, 24.0, 26.0),
               rec(3, ["partition"], 40.0, 45.0, None, gaps=("vm1 is stopped",))]
    r = recovery_figures(records)
    assert r["count"] == 2 and r["median"] == 4.5 and r["max"] == 7.0 and r["not_recovered"] == 1
    assert r["by_kind"]["kill"]["count"] == 2 and r["by_kind"]["loss"]["max"] == 2.0
    assert "partition" not in r["by_kind"]
    assert r["since_first_fault"]["max"] == 12.0
    assert "NOT RECOVERED: vm1 is stopped" in iteration_line(records[2], 3, 60.0)
    assert "recovered in   7.0s" in iteration_line(records[0], 3, 60.0)
