"""The campaign's invariants, checked on hand-made timelines (pure, no lab)."""

from __future__ import annotations

from havm.lab.chaos.catalogue import markers
from havm.lab.chaos.invariants import (
    ConfigChange,
    FinalState,
    IterationRecord,
    Limits,
    check,
    recovery_gaps,
)
from havm.lab.chaos.observer import FROZEN_INCOMING, Copy, Event, Sample, frozen_status

LIMITS = Limits(bound=30.0, max_fences_per_node=2)
SAME = FinalState({"n1": "0.3:aa", "n2": "0.3:aa"}, {"n1": frozenset(), "n2": frozenset()})


def sample(t, *copies, relook=False):
    return Sample(t, tuple(Copy(vm, node, pid, status) for vm, node, pid, status in copies), relook)


def it(index=1, start=10.0, stop=15.0, recovered=20.0, **kw):
    return IterationRecord(index=index, faults=("kill n2",), kinds=("kill",), started_at=start, stopped_at=stop,
                           recovered_at=recovered, **kw)


def kinds(violations):
    return [v.kind for v in violations]


def test_a_clean_run_has_no_violation():
    timeline = [sample(9.0, ("vm1", "n2", 100, "running")),
                Event(10.0, "fault", {"fault": "kill n2"}),
                sample(10.2),
                sample(14.0, ("vm1", "n1", 200, "running"))]
    assert check(timeline, [it()], SAME, LIMITS) == []


def test_a_confirmed_double_run_is_a_violation_with_its_timeline():
    timeline = [sample(9.0, ("vm1", "n2", 100, "running")),
                Event(10.0, "fault", {"fault": "freeze-daemon n2"}),
                sample(13.0, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "running")),
                sample(13.05, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "running"), relook=True),
                sample(13.2, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "running")),
                sample(16.0, ("vm1", "n1", 200, "running"))]
    found = check(timeline, [it()], SAME, LIMITS)
    assert kinds(found) == ["double-active"]  # one episode, one violation
    v = found[0]
    assert v.iteration == 1 and v.at == 13.0 and "n1, n2" in v.message
    assert {"t": 10.0, "type": "fault", "fault": "freeze-daemon n2"} in v.excerpt
    assert any(e["type"] == "sample" and len(e["copies"]) == 2 for e in v.excerpt)


def test_a_double_seen_once_then_gone_on_the_relook_is_a_migration_switchover():
    timeline = [sample(13.0, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "running")),
                sample(13.05, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "postmigrate"), relook=True)]
    assert check(timeline, [it()], SAME, LIMITS) == []


def test_copies_that_do_not_run_the_guest_are_not_doubles():
    timeline = [sample(13.0, ("vm1", "n1", 200, "inmigrate"), ("vm1", "n2", 100, "running")),
                sample(13.1, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "postmigrate")),
                sample(13.2, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "unknown")),
                sample(13.3, ("vm1", "n2", 100, "frozen")),
                sample(13.4, ("vm1", "n2", 100, "frozen"))]
    assert check(timeline, [it()], SAME, LIMITS) == []


def test_a_frozen_incoming_copy_is_not_a_second_run():
    # the controller's node frozen while it received a migration (chaos migrate-freeze): on
    # SIGCONT its copy can only finish the migration, which pauses the source first
    assert frozen_status("inmigrate") == frozen_status(FROZEN_INCOMING) == FROZEN_INCOMING
    assert frozen_status("running") == frozen_status(None) == frozen_status("postmigrate") == "frozen"
    # frozen before the first look: a QEMU started to receive a migration is incoming
    assert frozen_status(None, incoming=True) == FROZEN_INCOMING
    assert frozen_status("running", incoming=True) == "frozen"  # it finished a migration: it runs
    timeline = [sample(13.0, ("vm1", "n1", 200, "inmigrate"), ("vm1", "n2", 100, "running")),
                sample(13.1, ("vm1", "n1", 201, FROZEN_INCOMING), ("vm1", "n2", 100, "running")),
                sample(13.2, ("vm1", "n1", 201, FROZEN_INCOMING), ("vm1", "n2", 100, "running"))]
    assert check(timeline, [it()], SAME, LIMITS) == []


def test_a_vm_started_elsewhere_while_a_frozen_copy_survives_is_a_double():
    # the frozen node was not fenced: on SIGCONT its copy runs again, next to the new one
    timeline = [sample(13.1, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "frozen")),
                sample(13.2, ("vm1", "n1", 200, "running"), ("vm1", "n2", 100, "frozen"))]
    found = check(timeline, [it()], SAME, LIMITS)
    assert kinds(found) == ["double-active"] and "the copy on n2 is frozen, not fenced" in found[0].message


