"""The campaign's schedule is a pure function of the seed and options."""

from __future__ import annotations

import pytest

from havm.lab.chaos.schedule import (
    DEFAULT_KINDS,
    KINDS,
    MIGRATE_KILL_MAX_DELAY,
    OPT_IN,
    OVERLAPPABLE,
    ScheduleOptions,
    plan_schedule,
    usable_kinds,
)

OPTS = ScheduleOptions(nodes=["n1", "n2", "n3"], vms=["vm1", "vm2"])


def test_same_seed_same_schedule_other_seed_other_schedule():
    a = plan_schedule(7, 50, OPTS)
    assert a == plan_schedule(7, 50, OPTS)
    assert a != plan_schedule(8, 50, OPTS)
    assert [p.index for p in a] == list(range(1, 51))


def test_every_kind_appears_and_targets_are_valid():
    plans = plan_schedule(1, 400, OPTS)
    seen = {f.kind for p in plans for f in p.faults}
    assert seen == set(DEFAULT_KINDS) == set(KINDS) - set(OPT_IN)
    for p in plans:
        assert OPTS.hold[0] <= p.hold <= OPTS.hold[1]
        for f in p.faults:
            if f.kind in ("partition", "config-partition"):
                groups = f.params["groups"]
                assert sorted(n for g in groups for n in g) == ["n1", "n2", "n3"] and all(groups)
            elif f.kind == "block":
                assert f.params["src"] != f.params["dst"]
            elif f.kind in ("controller-kill", "migrate-kill", "migrate-freeze"):
                assert f.target == "controller"
            elif f.kind == "restart-all":
                assert f.target == "all"
            else:
                assert f.target in OPTS.nodes or f.target.split(":")[-1] in OPTS.vms


def test_overlap_only_combines_overlappable_kinds_within_the_hold():
    plans = plan_schedule(3, 300, ScheduleOptions(nodes=["n1", "n2", "n3"], vms=["vm1"], overlap=0.5))
    doubles = [p for p in plans if len(p.faults) == 2]
    assert 0 < len(doubles) < len(plans)
    for p in doubles:
        assert all(f.kind in OVERLAPPABLE for f in p.faults)
        assert 0 <= p.stagger <= p.hold / 2
    assert all(len(p.faults) == 1 for p in plan_schedule(3, 100, ScheduleOptions(nodes=["n1", "n2"], overlap=0)))


def test_kinds_that_do_not_apply_are_left_out():
    assert "vm-kill" not in usable_kinds(KINDS, nodes=3, vms=0)
    plans = plan_schedule(2, 100, ScheduleOptions(nodes=["n1", "n2"], kinds=("vm-kill", "kill")))
    assert {f.kind for p in plans for f in p.faults} == {"kill"}
    with pytest.raises(ValueError, match="no fault kind"):
        plan_schedule(2, 1, ScheduleOptions(nodes=["n1", "n2"], kinds=("vm-kill",)))


def test_a_seed_replays_the_schedule_it_had_before_opt_in_kinds_were_added():
    # seed 20 is the CI campaign's: its first iterations as recorded (docs/chaos.md)
    got = [" + ".join(f.describe() for f in p.faults) for p in plan_schedule(20, 6, OPTS)]
    assert got == ["controller-kill controller", "restart-all all", "freeze-daemon vm-host:vm1",
                   "freeze-daemon vm-host:vm2",
                   "loss vm-host:vm2 delay_ms=0 percent=100 + loss vm-host:vm1 delay_ms=50 percent=100",
                   "kill vm-host:vm1 + block dst=n3 src=n2"]


def test_migrate_faults_are_drawn_when_asked_for_and_need_vms():
    plans = plan_schedule(4, 50, ScheduleOptions(nodes=["n1", "n2", "n3"], vms=["vm1", "vm2"],
                                                 kinds=("migrate-kill", "migrate-freeze", "kill")))
    mk = [f for p in plans for f in p.faults if f.kind.startswith("migrate-")]
    assert {f.kind for f in mk} == {"migrate-kill", "migrate-freeze"}
    assert mk and all(f.target == "controller" and f.params["vm"] in ("vm1", "vm2")
                      and 0 <= float(f.params["delay"]) <= MIGRATE_KILL_MAX_DELAY for f in mk)
    assert all(len(p.faults) == 1 for p in plans if p.faults[0].kind.startswith("migrate-"))  # never overlapped
    assert not {"migrate-kill", "migrate-freeze"} & set(usable_kinds(KINDS, nodes=3, vms=0))
