"""The fencing section: declarative validation with located errors, warnings for
agents missing on this host, the levels each node gets."""

from __future__ import annotations

import pytest

from havm.config.fencing import agent_warnings
from havm.config.load import load_config
from havm.errors import ConfigError
from tests.conftest import VALID


def issues(write_config, fencing_yaml: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        load_config(write_config(VALID + fencing_yaml))
    return [str(i) for i in ei.value.issues]


GOOD = """\
fencing:
  devices:
    - id: bmc-n1
      agent: fence_ipmilan
      params: {ip: 10.0.9.1, ipport: 623, username: admin, password: secret, lanplus: false}
      nodes: [n1]
      delay: {n1: 5s}
      timeout: 20s
      retries: 2
    - id: pdu
      agent: fence_apc_snmp
      host_map: {n1: "3", n2: 4}
      delay: 1
  levels:
    n1: [[bmc-n1], [pdu]]
    n2: pdu
"""


def test_a_full_section_loads(write_config):
    c = load_config(write_config(VALID + GOOD)).config
    f = c.fencing
    bmc, pdu = f.devices
    assert bmc.params == {"ip": "10.0.9.1", "ipport": "623", "username": "admin", "password": "secret",
                          "lanplus": "0"}
    assert bmc.delay_for("n1") == 5.0 and bmc.delay_for("n2") == 0.0 and pdu.delay_for("n3") == 1.0
    assert bmc.timeout == 20.0 and bmc.retries == 2
    assert pdu.plug_for("n2") == "4" and pdu.can_fence("n2") and not pdu.can_fence("n3")
    assert [[d.id for d in lvl] for lvl in f.levels_for("n1")] == [["bmc-n1"], ["pdu"]]
    assert [[d.id for d in lvl] for lvl in f.levels_for("n2")] == [["pdu"]]
    assert f.levels_for("n3") == []  # no device can fence n3


@pytest.mark.parametrize("bad,expect", [
    ("  levels:\n    n1: [[bmc-n1], [nope]]\n",
     ":33: fencing.levels.n1[1][0]: unknown fence device 'nope'; devices are: bmc-n1, pdu"),
    ("  levels:\n    n9: [[pdu]]\n", ":33: fencing.levels.n9: unknown node 'n9'; nodes are: n1, n2, n3"),
    ("  levels:\n    n3: [[pdu]]\n", "fencing.levels.n3[0][0]: fence device 'pdu' cannot fence 'n3'"),
    ("  levels:\n    n1: [[]]\n", "fencing.levels.n1[0]: a level needs at least one device"),
])
def test_bad_levels_are_located(write_config, bad, expect):
    head = GOOD.split("  levels:")[0]
    found = issues(write_config, head + bad)
    assert any(expect in f for f in found), found


@pytest.mark.parametrize("device,expect", [
    ("{id: x, agent: fence_virsh, nodes: [n1, n7]}", "fencing.devices[0].nodes: unknown node 'n7'"),
    ("{id: x, agent: fence_apc, host_map: {n8: '1'}}", "fencing.devices[0].host_map: unknown node 'n8'"),
    ("{id: x, agent: fence_apc, delay: {n9: 2}}", "fencing.devices[0].delay: unknown node 'n9'"),
    ("{id: x, agent: /usr/sbin/fence_ipmilan}", "expected 'lab' or a fence agent's name"),
    ("{id: x, agent: ../fence_x}", "expected 'lab' or a fence agent's name"),
    ("{id: x, agent: fence_x, params: {action: reboot}}", "params cannot set action"),
    ("{id: x, agent: fence_x, params: {password: \"a\\nb\"}}", "cannot contain a line break"),
    ("{id: x, agent: fence_x, params: {ip: [1, 2]}}", "expected a scalar"),
    ("{id: x, agent: fence_x, nodes: [n1], host_map: {n1: '1'}}", "either nodes or host_map"),
    ("{id: x, agent: fence_x, retries: 11}", "retries"),
    ("{id: x, agent: fence_x, timeout: 0}", "timeout must be more than 0"),
    ("{id: x, agent: fence_x, confirm: maybe}", "confirm"),
    ("{id: x, agent: fence_x, color: red}", "unknown key 'color'"),
])
def test_bad_devices_are_located(write_config, device, expect):
    found = issues(write_config, f"fencing:\n  devices:\n    - {device}\n")
    assert any(expect in f for f in found), found
    assert len(found) == 1 and ":21: fencing.devices[0]" in found[0], found


def test_duplicate_device_ids(write_config):
    found = issues(write_config, "fencing:\n  devices:\n    - {id: x, agent: lab}\n    - {id: x, agent: lab}\n")
    assert any(":22: fencing.devices[1].id: fence device id 'x' is already used (fencing.devices[0])" in f for f in found), found


def test_missing_agents_and_unfenceable_nodes_are_warnings_not_errors(write_config):
    c = load_config(write_config(VALID + "fencing:\n  devices:\n"
                                 "    - {id: x, agent: fence_not_installed_here, nodes: [n1, n2]}\n")).config
    warnings = agent_warnings(c.fencing, c.node_names)
    assert (("fencing", "devices", 0, "agent"), ) == tuple(w[0] for w in warnings[:1])
    assert "not installed on this host" in warnings[0][1]
    assert any("no fence device can fence node 'n3'" in w[1] for w in warnings)


def test_config_validate_prints_located_warnings(write_config):
    import json
    import subprocess
    import sys

    path = write_config(VALID + "fencing:\n  devices:\n    - {id: x, agent: fence_not_installed_here}\n")
    out = subprocess.run([sys.executable, "-m", "havm.cli.main", "config", "validate", path, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    w = json.loads(out.stdout)["warnings"]
    assert w[0]["line"] == 21 and w[0]["field"] == "fencing.devices[0].agent"
    assert "not installed on this host" in w[0]["message"]
    text = subprocess.run([sys.executable, "-m", "havm.cli.main", "config", "validate", path],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and f"warning: {path}:21: fencing.devices[0].agent:" in text.stderr


def test_foreign_plugin_names_are_valid_but_never_run(write_config):
    from havm.config.fencing import find_agent

    c = load_config(write_config(VALID + "fencing:\n  devices:\n    - {id: x, agent: external/ssh}\n")).config
    assert c.fencing.devices[0].agent == "external/ssh"
    assert find_agent("external/ssh") is None and find_agent("./fence_x") is None
    assert "not installed on this host" in agent_warnings(c.fencing, c.node_names)[0][1]


def two_node(delay: object, deadtime: float = 1.0, keepalive: float = 0.2, two: bool = True) -> dict:
    return {"cluster": "c", "links": [{"name": "l0", "port": 20694}],
            "nodes": [{"name": n, "addresses": {"l0": f"10.0.0.{i}"}} for i, n in enumerate(("n1", "n2"), 1)],
            "timing": {"keepalive": keepalive, "warntime": 2 * keepalive, "deadtime": deadtime,
                       "initdead": 10},
            "quorum": {"two_node": two, "tiebreaker": {"type": "ping", "targets": ["192.0.2.1"]}},
            "fencing": {"devices": [{"id": "sw", "agent": "lab", "delay": delay}]}}


def test_a_two_node_fence_delay_must_outlast_the_incumbents_reaction():
    # Chaos finding 2: the delay protects n1 only if n1 shoots before it runs out, and n1
    # may act up to deadtime + one keepalive (+ its cycle) after n2 decided.
    from pydantic import ValidationError

    from havm.config.fencing import fence_race_bound
    from havm.config.schema import ClusterConfig

    assert fence_race_bound(1.0, 0.2) == pytest.approx(2.2)
    ClusterConfig.model_validate(two_node({"n1": 3}))  # the chaos campaign's: 3 s > 2.2 s
    ClusterConfig.model_validate(two_node(0))  # no delay: nothing to protect
    ClusterConfig.model_validate(two_node({"n1": 2}, two=False))  # not a two-node cluster
    for delay in ({"n1": 2}, 2.2):
        with pytest.raises(ValidationError) as ei:
            ClusterConfig.model_validate(two_node(delay))
        (err,) = ei.value.errors()
        assert err["loc"] == ("fencing", "devices", 0, "delay")
        assert "must exceed deadtime + keepalive + 1s (2.2s)" in err["msg"]
    with pytest.raises(ValidationError, match="fence delay for n1 is 3s"):
        ClusterConfig.model_validate(two_node({"n1": 3}, deadtime=3.0, keepalive=0.5))  # the default timing
