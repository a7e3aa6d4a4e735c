"""Bad configuration files each give a precise error: file, line, field, expectation."""

from __future__ import annotations

import pytest

from havm.config.load import load_config
from havm.errors import ConfigError, UnsafeKeyError
from tests.conftest import VALID


def issues_of(path: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    return [str(i) for i in ei.value.issues]


def test_valid_config_loads_with_defaults(write_config):
    loaded = load_config(write_config())
    c = loaded.config
    assert c.cluster == "testc"
    assert c.node_names == ["n1", "n2", "n3"]
    assert c.links[0].port == 694 and c.links[1].port == 695
    assert c.timing.keepalive == pytest.approx(0.2)
    assert c.timing.deadtime == 1.0
    assert c.quorum.two_node is False


def test_missing_required_fields_name_field_and_line(write_config):
    path = write_config("cluster: x\nnodes:\n  - name: n1\n")
    found = issues_of(path)
    assert any(":3: nodes[0].addresses: required field is missing" in f for f in found), found
    assert any("links: required field is missing" in f for f in found), found


def test_wrong_types_and_unknown_keys_all_reported_at_once(write_config):
    text = VALID.replace("port: 695", "port: many").replace("  - name: n2\n", "  - name: n2\n    vots: 2\n")
    found = issues_of(write_config(text))
    assert any("links[1].port" in f and "valid integer" in f and "'many'" in f for f in found), found
    assert any("nodes[1].vots: unknown key; expected one of: name, addresses, votes" in f for f in found), found
    assert len(found) == 2


def test_bad_address_points_at_its_line(write_config):
    text = VALID.replace("127.0.10.2", "127.0.10.300")
    found = issues_of(write_config(text))
    assert len(found) == 1, found
    assert ":6: nodes[1].addresses.ring0: expected an IPv4 address" in found[0]


@pytest.mark.parametrize("timing,expect", [
    ("keepalive: 1\n  deadtime: 1.5", "deadtime (1.5s) must be more than 2 x keepalive (2s)"),
    ("keepalive: 0.2\n  deadtime: 1\n  initdead: 0.5", "initdead (0.5s) must be at least deadtime (1s)"),
    ("keepalive: 0.2\n  warntime: 2\n  deadtime: 1\n  initdead: 5", "warntime (2s) must be at least keepalive"),
    ("keepalive: 5ms\n  warntime: 0.01\n  deadtime: 1\n  initdead: 5", "keepalive must be at least 10ms"),
    ("keepalive: soon", "expected a duration such as 2, 0.5, '500ms'"),
])
def test_impossible_timings(write_config, timing, expect):
    base = VALID.split("timing:")[0]
    found = issues_of(write_config(base + "timing:\n  " + timing + "\n"))
    assert any(expect in f and "timing" in f for f in found), found


def test_cross_field_rules(write_config):
    text = VALID.replace("ring1: 127.0.11.2", "ring2: 127.0.11.2").replace("127.0.10.3", "127.0.10.1")
    found = issues_of(write_config(text))
    joined = "\n".join(found)
    assert "node 'n2' has no address on link(s) ring1" in joined
    assert "node 'n2' names unknown link(s) ring2" in joined
    assert "nodes 'n1' and 'n3' share address 127.0.10.1 on link ring0" in joined


def test_duplicate_key_and_bad_yaml(write_config):
    found = issues_of(write_config(VALID + "cluster: again\n"))
    assert any("cluster: duplicate key (first given on line 1)" in f for f in found), found
    found = issues_of(write_config("cluster: [x\n"))
    assert "not valid YAML" in found[0]


def test_two_node_mode_needs_two_nodes(write_config):
    found = issues_of(write_config(VALID + "quorum:\n  two_node: true\n"))
    assert any("two_node is only for clusters of exactly 2 nodes, this one has 3" in f for f in found), found


def test_ping_tiebreaker_needs_targets(write_config):
    found = issues_of(write_config(VALID + "quorum:\n  tiebreaker: {type: ping}\n"))
    assert any("quorum.tiebreaker" in f and "needs at least one address" in f for f in found), found


def test_multicast_needs_group(write_config):
    text = VALID.replace("mode: unicast", "mode: multicast")
    found = issues_of(write_config(text))
    assert any("links[1]" in f and "needs 'group'" in f for f in found), found


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_readable_by_others_is_refused(write_config, mode):
    path = write_config(key_mode=mode)
    with pytest.raises(UnsafeKeyError) as ei:
        load_config(path)
    assert f"key file mode is {mode:04o}" in str(ei.value)
    assert "chmod 600" in str(ei.value)


def test_missing_and_short_keys(write_config):
    found = issues_of(write_config(key=None))
    assert any("key file not found" in f for f in found)
    found = issues_of(write_config(key=b"short"))
    assert any("key is 5 bytes; expected at least 16" in f for f in found)


def test_missing_file():
    with pytest.raises(ConfigError) as ei:
        load_config("/nonexistent/cluster.yaml")
    assert "file not found" in str(ei.value)