def test_a_double_in_the_last_sample_counts_and_two_vms_count_apart():
    timeline = [sample(13.0, ("vm1", "n1", 1, "running"), ("vm1", "n2", 2, "running"),
                       ("vm2", "n1", 3, "running"), ("vm2", "n3", 4, "running"))]
    assert kinds(check(timeline, [], SAME, LIMITS)) == ["double-active", "double-active"]


def test_late_and_missing_recovery():
    late = it(index=1, stop=15.0, recovered=50.0)
    never = it(index=2, start=60.0, stop=65.0, recovered=None, gaps=("vm1 is stopped on no node",))
    found = check([], [late, never], SAME, LIMITS)
    assert kinds(found) == ["not-recovered", "not-recovered"]
    assert "only after 35s" in found[0].message and "never" in found[1].message
    assert "vm1 is stopped" in found[1].message


def test_fence_loop():
    assert check([], [it(fences={"n2": 2})], SAME, LIMITS) == []
    found = check([], [it(fences={"n2": 5, "n3": 1})], SAME, LIMITS)
    assert kinds(found) == ["fence-loop"] and "n2 was fenced 5 times" in found[0].message


def test_configs_must_end_identical():
    diverged = FinalState({"n1": "0.3:aa", "n2": "0.2:bb"}, {"n1": frozenset(), "n2": frozenset()})
    assert kinds(check([], [], diverged, LIMITS)) == ["config-diverged"]
    silent = FinalState({"n1": "0.3:aa", "n2": None}, {"n1": frozenset(), "n2": frozenset()})
    assert kinds(check([], [], silent, LIMITS)) == ["config-diverged"]
    after = it(config_versions={"n1": "0.3:aa", "n2": "0.2:bb"})
    assert kinds(check([], [after], SAME, LIMITS)) == ["config-diverged"]
    # a node silent right after recovery is not a divergence (the final check wants every node)
    assert check([], [it(config_versions={"n1": None, "n2": "0.2:bb"})], SAME, LIMITS) == []


def test_an_acknowledged_change_must_survive_everywhere_others_need_not():
    changes = (ConfigChange("c0001-n1", "n1", 12.0, "committed"), ConfigChange("c0002-n3", "n3", 12.0, "refused"),
               ConfigChange("c0003-n2", "n2", 12.0, "unknown"))
    kept = FinalState({"n1": "x", "n2": "x"}, {"n1": frozenset({"c0001-n1"}), "n2": frozenset({"c0001-n1"})})
    assert check([], [it(config_changes=changes)], kept, LIMITS) == []
    lost = FinalState({"n1": "x", "n2": "x"}, {"n1": frozenset({"c0001-n1"}), "n2": frozenset()})
    found = check([], [it(config_changes=changes)], lost, LIMITS)
    assert kinds(found) == ["lost-config-change"] and "missing on n2" in found[0].message


def test_markers_are_read_from_the_configuration_text():
    text = "version: 1\n# chaos change c0001-n1\nnodes: []\n# chaos change c0002-n2\n# other comment\n"
    assert markers(text) == {"c0001-n1", "c0002-n2"}


def status(node, members=("n1", "n2"), version="0.3:aa", controller="n1", resources=()):
    return {"node": node, "members": list(members), "quorum": {"quorate": True}, "controller": controller,
            "config": {"version": version}, "resources": list(resources)}


def test_recovered_means_every_node_agrees_and_each_vm_runs_once_where_havm_says():
    vm1 = {"id": "vm1", "state": "started", "nodes": ["n2"], "in_flight": {}}
    ok = {"n1": status("n1", resources=[vm1]), "n2": status("n2", resources=[vm1])}
    one = sample(1.0, ("vm1", "n2", 5, "running"))
    assert recovery_gaps(ok, one, ["vm1"]) == []
    assert recovery_gaps({**ok, "n2": None}, one, ["vm1"]) == ["no answer from n2"]
    assert "n2 sees members ['n2']" in recovery_gaps({**ok, "n2": status("n2", members=("n2",))}, one, ["vm1"])
    assert any("config versions differ" in g
               for g in recovery_gaps({**ok, "n2": status("n2", version="0.4:bb")}, one, ["vm1"]))
    moving = {**vm1, "in_flight": {"n2": "stop"}}
    assert any("in flight" in g for g in recovery_gaps({**ok, "n1": status("n1", resources=[moving])}, one, ["vm1"]))
    assert any("observer sees vm1" in g for g in recovery_gaps(ok, sample(1.0), ["vm1"]))
    assert any("havm says n2" in g for g in recovery_gaps(ok, sample(1.0, ("vm1", "n1", 5, "running")), ["vm1"]))
    two = sample(1.0, ("vm1", "n2", 5, "running"), ("vm1", "n1", 6, "paused"))
    assert recovery_gaps(ok, two, ["vm1"]) != []
