"""The watchdog section and fencing_watchdog_timeout: the safety inequality, refused policies."""

from __future__ import annotations

import pytest

from havm.config.load import parse_config_text
from havm.config.watchdog import (
    effective_fencing_watchdog_timeout,
    self_fencing_nodes,
    watchdog_warnings,
)
from havm.errors import ConfigError

BASE = """\
cluster: c
nodes:
  - {name: n1, addresses: {ring0: 10.0.0.1}}
  - {name: n2, addresses: {ring0: 10.0.0.2}}
  - {name: n3, addresses: {ring0: 10.0.0.3}}
links: [{name: ring0}]
timing: {keepalive: 0.5, warntime: 1.5, deadtime: 3, initdead: 10}
watchdog:
  backend: lab
  device: "/lab/nodes/{node}/wd.sock"
  timeout: 5
  interval: 1
properties:
  no_quorum_policy: %s
"""


def load(policy: str = "stop", extra: str = ""):
    return parse_config_text(BASE % policy + extra, "cluster.yaml").config


def test_fencing_watchdog_timeout_must_exceed_timeout_plus_interval_plus_deadtime():
    with pytest.raises(ConfigError) as e:
        load(extra="  fencing_watchdog_timeout: 9\n")
    [issue] = e.value.issues
    assert issue.line == 15 and issue.field == "properties.fencing_watchdog_timeout"
    # names both values and the bound
    assert "(9s)" in issue.message and "watchdog.timeout (5s)" in issue.message and "= 9s" in issue.message
    assert load(extra="  fencing_watchdog_timeout: 9.5\n").properties.fencing_watchdog_timeout == 9.5


def test_default_is_twice_the_timeout_and_never_below_the_bound():
    c = load()
    assert c.properties.fencing_watchdog_timeout is None
    assert effective_fencing_watchdog_timeout(None, c.watchdog, c.timing) == 10.0
    short = c.watchdog.model_copy(update={"timeout": 2.0})
    # 2 x 2s = 4s would not exceed 2 + 1 + 3: the default is raised above the bound
    assert effective_fencing_watchdog_timeout(None, short, c.timing) == 7.0


@pytest.mark.parametrize("policy", ["freeze", "ignore", "demote"])
def test_watchdog_fencing_is_refused_with_policies_that_keep_resources_running(policy):
    with pytest.raises(ConfigError) as e:
        load(policy)
    [issue] = e.value.issues
    assert issue.field == "properties.no_quorum_policy" and issue.line == 14 and policy in issue.message


def test_without_a_watchdog_every_policy_is_accepted_and_ignore_is_warned_about():
    text = (BASE % "ignore").replace("  backend: lab\n", "  backend: none\n")
    c = parse_config_text(text, "cluster.yaml").config
    assert not c.watchdog.enabled
    [(loc, msg)] = watchdog_warnings(c.properties.no_quorum_policy)
    assert loc == ("properties", "no_quorum_policy") and "dangerous" in msg
    assert watchdog_warnings("stop") == []


def test_timeout_is_whole_seconds_and_interval_at_most_half_of_it():
    bad = (BASE % "stop").replace("  timeout: 5\n", "  timeout: 2.5\n").replace("interval: 1", "interval: 2")
    with pytest.raises(ConfigError) as e:
        parse_config_text(bad, "cluster.yaml")
    msg = str(e.value)
    assert "whole number of seconds" in msg and "at most half of timeout" in msg


def test_self_fencing_nodes_are_those_no_device_can_fence():
    c = load()
    assert self_fencing_nodes(c.node_names, list(c.fencing.devices), c.watchdog) == ["n1", "n2", "n3"]
    text = BASE % "stop" + "fencing:\n  devices:\n    - {id: bmc1, agent: lab, nodes: [n1]}\n"
    c = parse_config_text(text, "cluster.yaml").config
    assert self_fencing_nodes(c.node_names, list(c.fencing.devices), c.watchdog) == ["n2", "n3"]
    none = c.watchdog.model_copy(update={"backend": "none"})
    assert self_fencing_nodes(c.node_names, list(c.fencing.devices), none) == []
