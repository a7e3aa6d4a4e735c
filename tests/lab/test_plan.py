"""The pure parts of the lab: names, addresses, timing, partition groups, rules."""

from __future__ import annotations

import pytest
import yaml

from havm.config.load import parse_config_text
from havm.errors import UsageError
from havm.lab.faults import node_rules, parse_groups
from havm.lab.plan import (
    IFNAMSIZ,
    LabSpec,
    cluster_document,
    daemon_argv,
    fill_timing,
    network_commands,
    plan_lab,
)
from havm.lab.state import LabState, lab_id, netns_prefix


def test_names_and_addresses_are_per_lab_and_short():
    st = plan_lab("/tmp/labA", LabSpec(nodes=16, links=2), lab_octet=0, is_root=True)
    other = plan_lab("/tmp/labB", LabSpec(nodes=16, links=2), lab_octet=0, is_root=True)
    assert st.lab_id == lab_id("/tmp/labA") != other.lab_id
    assert set(st.namespaces()).isdisjoint(other.namespaces())
    assert all(ns.startswith(netns_prefix("/tmp/labA")) for ns in st.namespaces())
    n16 = st.nodes["n16"]
    assert n16.addresses == {"ring0": "10.213.0.16", "ring1": "10.213.1.16"}
    assert all(len(i.switch_if) <= IFNAMSIZ and len(i.node_if) <= IFNAMSIZ for i in n16.interfaces.values())
    assert n16.socket == "/tmp/labA/nodes/n16/havmd.sock"
    assert st.port == 694 and st.mode == "netns"


def test_loopback_addresses_use_the_lab_octet_and_a_high_port_without_root():
    st = plan_lab("/tmp/labA", LabSpec(nodes=3, links=2, netns=False), lab_octet=77, is_root=False)
    assert st.nodes["n3"].addresses == {"ring0": "127.0.77.3", "ring1": "127.1.77.3"}
    assert st.switch_netns is None and st.namespaces() == []
    assert st.port > 1024


def test_generated_config_is_valid_for_load_config():
    st = plan_lab("/tmp/labA", LabSpec(nodes=3, links=2), lab_octet=0, is_root=True)
    import yaml
    text = yaml.safe_dump(cluster_document(st, fill_timing(keepalive=0.2, deadtime=1.0)))
    cfg = parse_config_text(text, "lab.yaml").config
    assert cfg.node_names == ["n1", "n2", "n3"]
    assert [lk.name for lk in cfg.links] == ["ring0", "ring1"]
    assert cfg.timing.keepalive == 0.2 and cfg.timing.deadtime == 1.0


def test_daemon_command_line():
    st = plan_lab("/tmp/labA", LabSpec(nodes=1), lab_octet=0, is_root=True)
    argv = daemon_argv(st, st.nodes["n1"])
    assert argv[1:3] == ["-m", "havm.daemon.main"]
    assert argv[3:] == ["--config", "/tmp/labA/cluster.yaml", "--node", "n1",
                        "--state-dir", "/tmp/labA/nodes/n1/state", "--socket", "/tmp/labA/nodes/n1/havmd.sock"]


@pytest.mark.parametrize("given, expected", [
    ({}, {"keepalive": 0.5, "warntime": 1.5, "deadtime": 3.0, "initdead": 10.0}),
    ({"keepalive": 0.2, "deadtime": 1.0}, {"keepalive": 0.2, "warntime": 0.5, "deadtime": 1.0, "initdead": 10.0}),
    ({"deadtime": 0.6}, {"keepalive": 0.1, "warntime": 0.3, "deadtime": 0.6, "initdead": 10.0}),
    ({"keepalive": 1.0}, {"keepalive": 1.0, "warntime": 3.0, "deadtime": 6.0, "initdead": 10.0}),
])
def test_partial_timing_is_completed_consistently(given, expected):
    assert fill_timing(**given) == expected


def test_impossible_timing_is_a_usage_error():
    with pytest.raises(UsageError, match="deadtime"):
        fill_timing(keepalive=1.0, deadtime=1.5)


