"""The lab's fencing choice, planned purely: which devices cluster.yaml gets, where each
simulated BMC listens, the management network that reaches them."""

from __future__ import annotations

import pytest
import yaml

from havm.config.load import parse_config_text
from havm.errors import UsageError
from havm.lab import bmc
from havm.lab.plan import LabSpec, cluster_document, fill_timing, network_commands, plan_lab
from havm.lab.state import LabState


def config_of(state):
    return parse_config_text(yaml.safe_dump(cluster_document(state, fill_timing())), "lab.yaml").config


def test_ipmi_labs_get_one_fence_ipmilan_device_per_node_on_its_own_bmc():
    st = plan_lab("/tmp/labF", LabSpec(nodes=3, fencing="ipmi"), lab_octet=0, is_root=True)
    assert st.fencing == "ipmi"
    assert {n: (b.address, b.port) for n, b in st.bmcs.items()} == {
        "n1": ("10.215.1.1", 623), "n2": ("10.215.1.2", 623), "n3": ("10.215.1.3", 623)}
    devices = config_of(st).fencing.devices
    assert [(d.id, d.agent, d.nodes) for d in devices] == [
        (f"bmc-n{i}", "fence_ipmilan", [f"n{i}"]) for i in (1, 2, 3)]
    assert devices[1].params["ip"] == "10.215.1.2" and devices[1].params["lanplus"] == "0"
    assert devices[1].params["password"] == st.bmcs["n2"].password
    # the state (bmcs included) survives lab.json
    again = LabState.from_json(st.to_json())
    assert again.bmcs["n3"].address == "10.215.1.3" and again.fencing == "ipmi"


def test_the_management_network_joins_each_node_to_the_bmcs_in_the_switch_namespace():
    st = plan_lab("/tmp/labF", LabSpec(nodes=2, fencing="ipmi"), lab_octet=0, is_root=True)
    root, switch, per_node = network_commands(st)
    assert f"link add {bmc.NODE_MGMT_IF} netns {st.nodes['n2'].netns} type veth peer name n2-bmc " \
           f"netns {st.switch_netns}" in root
    assert "link set lo up" in switch and "addr add 10.215.1.2/16 dev br-bmc" in switch
    assert "link set n2-bmc master br-bmc" in switch
    assert "addr add 10.215.0.2/16 dev bmc0" in per_node["n2"]


def test_loopback_bmcs_listen_on_the_lab_octet_and_lab_and_none_modes():
    st = plan_lab("/tmp/labF", LabSpec(nodes=2, netns=False, fencing="ipmi"), lab_octet=77, is_root=False)
    assert st.bmcs["n2"].address == "127.9.77.2" and st.bmcs["n2"].port == bmc.LOOPBACK_PORT
    switch = plan_lab("/tmp/labF", LabSpec(nodes=2), lab_octet=0, is_root=True)
    assert switch.bmcs == {} and [d.agent for d in config_of(switch).fencing.devices] == ["lab"]
    none = plan_lab("/tmp/labF", LabSpec(nodes=2, fencing="none"), lab_octet=0, is_root=True)
    assert config_of(none).fencing.devices == []
    with pytest.raises(UsageError, match="--fencing must be one of lab, ipmi, none"):
        plan_lab("/tmp/labF", LabSpec(nodes=2, fencing="pdu"), lab_octet=0, is_root=True)


def test_lan_conf_is_ipmi_1_5_with_one_admin_user():
    b = bmc.plan_bmcs("/tmp/labF", list(plan_lab("/tmp/labF", LabSpec(nodes=1), 0, True).nodes.values()),
                      True, 0)["n1"]
    conf = bmc.lan_conf("x-n1", b, "/tmp/labF/bmc/n1/chassis")
    assert "addr 10.215.1.1 623" in conf and 'chassis_control "/tmp/labF/bmc/n1/chassis"' in conf
    assert f'user 2 true "admin" "{b.password}" admin 10' in conf
    assert "lanplus" not in conf
