"""What lab tests of fencing read from the daemons' logs."""

from __future__ import annotations

from collections.abc import Iterable

from havm.lab.logs import LogEvent, first


def fenced_before_starts(lab_dir: str, victim: str, resources: Iterable[str], after: float) -> LogEvent:
    """Assert ``victim`` was fenced after ``after`` and that each resource's start began only
    after that fence was confirmed; return the fence's log event."""
    fenced = first(lab_dir, rf"havm\.controller \w+: fenced {victim}: confirmed off", after=after)
    assert fenced, f"{victim} was never fenced"
    for rsc in resources:
        start = first(lab_dir, rf"havm\.executor \w+: start {rsc}: rc=0 \(success\) in ([\d.]+)s", after=after)
        assert start, f"{rsc} never started again"
        began = start.at - float(start.match.group(3))  # the line is logged when the start ends
        assert began >= fenced.at - 0.002, (rsc, began, fenced.at)
    return fenced