def test_bad_sizes_and_deep_dirs_are_refused():
    with pytest.raises(UsageError, match="--nodes"):
        plan_lab("/tmp/x", LabSpec(nodes=0), lab_octet=0, is_root=True)
    with pytest.raises(UsageError, match="--links"):
        plan_lab("/tmp/x", LabSpec(nodes=2, links=3), lab_octet=0, is_root=True)
    with pytest.raises(UsageError, match="too deep"):
        plan_lab("/tmp/" + "d" * 100, LabSpec(nodes=2), lab_octet=0, is_root=True)


def test_partition_groups():
    nodes = ["n1", "n2", "n3", "n4"]
    assert parse_groups(["n1,n2", "n3"], nodes) == [["n1", "n2"], ["n3"], ["n4"]]
    assert parse_groups(["n1"], nodes) == [["n1"], ["n2", "n3", "n4"]]
    for bad, why in ((["n1,n5"], "unknown node"), (["n1", "n1,n2"], "two partition groups"),
                     (["n1,n2,n3,n4"], "at least two groups"), ([","], "empty")):
        with pytest.raises(UsageError, match=why):
            parse_groups(bad, nodes)


def test_rules_drop_every_address_outside_the_group_and_nothing_else():
    st = plan_lab("/tmp/labA", LabSpec(nodes=3, links=2), lab_octet=0, is_root=True)
    st.faults.partition = [["n1", "n2"], ["n3"]]
    rules = node_rules(st, "n1")
    drops = [line for line in rules.splitlines() if line.endswith("DROP")]
    assert sorted(drops) == sorted(f"-A HAVM-PART -{d} {a}/32 -j DROP"
                                   for a in ("10.213.0.3", "10.213.1.3") for d in "sd")
    assert "10.213.0.2" not in rules
    st.faults.loss = {"n1": {"ring1": {"percent": 20.0, "delay_ms": 0.0, "method": "iptables"}}}
    assert "-A HAVM-LOSS -o ring1 -m statistic --mode random --probability 0.200000 -j DROP" in node_rules(st, "n1")
    st.faults.clear()
    assert "DROP" not in node_rules(st, "n1")


def test_network_commands_create_pairs_directly_in_namespaces():
    st = plan_lab("/tmp/labA", LabSpec(nodes=2, links=1), lab_octet=0, is_root=True)
    root, switch, per_node = network_commands(st)
    sw = st.switch_netns
    assert root[:2] == [f"link add ring0 netns {st.nodes['n1'].netns} type veth peer name n1-ring0 netns {sw}",
                        f"link add ring0 netns {st.nodes['n2'].netns} type veth peer name n2-ring0 netns {sw}"]
    assert "link set n2-ring0 master br-ring0" in switch
    assert per_node["n1"][:3] == ["link set lo up", "addr add 10.213.0.1/24 dev ring0", "link set ring0 up"]
    # the guest network: a vmbr0 per node joined to br-guest in the switch namespace
    assert root[2:] == [f"link add guest0 netns {st.nodes[n].netns} type veth peer name {n}-guest netns {sw}"
                        for n in ("n1", "n2")]
    assert "link set n2-guest master br-guest" in switch and "addr add 10.214.0.254/16 dev br-guest" in switch
    assert per_node["n2"][3:] == ["link add vmbr0 type bridge", "link set guest0 master vmbr0",
                                  "link set guest0 up", "addr add 10.214.0.2/16 dev vmbr0", "link set vmbr0 up"]


def test_state_round_trips_through_json(tmp_path):
    st = plan_lab(str(tmp_path), LabSpec(nodes=2, links=2), lab_octet=0, is_root=True)
    st.nodes["n1"].pid, st.nodes["n1"].pid_start = 42, 4242
    st.faults.partition = [["n1"], ["n2"]]
    st.save()
    again = LabState.load(str(tmp_path))
    assert again == st


