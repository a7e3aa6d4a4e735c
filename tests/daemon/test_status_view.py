"""The status document's resource lines, from the members' reports (pure)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from havm.api.schemas import RESOURCE
from havm.cli.status_cmd import render
from havm.config.load import parse_config_text
from havm.daemon.status import resources_view
from tests.controller.test_snapshot import CONFIG  # three nodes, dummies a and b


def view(**roles: str) -> dict:
    config = parse_config_text(CONFIG, "t.yaml").config
    reports = {n: {"states": {"a": {"role": r}}} for n, r in roles.items()}
    return next(line for line in resources_view(config, reports) if line["id"] == "a")


def test_a_live_migration_shows_its_source_and_target_and_never_reads_stopped():
    during = view(n1="started", n2="incoming")  # migrate_to under way: the source still runs
    assert during["state"] == "started" and during["migrating"] == {"from": "n1", "to": "n2"}
    between = view(n1="migrated", n2="incoming")  # migrate_to done, migrate_from not yet
    assert between["state"] == "migrating" and between["migrating"] == {"from": "n1", "to": "n2"}
    done = view(n1="stopped", n2="started")
    assert done["state"] == "started" and done["migrating"] is None and done["nodes"] == ["n2"]
    assert view(n1="stopped", n2="stopped")["state"] == "stopped"


def test_the_migration_is_in_the_schema_and_the_text():
    line = view(n1="migrated", n2="incoming")
    import jsonschema_rs  # schemathesis brings it (the API's response checks use it too)

    jsonschema_rs.validate(RESOURCE, line)
    jsonschema_rs.validate(RESOURCE, view(n1="started", n2="stopped"))  # null: no migration
    st = copy.deepcopy(json.loads((Path(__file__).parents[1] / "cli" / "data" / "status.json").read_text()))
    st["resources"] = [line]
    assert "a                MIGRATING -" in render(st) and "[migrating n1 -> n2]" in render(st)
