"""The resources/constraints/properties sections: defaults, shapes and precise errors."""

from __future__ import annotations

import pytest

from havm.config import parse_config_text
from havm.config.resources import (
    INFINITY,
    Clone,
    Colocation,
    Group,
    Location,
    Order,
    Primitive,
    parse_score,
)
from havm.errors import ConfigError

BASE = """\
cluster: t
links: [{name: ring0}]
nodes:
  - {name: n1, addresses: {ring0: 10.0.0.1}}
  - {name: n2, addresses: {ring0: 10.0.0.2}}
"""


def load(extra: str):
    return parse_config_text(BASE + extra, "c.yaml").config


def issues(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load(extra)
    return [str(i) for i in e.value.issues]


def test_scores() -> None:
    assert parse_score("INFINITY") == INFINITY
    assert parse_score("-INFINITY") == -INFINITY
    assert parse_score("+inf") == INFINITY
    assert parse_score(5_000_000) == INFINITY
    assert parse_score("-20") == -20
    with pytest.raises(ValueError):
        parse_score("lots")
    with pytest.raises(ValueError):
        parse_score(True)


def test_defaults_and_shapes() -> None:
    c = load("""
resources:
  - {id: vm1, type: vm, params: {memory: 256}}
  - group: web
    resources: [{id: ip1, type: ip, params: {ip: 10.0.0.10}}, {id: www, type: "systemd:apache2"}]
  - clone: fs-clone
    resource: {id: fs, type: "ocf:heartbeat:Filesystem"}
    promotable: true
constraints:
  - {location: vm1, node: n1, score: 100}
  - {location: vm1, rule: {score: -INFINITY, expression: "rack eq r2"}}
  - {colocation: www, with: vm1}
  - {order: fs-clone, then: vm1}
""")
    vm1, web, clone = c.resources
    assert isinstance(vm1, Primitive) and vm1.meta.stickiness is None
    assert isinstance(web, Group) and [m.id for m in web.resources] == ["ip1", "www"]
    assert isinstance(clone, Clone) and clone.promotable and clone.clone_max is None
    loc, rule, colo, order = c.constraints
    assert isinstance(loc, Location) and loc.score == 100
    assert isinstance(rule, Location) and rule.rule is not None and rule.rule.score == -INFINITY
    assert isinstance(colo, Colocation) and colo.score == INFINITY and colo.with_ == "vm1"
    assert isinstance(order, Order) and order.kind == "mandatory"
    assert c.properties.no_quorum_policy == "stop" and c.properties.fencing_enabled


def test_unknown_keys_name_the_allowed_ones() -> None:
    got = issues("""
resources:
  - {id: vm1, type: vm, meta: {stickyness: 10}}
""")
    assert len(got) == 1
    assert got[0].startswith("c.yaml:8: resources[0].meta: unknown key 'stickyness'; expected one of: stickiness")


def test_cross_references_get_their_line() -> None:
    got = issues("""
resources:
  - {id: vm1, type: vm}
  - {id: vm1, type: vm}
constraints:
  - {location: vm1, node: n9, score: 1}
  - {colocation: vm1, with: nope}
  - {order: vm1, then: vm1}
""")
    assert "c.yaml:9: resources[1].id: id 'vm1' is already used (at resources[0].id)" in got
    assert "c.yaml:11: constraints[0].node: unknown node 'n9'; nodes are: n1, n2" in got
    assert any(g.startswith("c.yaml:12: constraints[1].with: unknown resource 'nope'") for g in got)
    assert "c.yaml:13: constraints[2].then: a resource cannot be ordered after itself" in got


def test_field_errors_inside_groups_and_clones() -> None:
    got = issues("""
resources:
  - group: g
    resources:
      - {id: a, type: dummy}
      - {id: b, type: wizard}
  - clone: c
    resource: {id: x, type: dummy}
    clone_node_max: 2
""")
    assert any(g.startswith("c.yaml:11: resources[0].resources[1].type: unknown agent type 'wizard'") for g in got)
    assert any(g.startswith("c.yaml:12: resources[1]: clone_node_max above 1 needs globally_unique") for g in got)


def test_location_shape_and_rule_syntax() -> None:
    got = issues("""
resources: [{id: a, type: dummy}]
constraints:
  - {location: a, node: n1}
  - {location: a, rule: {score: 5, expression: "rack equals r1"}}
""")
    assert any("constraints[0]: a location constraint with 'node' needs a 'score'" in g for g in got)
    assert any("constraints[1].rule: cannot read expression 'rack equals r1'" in g for g in got)


def test_role_needs_promotable() -> None:
    got = issues("""
resources: [{id: a, type: dummy}, {id: b, type: dummy}]
constraints:
  - {colocation: a, with: b, with_role: promoted}
""")
    assert any("constraints[0].with_role: role promoted needs a promotable clone, 'b' is not one" in g for g in got)


def test_example_config_loads() -> None:
    from pathlib import Path

    from havm.config.load import parse_config_text as p
    path = Path(__file__).resolve().parents[2] / "examples" / "three-node-vms.yaml"
    cfg = p(path.read_text(), str(path)).config
    assert [r.id for r in cfg.resources if isinstance(r, Primitive)] == ["vm1", "vm2", "ip1"]
