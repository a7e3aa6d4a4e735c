"""The issue's acceptance example: fencing comes before recovery, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from havm.cli.main import main
from havm.config.load import load_config
from havm.scheduler import ClusterSpec, ResourceState, State, apply, plan
from havm.scheduler.events import node_fail

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "three-node-vms.yaml"


def running_state() -> State:
    r = ResourceState()
    return State(now=1000, resources={"fs": {"n1": r, "n2": r, "n3": r}, "vm1": {"n1": r},
                                      "vm2": {"n2": r}, "ip1": {"n1": r}})


def test_node_failure_fences_before_recovery() -> None:
    spec = ClusterSpec.from_config(load_config(str(EXAMPLE), check_key=False).config)
    state = running_state()
    assert plan(spec, state).real_actions == ()  # steady state: nothing to do
    t = plan(spec, node_fail(spec, state, "n2"))
    ids = [a.id for a in t.actions]
    assert ids[0] == "fence_n2"
    starts = [a for a in t.actions if a.op == "start" and a.resource == "vm2"]
    assert len(starts) == 1 and starts[0].node in ("n1", "n3")
    assert t.depends_on(starts[0].id, "fence_n2")
    assert t.placement["vm2"] == starts[0].node
    assert t.placement["fs-clone"] == ("n1", "n3")
    assert plan(spec, apply(node_fail(spec, state, "n2"), t)).real_actions == ()


def test_simulate_cli_json(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    st = tmp_path / "state.yaml"
    st.write_text("now: 1000\nresources:\n  fs: {n1: started, n2: started, n3: started}\n"
                  "  vm1: {n1: started}\n  vm2: {n2: started}\n  ip1: {n1: started}\n")
    assert main(["simulate", str(EXAMPLE), "--state", str(st), "--node-fail", "n2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    ops = [(a["op"], a["node"]) for a in doc["actions"]]
    assert ops[0] == ("fence", "n2")
    vm2_start = next(a for a in doc["actions"] if a["op"] == "start" and a["resource"] == "vm2")
    assert "fence_n2" in vm2_start["after"]
    assert doc["placement"]["fs-clone"] == ["n1", "n3"]
    assert doc["placement"]["vm1"] == "n1"


def test_simulate_cli_text_and_dot(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["simulate", str(EXAMPLE), "--node-fail", "n2", "--scores"]) == 0
    out = capsys.readouterr().out
    assert "fence n2" in out and "Placement:" in out and "Scores:" in out
    assert main(["simulate", str(EXAMPLE), "--dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph transition {")


def test_simulate_bad_op_fail(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["simulate", str(EXAMPLE), "--op-fail", "vm1-monitor-n1"]) == 2
    assert "RSC:OP:NODE" in capsys.readouterr().err


def test_simulate_in_process_leaves_the_garbage_collector_as_it_found_it(capsys) -> None:  # type: ignore[no-untyped-def]
    import gc

    assert gc.isenabled()
    assert main(["simulate", str(EXAMPLE)]) == 0  # the fast path (no argparse)
    assert gc.isenabled()
    assert main(["simulate", str(EXAMPLE), "--node-fail", "n2"]) == 0  # through argparse
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["simulate", str(EXAMPLE)]) == 0
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
    assert capsys.readouterr().out.count("Placement:") == 3
