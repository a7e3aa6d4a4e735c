"""The controller's snapshot: node status and what an unclean node may still run."""

from __future__ import annotations

from havm.config.load import parse_config_text
from havm.controller.snapshot import build_state
from havm.membership.view import MembershipView
from havm.scheduler import plan
from havm.scheduler.model import ClusterSpec

CONFIG = """\
cluster: t
nodes:
  - {name: n1, addresses: {ring0: 10.0.0.1}}
  - {name: n2, addresses: {ring0: 10.0.0.2}}
  - {name: n3, addresses: {ring0: 10.0.0.3}}
links: [{name: ring0}]
resources:
  - {id: a, type: dummy}
  - {id: b, type: dummy}
fencing:
  devices: [{id: power, agent: lab, params: {lab_dir: /nonexistent}}]
"""


class View:
    """Just what build_state reads of a MembershipView."""

    def __init__(self, members: tuple[str, ...], quorate: bool = True) -> None:
        self.members = members
        self.quorate = quorate

    def peer(self, name: str):  # noqa: ANN201
        raise KeyError(name)


def spec() -> ClusterSpec:
    return ClusterSpec.from_config(parse_config_text(CONFIG, "t.yaml").config)


def view(*members: str) -> MembershipView:
    return View(members)  # type: ignore[return-value]


def test_dead_node_without_report_is_assumed_to_run_what_no_member_runs():
    # n1 was the controller and died: the new controller (n2) never had its report
    reports = {"n2": {"b": {"role": "started"}}, "n3": {}}
    st = build_state(spec(), view("n2", "n3"), reports, fenced=set(), fencing_enabled=True, now=0.0)
    assert st.node("n1").status == "unclean"
    assert st.on("a")["n1"].running  # may still run there
    assert "n1" not in st.on("b")  # b runs on a member: known
    tr = plan(spec(), st)
    start_a = next(x for x in tr.real_actions if x.op == "start" and x.resource == "a")
    assert tr.depends_on(start_a.id, "fence_n1")  # never started before n1 is proven off


def test_fenced_node_runs_nothing():
    st = build_state(spec(), view("n2", "n3"), {"n2": {}, "n3": {}}, fenced={"n1"}, fencing_enabled=True, now=0.0)
    assert st.node("n1").status == "offline"
    assert "n1" not in st.on("a")
    assert not any(x.op == "fence" for x in plan(spec(), st).real_actions)


def test_known_report_of_unclean_node_is_used():
    reports = {"n1": {"a": {"role": "started"}}, "n2": {}, "n3": {}}
    st = build_state(spec(), view("n2", "n3"), reports, fenced=set(), fencing_enabled=True, now=0.0)
    assert st.on("a")["n1"].running and "n1" not in st.on("b")


def test_an_unfinished_migrations_copies_are_both_stopped_before_the_vm_starts_again():
    # n1, the controller, died during a's live migration n2 -> n3, after migrate_to: the
    # target's QEMU runs the guest once the stream ends, but migrate_from never came.
    # Read as stopped, the new controller could start a on a third node beside it.
    reports = {"n2": {"a": {"role": "migrated"}}, "n3": {"a": {"role": "incoming"}}}
    st = build_state(spec(), view("n2", "n3"), reports, fenced={"n1"}, fencing_enabled=True, now=0.0)
    assert st.on("a")["n3"].running and st.on("a")["n3"].failed
    tr = plan(spec(), st)
    starts = [x for x in tr.real_actions if x.op == "start" and x.resource == "a"]
    assert starts and all(tr.depends_on(x.id, "a_stop_n3") and tr.depends_on(x.id, "a_stop_n2") for x in starts)


def test_a_migration_leftover_does_not_clear_a_lost_node_of_the_vm():
    # chaos (migrate-kill, two nodes): n1, the controller and a's migration target, lost right
    # after migrate_to ended on n2. n2's stale copy ("migrated") said nothing of where a was:
    # the new controller restarted a on n2 before n1 was fenced, while n1's copy, resumed by
    # the migration, might run (frozen or cut off rather than dead). Likewise the other way:
    # a target's unfinished copy ("incoming") when the lost node is the source.
    for leftover in ("migrated", "incoming"):
        reports = {"n2": {"a": {"role": leftover}}, "n3": {}}
        st = build_state(spec(), view("n2", "n3"), reports, fenced=set(), fencing_enabled=True, now=0.0)
        assert st.on("a")["n1"].running, leftover
        tr = plan(spec(), st)
        starts = [x for x in tr.real_actions if x.op == "start" and x.resource == "a"]
        assert starts and all(tr.depends_on(x.id, "fence_n1") for x in starts), leftover
    # both ends of the migration known (n2 -> n3; n1, the controller, lost): a is on one of them
    reports = {"n2": {"a": {"role": "migrated"}}, "n3": {"a": {"role": "incoming"}}}
    st = build_state(spec(), view("n2", "n3"), reports, fenced=set(), fencing_enabled=True, now=0.0)
    assert "n1" not in st.on("a")
    # a stopped record (a fail count kept) holds nothing
    st = build_state(spec(), view("n2", "n3"), {"n2": {"a": {"role": "stopped", "failcount": 1}}, "n3": {}},
                     fenced=set(), fencing_enabled=True, now=0.0)
    assert st.on("a")["n1"].running
    # a copy that ran here for real (even a failed one) is where a is: nothing assumed on n1
    st = build_state(spec(), view("n2", "n3"), {"n2": {"a": {"role": "failed"}}, "n3": {}}, fenced=set(),
                     fencing_enabled=True, now=0.0)
    assert "n1" not in st.on("a")
