"""properties.batch_limit, node_action_limit, migration_limit: defaults, accepted
values, and precise errors (file, line, field, what was expected)."""

from __future__ import annotations

import pytest

from havm.config.load import load_config
from havm.controller.throttle import Limits
from havm.errors import ConfigError
from tests.conftest import VALID

COUNT = "a whole number of actions, at least 1"
OR_NONE = "-1 (no limit) or " + COUNT


def issues_of(path: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    return [str(i) for i in ei.value.issues]


def test_defaults_keep_the_old_behaviour(write_config):
    p = load_config(write_config()).config.properties
    assert (p.batch_limit, p.node_action_limit, p.migration_limit) == (16, -1, -1)
    assert Limits.from_properties(p) == Limits(batch=16, per_node=None, migrations=None)


def test_configured_limits_become_the_controllers_limits(write_config):
    text = VALID + "properties:\n  batch_limit: 8\n  node_action_limit: 4\n  migration_limit: 1\n"
    p = load_config(write_config(text)).config.properties
    assert (p.batch_limit, p.node_action_limit, p.migration_limit) == (8, 4, 1)
    assert Limits.from_properties(p) == Limits(batch=8, per_node=4, migrations=1)


@pytest.mark.parametrize("field,value,expect", [
    ("batch_limit", "0", f"expected {COUNT}, got 0 (Pacemaker's 0, a limit from the nodes' CPU load, "
                         "has no havm equivalent)"),
    ("batch_limit", "-1", f"expected {COUNT}, got -1"),
    ("batch_limit", "'4'", f"expected {COUNT}, got '4'"),
    ("batch_limit", "2.5", f"expected {COUNT}, got 2.5"),
    ("node_action_limit", "0", f"expected {OR_NONE}, got 0 (Pacemaker's 0, 2 x the node's cores, has no "
                               "havm equivalent: give that number)"),
    ("node_action_limit", "-3", f"expected {OR_NONE}, got -3"),
    ("node_action_limit", "true", f"expected {OR_NONE}, got True"),
    ("migration_limit", "0", f"expected {OR_NONE}, got 0 (no migration could ever run; -1 for no limit)"),
    ("migration_limit", "unlimited", f"expected {OR_NONE}, got 'unlimited'"),
])
def test_bad_limits_name_file_line_field_and_expectation(write_config, field, value, expect):
    path = write_config(VALID + f"properties:\n  stickiness: 0\n  {field}: {value}\n")
    line = VALID.count("\n") + 3  # properties:, stickiness:, then the field
    assert issues_of(path) == [f"{path}:{line}: properties.{field}: {expect}"]


def test_every_bad_limit_is_reported_at_once(write_config):
    path = write_config(VALID + "properties: {batch_limit: 0, node_action_limit: -2, migration_limit: 0}\n")
    found = issues_of(path)
    assert [f.split(": ")[1] for f in found] == ["properties.batch_limit", "properties.node_action_limit",
                                                 "properties.migration_limit"]
    assert all(f.startswith(f"{path}:{VALID.count(chr(10)) + 1}: ") for f in found), found
