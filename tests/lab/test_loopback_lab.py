"""Loopback labs (no namespaces): each node on its own 127.x address, process faults
through the daemon's process group. Needs no root."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from havm.errors import LabError
from havm.lab import control, daemons, lab, process
from havm.lab.plan import LabSpec
from havm.lab.state import LabState
from tests.lab.conftest import SITTER


@pytest.fixture
def loop_lab(lab_dir):
    lab.up(lab_dir, LabSpec(nodes=3, links=2, netns=False, daemon_command=SITTER), wait=False)
    return lab_dir


def test_loopback_lab_records_addresses_and_processes(loop_lab):
    st = LabState.load(loop_lab)
    assert st.mode == "loopback" and st.namespaces() == []
    octet = st.lab_octet
    assert st.nodes["n2"].addresses == {"ring0": f"127.0.{octet}.2", "ring1": f"127.1.{octet}.2"}
    for rec in st.nodes.values():
        assert daemons.daemon_alive(rec)
        assert len(daemons.node_pids(rec)) == 2  # the daemon and its child
    assert os.stat(st.key_file).st_mode & 0o077 == 0


def test_loopback_kill_daemon_then_kill_node(loop_lab):
    rec = LabState.load(loop_lab).nodes["n1"]
    group = daemons.node_pids(rec)
    control.kill_daemon(loop_lab, "n1")
    child = [p for p in group if p != rec.pid]
    assert not daemons.daemon_alive(rec) and all(process.is_alive(p) for p in child)
    assert control.kill_node(loop_lab, "n1")["killed"] == child
    assert daemons.node_pids(rec) == []
    assert all(daemons.daemon_alive(r) for r in LabState.load(loop_lab).nodes.values() if r.name != "n1")


def test_loopback_network_faults_say_they_need_namespaces(loop_lab):
    for fault in (lambda: control.partition(loop_lab, ["n1"]),
                  lambda: control.loss(loop_lab, "n1", 10),
                  lambda: control.link_down(loop_lab, "n1", "ring0")):
        with pytest.raises(LabError, match="needs network namespaces"):
            fault()
    assert control.heal(loop_lab)["healed"]  # nothing to heal: fine


def test_loopback_down_kills_groups_of_dead_daemons_too(loop_lab):
    st = LabState.load(loop_lab)
    every = [p for r in st.nodes.values() for p in daemons.node_pids(r)]
    control.kill_daemon(loop_lab, "n2")  # its child now has no living parent daemon
    res = lab.down(loop_lab)
    assert not any(process.is_alive(p) for p in every)
    assert len(res["killed"]) + len(res["stopped"]) >= 5
    assert lab.down(loop_lab)["killed"] == []


def test_loopback_node_keeps_what_earlier_daemons_started(loop_lab):
    first = LabState.load(loop_lab).nodes["n3"]
    orphan = [p for p in daemons.node_pids(first) if p != first.pid]
    control.kill_daemon(loop_lab, "n3")
    control.start_node(loop_lab, "n3", wait=False)
    second = LabState.load(loop_lab).nodes["n3"]
    assert second.groups == [first.pid, second.pid]
    assert set(orphan) < set(daemons.node_pids(second))  # still the node's
    killed = control.kill_node(loop_lab, "n3")["killed"]
    assert set(orphan) | {second.pid} <= set(killed)
    assert daemons.node_pids(second) == []


def test_a_reused_group_id_without_the_node_marker_is_not_the_node(tmp_path):
    """pid reuse: a stranger whose process group number was once a daemon's is spared;
    a process with the node's marker is the node's in any session (agent actions
    and QEMU run in sessions of their own)."""
    from havm.lab.state import NodeRecord

    def record(pid):
        d = str(tmp_path / "n1")
        return NodeRecord(name="n1", index=1, addresses={}, dir=d, state_dir=d, socket=d, log=d, groups=[pid])

    log = str(tmp_path / "log")
    stranger, start = process.spawn_detached(["sleep", "30"], log)
    env = dict(os.environ, **{daemons.MARKER: str(tmp_path / "n1")})
    ours, ours_start = process.spawn_detached(["sleep", "30"], log, env=env)
    try:
        assert daemons.node_pids(record(stranger)) == [ours]
        assert daemons.node_pids(record(ours)) == [ours]
    finally:
        process.signal_pid(stranger, 9, start)
        process.signal_pid(ours, 9, ours_start)


def test_daemon_env_is_kept_across_restarts(lab_dir):
    spec = LabSpec(nodes=1, netns=False, daemon_command=SITTER, daemon_env={"HAVM_TEST_FLAG": "on"})
    lab.up(lab_dir, spec, wait=False)
    control.kill_daemon(lab_dir, "n1")
    control.start_node(lab_dir, "n1", wait=False)
    rec = LabState.load(lab_dir).nodes["n1"]
    assert len(rec.groups) == 2
    # right after the fork /proc/PID/environ can still be empty (the exec has not happened):
    # look again for a bounded while
    deadline = time.monotonic() + 10
    while b"HAVM_TEST_FLAG=on" not in process.environ(rec.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b"HAVM_TEST_FLAG=on" in process.environ(rec.pid), _describe(rec.pid, Path(rec.log))


def _describe(pid: int, log: Path) -> str:
    """What the recorded pid is now (a CI run once found its environment empty for 10 s,
    not reproduced since: the next failure should say whether it was a zombie, another
    process or gone), with the node's log tail."""
    def read(name: str) -> str:
        try:
            return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:300]
        except OSError as e:
            return f"({e.strerror})"

    tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
    return f"pid {pid}: stat {read('stat')!r}; cmdline {read('cmdline')!r}\nlog tail:\n{tail}"
