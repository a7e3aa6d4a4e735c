"""Namespace labs for real: namespaces, veths, bridges, partitions, loss, process faults.

These tests run real processes in real network namespaces and send real UDP
between them; the nodes run SITTER (a process and its child) because what is
tested is the lab, not havmd (see test_havmd_lab.py for that).
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from havm.errors import LabError, NotFound, UsageError
from havm.lab import control, daemons, lab, netns, process
from havm.lab.plan import LabSpec
from havm.lab.state import STATE_FILE, LabState
from tests.lab.conftest import SITTER, lab_netns, needs_netns, root_links
from tests.lab.udp import udp_count, udp_rtts

pytestmark = [pytest.mark.lab, needs_netns]


def test_up_builds_namespaces_veths_bridges_and_down_leaves_nothing(lab_dir, sitter_lab):
    links_before, netns_before = root_links(), set(netns.list_netns())
    sitter_lab(nodes=3, links=2)
    st = LabState.load(lab_dir)
    assert lab_netns(lab_dir) == set(st.namespaces()) and len(st.namespaces()) == 4
    for rec in st.nodes.values():
        addrs = netns.run(["ip", "-n", rec.netns, "-br", "-4", "addr"]).stdout
        assert f"{rec.addresses['ring0']}/24" in addrs and f"{rec.addresses['ring1']}/24" in addrs
        assert netns.link_states(rec.netns)["lo"] in ("UNKNOWN", "UP")
        assert daemons.daemon_alive(rec)
    for link, bridge in st.bridges.items():
        ports = netns.run(["ip", "-n", st.switch_netns, "-br", "link", "show", "master", bridge]).stdout
        assert sorted(line.split("@")[0] for line in ports.splitlines()) == [f"n{i}-{link}" for i in (1, 2, 3)]
    lab_ifnames = {i.node_if for r in st.nodes.values() for i in r.interfaces.values()} | \
        {i.switch_if for r in st.nodes.values() for i in r.interfaces.values()} | set(st.bridges.values())
    # nothing of the lab in the root namespace (other labs may come and go meanwhile)
    assert not (set(root_links()) - set(links_before)) & lab_ifnames

    result = lab.down(lab_dir)
    assert sorted(result["namespaces_deleted"]) == sorted(st.namespaces())
    assert len(result["killed"]) >= 3  # each node's child at least (daemons got SIGTERM first)
    assert not lab_netns(lab_dir) and not (set(netns.list_netns()) - netns_before) & set(st.namespaces())
    assert not (set(root_links()) - set(links_before)) & lab_ifnames
    assert all(not daemons.daemon_alive(r) for r in st.nodes.values())
    assert lab.down(lab_dir) == {"dir": st.dir, "killed": [], "stopped": [], "namespaces_deleted": []}
    assert LabState.load(lab_dir).status == "down"


def test_two_labs_side_by_side_do_not_collide(lab_dirs):
    a, b = lab_dirs(), lab_dirs()
    spec = LabSpec(nodes=2, links=1, daemon_command=SITTER)
    lab.up(a, spec, wait=False)
    lab.up(b, spec, wait=False)
    assert lab_netns(a) and lab_netns(b) and lab_netns(a).isdisjoint(lab_netns(b))
    # same addresses, separate wires: each lab's traffic stays inside it
    assert udp_count(a, "n1", "n2", "10.213.0.2") > 0
    # a holder's mount namespace must not pin anyone's network namespaces (ip netns mounts)
    for lab_dir in (a, b):
        for rec in LabState.load(lab_dir).nodes.values():
            mounts = netns.run(["nsenter", f"--target={rec.holder_pid}", "--mount", "findmnt", "-rn",
                                "-o", "TARGET"]).stdout.split()
            assert not [m for m in mounts if m.startswith(netns.NETNS_DIR)]
    lab.down(a)
    assert not lab_netns(a) and len(lab_netns(b)) == 3
    assert udp_count(b, "n1", "n2", "10.213.0.2") > 0


def test_up_refuses_a_running_lab_and_a_foreign_dir(lab_dirs, sitter_lab, lab_dir):
    sitter_lab(nodes=1, links=1)
    with pytest.raises(LabError, match="already runs"):
        lab.up(lab_dir, LabSpec(nodes=1, daemon_command=SITTER), wait=False)
    first = LabState.load(lab_dir).nodes["n1"]
    lab.up(lab_dir, LabSpec(nodes=2, daemon_command=SITTER), wait=False, replace=True)
    assert not daemons.daemon_alive(first) and list(LabState.load(lab_dir).nodes) == ["n1", "n2"]
    assert len(lab_netns(lab_dir)) == 3
    foreign = lab_dirs()
    with open(os.path.join(foreign, "precious.txt"), "w") as f:
        f.write("keep me")
    with pytest.raises(LabError, match="not a lab directory"):
        lab.up(foreign, LabSpec(nodes=1, daemon_command=SITTER), wait=False)
    assert os.listdir(foreign) == ["precious.txt"]


def test_partition_blocks_udp_between_groups_only_and_heal_restores(lab_dir, sitter_lab):
    sitter_lab(nodes=3, links=2)
    assert udp_count(lab_dir, "n1", "n2", "10.213.0.2") >= 45
    control.partition(lab_dir, ["n1", "n2,n3"])
    for link in (0, 1):
        assert udp_count(lab_dir, "n1", "n2", f"10.213.{link}.2") == 0
        assert udp_count(lab_dir, "n3", "n1", f"10.213.{link}.1") == 0
        assert udp_count(lab_dir, "n3", "n2", f"10.213.{link}.2") >= 45
    assert lab.status(lab_dir)["nodes"]["n1"]["faults"]["partition_group"] == ["n1"]
    control.heal(lab_dir)
    assert udp_count(lab_dir, "n1", "n2", "10.213.1.2") >= 45
    assert "DROP" not in netns.iptables_save(LabState.load(lab_dir).nodes["n1"].netns)


def test_link_down_cuts_one_link_only(lab_dir, sitter_lab):
    sitter_lab(nodes=2, links=2)
    control.link_down(lab_dir, "n2", "ring0")
    before = lab.status(lab_dir)["nodes"]["n2"]["interfaces"]
    assert udp_count(lab_dir, "n1", "n2", "10.213.0.2") == 0
    assert udp_count(lab_dir, "n1", "n2", "10.213.1.2") >= 45
    st = lab.status(lab_dir)
    after = st["nodes"]["n2"]["interfaces"]
    assert after["ring1"]["rx_packets"] - before["ring1"]["rx_packets"] >= 45  # counters for benches
    assert after["ring0"]["rx_packets"] == before["ring0"]["rx_packets"]
    assert st["nodes"]["n2"]["processes"] == 2 and st["nodes"]["n2"]["rss_kb"] > 0
    assert st["nodes"]["n2"]["interfaces"]["ring0"]["switch_port"] == "DOWN"
    assert st["nodes"]["n2"]["faults"]["links_down"] == ["ring0"]
    control.link_up(lab_dir, "n2", "ring0")
    assert udp_count(lab_dir, "n1", "n2", "10.213.0.2") >= 45
    with pytest.raises(UsageError, match="unknown link"):
        control.link_down(lab_dir, "n2", "ring7")


def test_loss_drops_what_the_node_sends_and_is_removed(lab_dir, sitter_lab):
    sitter_lab(nodes=2, links=2)
    res = control.loss(lab_dir, "n1", 100, link="ring0")
    ns = LabState.load(lab_dir).nodes["n1"].netns
    assert udp_count(lab_dir, "n1", "n2", "10.213.0.2") == 0
    assert udp_count(lab_dir, "n1", "n2", "10.213.1.2") >= 45  # other link untouched
    assert udp_count(lab_dir, "n2", "n1", "10.213.0.1") >= 45  # what n1 receives untouched
    method = res["loss"]["n1"]["ring0"]["method"]
    if method == "netem":
        assert "netem" in netns.run(netns.in_netns(ns, ["tc", "qdisc", "show", "dev", "ring0"])).stdout
    else:
        assert "statistic" in netns.iptables_save(ns)
    # a partial loss loses some, not all (400 datagrams at 50%: outside 100..300 is a 1e-20 event)
    control.loss(lab_dir, "n1", 50, link="ring1")
    arrived = udp_count(lab_dir, "n1", "n2", "10.213.1.2", count=400)
    assert 100 <= arrived <= 300
    control.loss(lab_dir, "n1", 0)
    assert lab.status(lab_dir)["nodes"]["n1"]["faults"]["loss"] == {}
    assert "statistic" not in netns.iptables_save(ns)
    assert "netem" not in netns.run(netns.in_netns(ns, ["tc", "qdisc", "show"])).stdout
    assert udp_count(lab_dir, "n1", "n2", "10.213.0.2") >= 45


def _extra_process(lab_dir: str, node: str) -> tuple[int, int]:
    """A process in the node's namespace outside the daemon's process group."""
    rec = LabState.load(lab_dir).nodes[node]
    return process.spawn_detached(["sleep", "1002"], os.path.join(rec.dir, "extra.log"),
                                  prefix=netns.in_netns(rec.netns, []))


def test_kill_daemon_spares_its_children_and_kill_takes_every_process_in_the_namespace(lab_dir, sitter_lab):
    sitter_lab(nodes=2, links=1)
    rec = LabState.load(lab_dir).nodes["n1"]
    extra = _extra_process(lab_dir, "n1")
    pids_before = set(netns.netns_pids(rec.netns))
    assert {rec.pid, extra[0], rec.holder_pid} < pids_before and len(pids_before) == 4

    assert control.kill_daemon(lab_dir, "n1")["killed"] == [rec.pid]
    assert not daemons.daemon_alive(rec)
    assert set(netns.netns_pids(rec.netns)) == pids_before - {rec.pid}  # the child and the extra live on

    killed = control.kill_node(lab_dir, "n1")["killed"]
    holder = {rec.holder_pid}  # the node's "hardware" (its UTS and mount namespaces) survives
    assert set(killed) == pids_before - {rec.pid} - holder
    assert set(netns.netns_pids(rec.netns)) == holder and not process.is_alive(*extra)
    assert lab.status(lab_dir)["nodes"]["n1"]["state"] == "dead"
    n2 = LabState.load(lab_dir).nodes["n2"]
    assert daemons.daemon_alive(n2)  # the other node is untouched

    started = control.start_node(lab_dir, "n1", wait=False)
    assert started["started"] and started["pid"] != rec.pid
    again = LabState.load(lab_dir).nodes["n1"]
    assert daemons.daemon_alive(again) and again.holder_pid == rec.holder_pid
    assert os.readlink(f"/proc/{again.pid}/ns/uts") == os.readlink(f"/proc/{rec.holder_pid}/ns/uts")
    assert control.start_node(lab_dir, "n1", wait=False)["started"] is False  # idempotent


def test_stop_freeze_thaw(lab_dir, sitter_lab):
    sitter_lab(nodes=1, links=1)
    rec = LabState.load(lab_dir).nodes["n1"]
    frozen = control.freeze_node(lab_dir, "n1")["frozen"]
    assert rec.pid in frozen and len(frozen) == 2
    assert all(process.proc_info(p).state == "T" for p in frozen)
    assert lab.status(lab_dir)["nodes"]["n1"]["state"] == "frozen"
    control.thaw_node(lab_dir, "n1")
    assert all(process.proc_info(p).state != "T" for p in frozen)
    # stop: SIGTERM reaches even a frozen daemon (it is continued)
    control.freeze_node(lab_dir, "n1", daemon_only=True)
    res = control.stop_node(lab_dir, "n1", timeout=5)
    assert res["stopped"] and not res["forced"]
    assert not daemons.daemon_alive(rec)
    assert control.stop_node(lab_dir, "n1")["stopped"] is False
    with pytest.raises(NotFound):
        control.kill_node(lab_dir, "n9")


class Crash(BaseException):
    """A crash of 'havm lab up' half-way (nothing catches it)."""


def test_down_cleans_up_after_a_crash_mid_up(lab_dir, monkeypatch):
    calls = []

    def crash_on_second(state, rec):
        calls.append(rec.name)
        if len(calls) == 2:
            raise Crash()
        return real(state, rec)

    real = daemons.spawn_daemon
    monkeypatch.setattr(daemons, "spawn_daemon", crash_on_second)
    with pytest.raises(Crash):
        lab.up(lab_dir, LabSpec(nodes=3, links=2, daemon_command=SITTER), wait=False)
    monkeypatch.undo()
    st = LabState.load(lab_dir)
    assert st.status == "creating" and len(lab_netns(lab_dir)) == 4
    n1_pids = netns.netns_pids(st.nodes["n1"].netns)
    assert len(n1_pids) == 3  # holder, daemon, its child
    lab.down(lab_dir)
    assert not lab_netns(lab_dir) and not any(process.is_alive(p) for p in n1_pids)


def test_down_without_lab_json_finds_namespaces_by_name(lab_dir, sitter_lab):
    sitter_lab(nodes=2, links=1)
    pids = [p for ns in lab_netns(lab_dir) for p in netns.netns_pids(ns)]
    os.unlink(os.path.join(lab_dir, STATE_FILE))
    res = lab.down(lab_dir)
    assert len(res["namespaces_deleted"]) == 3 and not lab_netns(lab_dir)
    assert pids and not any(process.is_alive(p) for p in pids)


def test_a_failing_step_rolls_back(lab_dir, monkeypatch):
    real = netns.batch

    def fail_in_switch(commands, ns=None):
        if ns and ns.endswith("-sw"):
            raise LabError("simulated: bridge creation failed")
        return real(commands, ns)

    monkeypatch.setattr(netns, "batch", fail_in_switch)
    with pytest.raises(LabError, match="partial lab was removed.*simulated"):
        lab.up(lab_dir, LabSpec(nodes=2, daemon_command=SITTER), wait=False)
    assert not lab_netns(lab_dir)


def test_exec_runs_inside_the_node_namespace(lab_dir, sitter_lab):
    sitter_lab(nodes=2, links=1)
    out = control.run_in(lab_dir, "n2", ["ip", "-br", "-4", "addr", "show", "dev", "ring0"],
                         capture_output=True, text=True, check=True).stdout
    assert "10.213.0.2/24" in out
    # each node has its own hostname and a /sys showing its own interfaces
    out = control.run_in(lab_dir, "n2", ["sh", "-c", "hostname; ls /sys/class/net"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["n2", "guest0", "lo", "ring0", "vmbr0"]  # vmbr0 + guest0: the guest network
    proc = subprocess.Popen(control.exec_argv(lab_dir, "n1", ["sh", "-c", "echo in; exec sleep 30"]),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "in\n"  # it has entered
        assert proc.pid in netns.netns_pids(LabState.load(lab_dir).nodes["n1"].netns)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_delay_holds_every_packet_at_least_the_delay(lab_dir, sitter_lab):
    sitter_lab(nodes=2, links=2)
    res = control.loss(lab_dir, "n1", 0, link="ring0", delay_ms=80)
    entry = res["loss"]["n1"]["ring0"]
    assert entry["delay_ms"] == 80 and entry["percent"] == 0
    rtts = udp_rtts(lab_dir, "n1", "n2", "10.213.0.2")
    assert len(rtts) == 10 and min(rtts) >= 80  # a packet can never overtake its delay
    assert min(udp_rtts(lab_dir, "n1", "n2", "10.213.1.2")) < 80  # the other link is not delayed
    delayer = entry["delayer"]
    if delayer:  # no netem here: a user-space delayer serves the queue
        assert process.is_alive(delayer["pid"], delayer["start"])
        # the delayer is part of the wire: a power cut of the node spares it
        assert delayer["pid"] not in control.kill_node(lab_dir, "n1")["killed"]
        assert process.is_alive(delayer["pid"], delayer["start"])
    control.loss(lab_dir, "n1", 0)
    assert lab.status(lab_dir)["nodes"]["n1"]["faults"]["loss"] == {}
    if delayer:
        assert not process.is_alive(delayer["pid"], delayer["start"])
        assert "NFQUEUE" not in netns.iptables_save(LabState.load(lab_dir).nodes["n1"].netns)
    assert min(udp_rtts(lab_dir, "n1", "n2", "10.213.0.2")) < 80
    again = control.loss(lab_dir, "all", 5, delay_ms=30)["loss"]
    control.heal(lab_dir)
    for per_link in again.values():
        for entry in per_link.values():
            assert entry["delayer"] is None or not process.is_alive(entry["delayer"]["pid"])


def test_up_names_the_nodes_that_did_not_come_up_and_leaves_the_lab_for_inspection(lab_dir):
    spec = LabSpec(nodes=2, links=1, daemon_command=("sh", "-c", "echo cannot start {node} >&2; exit 3"))
    with pytest.raises(LabError) as ei:
        lab.up(lab_dir, spec, timeout=30)
    msg = str(ei.value)
    assert "2 of 2 lab nodes did not come up" in msg
    assert "n1: havmd exited" in msg and "cannot start n2" in msg
    assert LabState.load(lab_dir).status == "up" and len(lab_netns(lab_dir)) == 3
    assert lab.status(lab_dir)["nodes"]["n1"]["state"] == "dead"
    lab.down(lab_dir)
    assert not lab_netns(lab_dir)


def test_block_cuts_one_direction_only(lab_dir, sitter_lab):
    sitter_lab(nodes=3, links=2)
    control.block(lab_dir, "n1", "n2", link="ring0")
    assert udp_count(lab_dir, "n1", "n2", "10.213.0.2") == 0
    assert udp_count(lab_dir, "n2", "n1", "10.213.0.1") >= 45  # the other direction flows
    assert udp_count(lab_dir, "n1", "n2", "10.213.1.2") >= 45  # the other link flows
    assert udp_count(lab_dir, "n3", "n2", "10.213.0.2") >= 45  # other senders flow
    control.block(lab_dir, "n3", "n2")  # every link
    assert udp_count(lab_dir, "n3", "n2", "10.213.1.2") == 0
    st = lab.status(lab_dir)
    assert st["faults"]["blocks"] == [{"src": "n1", "dst": "n2", "link": "ring0"},
                                      {"src": "n3", "dst": "n2", "link": None}]
    assert len(st["nodes"]["n2"]["faults"]["blocks"]) == 2
    control.unblock(lab_dir, "n1", "n2", link="ring0")
    assert udp_count(lab_dir, "n1", "n2", "10.213.0.2") >= 45
    control.heal(lab_dir)
    assert udp_count(lab_dir, "n3", "n2", "10.213.1.2") >= 45
    with pytest.raises(UsageError, match="itself"):
        control.block(lab_dir, "n1", "n1")


@pytest.mark.parametrize("mode", ["multicast", "broadcast"])
def test_multicast_and_broadcast_links_carry_datagrams_and_obey_partitions(lab_dir, mode):
    lab.up(lab_dir, LabSpec(nodes=3, links=2, link_mode=mode, daemon_command=SITTER), wait=False)
    from havm.config.load import load_config

    link = load_config(LabState.load(lab_dir).config).config.links[1]
    assert link.mode == mode
    target = link.group if mode == "multicast" else link.broadcast
    join = (lambda addr: addr) if mode == "multicast" else (lambda addr: None)
    assert udp_count(lab_dir, "n1", "n2", target, join=join("10.213.1.2")) >= 45
    assert udp_count(lab_dir, "n1", "n3", target, join=join("10.213.1.3")) >= 45
    control.partition(lab_dir, ["n1", "n2,n3"])
    assert udp_count(lab_dir, "n1", "n2", target, join=join("10.213.1.2")) == 0
    assert udp_count(lab_dir, "n3", "n2", target, join=join("10.213.1.2")) >= 45