def test_resolvers_used_by_the_cli(tmp_path):
    from havm.errors import LabError, NotFound
    from havm.lab.state import nodes_of, socket_of

    with pytest.raises(LabError, match="havm lab up"):
        nodes_of(str(tmp_path))
    st = plan_lab(str(tmp_path), LabSpec(nodes=2), lab_octet=0, is_root=True)
    st.save()
    assert nodes_of(str(tmp_path)) == ["n1", "n2"]
    assert socket_of(str(tmp_path), "n2") == str(tmp_path / "nodes" / "n2" / "havmd.sock")
    with pytest.raises(NotFound, match="n1, n2"):
        socket_of(str(tmp_path), "n3")


@pytest.mark.parametrize("mode, key, value", [("multicast", "group", "239.0.213.1"),
                                              ("broadcast", "broadcast", "10.213.1.255")])
def test_multicast_and_broadcast_labs_generate_valid_links(mode, key, value):
    import yaml

    st = plan_lab("/tmp/labA", LabSpec(nodes=3, links=2, link_mode=mode), lab_octet=0, is_root=True)
    text = yaml.safe_dump(cluster_document(st, fill_timing()))
    link = parse_config_text(text, "lab.yaml").config.links[1]
    assert link.mode == mode and getattr(link, key) == value
    _, _, per_node = network_commands(st)
    assert ("route add 239.0.213.1/32 dev ring1" in per_node["n1"]) == (mode == "multicast")
    with pytest.raises(UsageError, match="need network namespaces"):
        plan_lab("/tmp/labA", LabSpec(nodes=3, link_mode=mode, netns=False), lab_octet=9, is_root=True)


def test_vm_plan_addresses_macs_and_resources(tmp_path):
    from havm.config.load import load_config
    from havm.lab.plan import cluster_document

    st = plan_lab(str(tmp_path), LabSpec(nodes=3, vms=2), lab_octet=0, is_root=True)
    assert st.guest_net is not None and st.guest_net["node_bridge"] == "vmbr0"
    assert [v["ip"] for v in st.vms.values()] == ["10.214.1.1", "10.214.1.2"]
    assert st.vms["vm1"]["disk"] == str(tmp_path / "disks" / "vm1.qcow2")
    again = plan_lab(str(tmp_path), LabSpec(nodes=3, vms=2), lab_octet=0, is_root=True)
    assert again.vms == st.vms and st.vms["vm1"]["mac"] != st.vms["vm2"]["mac"]  # stable, distinct
    st.guest_image = {"vmlinux": "/g/vmlinux", "initramfs": "/g/initramfs.cpio", "kernel_release": "6", "key": "k"}
    doc = cluster_document(st, {"keepalive": 0.5, "warntime": 1.5, "deadtime": 3.0, "initdead": 3.0}, dummies=1)
    assert doc["fencing"] == {"devices": [{"id": "lab-power", "agent": "lab", "params": {"lab_dir": st.dir}}]}
    rsc = {r["id"]: r for r in doc["resources"]}
    assert set(rsc) == {"vm1", "vm2", "dummy1"} and rsc["dummy1"]["type"] == "dummy"
    vm2 = rsc["vm2"]
    assert vm2["meta"] == {"allow_migrate": True, "stickiness": 100}
    assert vm2["ops"]["monitor"]["interval"] == "2s" and vm2["ops"]["migrate_to"]["timeout"] == "120s"
    p = vm2["params"]
    assert p["kernel"] == "/g/vmlinux" and p["initrd"] == "/g/initramfs.cpio" and "run_dir" not in p
    assert "havm.ip=10.214.1.2/16" in p["append"] and p["nics"] == [{"bridge": "vmbr0", "mac": st.vms["vm2"]["mac"]}]
    # havm accepts it
    st.save()
    (tmp_path / "cluster.yaml").write_text(yaml.safe_dump(doc))
    assert [r.id for r in load_config(str(tmp_path / "cluster.yaml"), check_key=False).config.resources] == [
        "vm1", "vm2", "dummy1"]


def test_vms_need_a_namespace_lab():
    with pytest.raises(UsageError, match="namespace lab"):
        plan_lab("/tmp/labA", LabSpec(nodes=2, netns=False, vms=1), lab_octet=30, is_root=False)
