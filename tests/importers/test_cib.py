"""havm import cib: Pacemaker 2.x/3.x and Heartbeat 2 XML, snippets, the report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from havm.config.load import parse_config_text
from havm.errors import UsageError
from havm.importers.cib import import_cib
from havm.importers.report import ImportFailed

DATA = Path(__file__).parent / "data" / "pacemaker"
GEN_CIB = Path("/work/shared/bench/pacemaker/gen_cib.py")


def load(*names: str, **kw: object):
    inputs = [((DATA / n).read_text(), str(DATA / n)) for n in names]
    result = import_cib(inputs, **kw)  # type: ignore[arg-type]
    config = parse_config_text(result.text, "out.yaml").config  # must validate, every time
    return result, config


def constraints(config) -> list[dict]:
    """The constraints as dicts, without location ids (tested on their own)."""
    return [{k: v for k, v in con.model_dump(by_alias=True, exclude_none=True).items() if k != "id"}
            for con in config.constraints]


def dropped(result, fragment: str) -> list[str]:
    return [str(i) for i in result.report.of_level("dropped") if fragment in str(i)]


def by_id(config, rid: str):
    for r in config.resources:
        for key in ("id", "group", "clone"):
            if getattr(r, key, None) == rid:
                return r
    raise KeyError(rid)


# --- today's schema ---------------------------------------------------------

def test_modern_cib_properties_nodes_and_defaults() -> None:
    result, c = load("modern.xml")
    assert c.cluster == "webfarm"  # from cluster-name
    assert [n.name for n in c.nodes] == ["n1", "n2", "n3"]
    n1, _, n3 = c.nodes
    assert n1.attributes == {"rack": "r1", "ssd": "yes"} and n1.utilization == {"cpu": 8, "memory": 16384}
    assert n3.standby is True
    assert c.properties.no_quorum_policy == "freeze" and c.properties.placement_strategy == "balanced"
    assert c.properties.fencing_enabled is True
    assert c.resource_defaults.stickiness == 100 and c.resource_defaults.migration_threshold == 1_000_000
    assert dropped(result, "cluster-recheck-interval")
    assert dropped(result, "record-pending")


def test_modern_cib_resources() -> None:
    result, c = load("modern.xml")
    web = by_id(c, "web")
    assert [m.id for m in web.resources] == ["web-ip", "web-server"] and web.meta.stickiness == 200
    ip = web.resources[0]
    assert ip.type == "ocf:heartbeat:IPaddr2" and ip.params == {"ip": "10.0.0.100", "cidr_netmask": "24"}
    server = web.resources[1]
    assert server.type == "systemd:nginx"
    assert server.ops["monitor"].interval == 60 and server.ops["monitor"].timeout == 60  # op_defaults timeout
    assert dropped(result, 'op id="web-mon-deep"') and dropped(result, "notify")
    vm1 = by_id(c, "vm1")
    assert vm1.meta.allow_migrate is True and vm1.meta.migration_threshold == 3
    assert vm1.meta.failure_timeout == 600 and vm1.meta.priority == 10
    assert vm1.utilization == {"cpu": 2, "memory": 4096}
    assert vm1.ops["stop"].timeout == 120  # ISO 8601 PT2M
    assert vm1.ops["monitor"].on_fail == "restart"
    assert dropped(result, "multiple-active")
    fs = by_id(c, "shared-fs")
    assert fs.interleave is True and fs.resource.id == "fs"
    drbd = by_id(c, "drbd-clone")
    assert drbd.promotable and drbd.clone_max == 2 and drbd.promoted_max == 1
    assert set(drbd.resource.ops) == {"monitor_promoted", "monitor"}
    assert drbd.resource.ops["monitor"].role == "unpromoted"
    (fence,) = c.fencing.devices  # a stonith primitive is a fence device, not a resource
    assert (fence.id, fence.agent, fence.params) == ("fence-ipmi", "fence_ipmilan", {"ip": "10.9.0.1"})
    with pytest.raises(KeyError):
        by_id(c, "fence-ipmi")
    # what cannot be carried is reported with file and line, never silently gone
    assert any(":124:" in d for d in dropped(result, "upstart"))
    assert dropped(result, "bundle") and dropped(result, "<tags>")


def test_modern_cib_constraints() -> None:
    result, c = load("modern.xml")
    cons = constraints(c)
    assert {"location": "web", "node": "n1", "score": 100} in cons
    assert {"location": "vm1", "rule": {"score": 50, "expression": "rack eq r1 and defined ssd"}} in cons
    assert {"location": "shared-fs", "node": "n3", "score": -1_000_000} in cons
    assert {"colocation": "web", "with": "drbd-clone", "score": 1_000_000, "with_role": "promoted"} in cons
    assert {"colocation": "web", "with": "vm1", "score": 1_000_000} in cons  # from a resource set
    assert any(x.get("order") == "drbd-clone" and x.get("first_action") == "promote" and x.get("then") == "web"
               for x in cons)
    assert any(x.get("order") == "shared-fs" and x.get("kind") == "optional" and x.get("symmetrical") is False
               for x in cons)
    assert any(x.get("order") == "web-ip" and x.get("then") == "web-server" and x.get("kind") == "serialize"
               for x in cons)
    assert dropped(result, "date_expression")
    ids = [getattr(x, "id", None) for x in c.constraints if hasattr(x, "location")]
    assert ids == ["loc-web-n1", "loc-vm1-rule", "ban-fs-n3"]  # kept, so cli-prefer-* stay clearable
    assert dropped(result, "rsc_ticket")
    assert dropped(result, "'old-upstart', which was not imported")
    assert dropped(result, "node 'n9'")


# --- Heartbeat 2 era ---------------------------------------------------------

def test_heartbeat2_cib() -> None:
    result, c = load("heartbeat2.xml")
    assert c.properties.stickiness == 1_000_000  # default_resource_stickiness
    assert c.properties.no_quorum_policy == "ignore"
    assert c.properties.fencing_enabled is False  # Heartbeat 2's default, reported
    assert any("defaulted to false" in str(i) for i in result.report.items)
    group = by_id(c, "group_1")
    ip = group.resources[0]
    assert ip.type == "ocf:heartbeat:IPaddr" and ip.params == {"ip": "192.168.1.200", "netmask": "24"}
    assert ip.meta.target_role == "started"  # target_role among instance_attributes
    fs = next(m for m in group.resources if m.id == "Filesystem_3")
    assert fs.type == "ocf:heartbeat:Filesystem"
    assert fs.params == {"device": "/dev/drbd0", "directory": "/data", "fstype": "ext3"}  # positional 1, 2, 3
    assert dropped(result, "drbddisk_2")  # a Heartbeat drbddisk inside a group: reported
    assert dropped(result, "restart_type")
    pingd = by_id(c, "pingd_clone")
    assert pingd.clone_max == 2 and pingd.globally_unique is False  # clone_max in instance_attributes
    ms = by_id(c, "ms_drbd")
    assert ms.promotable and ms.promoted_max == 1  # <master_slave> with master_max
    mail = by_id(c, "mail")
    assert mail.type == "ocf:heartbeat:MailTo" and mail.meta.stickiness == 0  # attribute on the element
    cons = constraints(c)
    assert {"location": "group_1", "rule": {"score": 100, "expression": "#uname eq node1"}} in cons
    assert {"location": "group_1", "rule": {"score": -1_000_000,
                                            "expression": "not_defined pingd or pingd lte 0"}} in cons
    assert {"colocation": "mail", "with": "group_1", "score": 1_000_000} in cons  # from/to
    # <rsc_order from="mail" type="after" to="group_1"/>: mail starts after group_1
    assert {"order": "group_1", "then": "mail", "kind": "mandatory", "first_action": "start"} in \
        [{**x, "kind": x.get("kind", "mandatory"), "first_action": x.get("first_action", "start")}
         for x in cons if "order" in x and x["then"] == "mail"]
    # type="before" with score 0: group_1 first, optional
    assert any(x.get("order") == "group_1" and x.get("then") == "ms_drbd" and x.get("kind") == "optional"
               for x in cons)
    assert {"colocation": "group_1", "with": "ms_drbd", "score": 1_000_000, "with_role": "promoted"} in cons


# --- snippets and merging ------------------------------------------------------

def test_single_primitive_snippet_needs_nodes() -> None:
    with pytest.raises(ImportFailed, match="no nodes.*--address"):
        load("snippet-primitive.xml")
    result, c = load("snippet-primitive.xml", addresses={"a": ["10.0.0.1"], "b": ["10.0.0.2"]})
    assert [n.name for n in c.nodes] == ["a", "b"]
    assert [n.addresses["ring0"] for n in c.nodes] == ["10.0.0.1", "10.0.0.2"]
    assert not result.placeholders
    vip = by_id(c, "vip")
    assert vip.meta.target_role == "stopped"


def test_snippets_are_merged_and_rootless_files_read() -> None:
    result, c = load("snippet-primitive.xml", "snippet-clone-and-constraints.xml",
                     addresses={"a": ["10.0.0.1"]})
    assert {getattr(r, "id", None) or getattr(r, "clone", None) for r in c.resources} == {"vip", "ping-clone"}
    cons = constraints(c)
    assert {"location": "vip", "rule": {"score": -1_000_000,
                                        "expression": "not_defined pingd or pingd lte 0"}} in cons
    assert {"colocation": "vip", "with": "ping-clone", "score": 1_000_000} in cons
    assert {"order": "ping-clone", "then": "vip", "kind": "optional", "first_action": "start"} in cons


def test_malformed_xml_names_file_and_line(tmp_path: Path) -> None:
    bad = "<cib>\n  <configuration>\n    <resources>\n  </configuration>\n</cib>\n"
    with pytest.raises(ImportFailed) as e:
        import_cib([(bad, "bad.xml")])
    assert e.value.file == "bad.xml" and e.value.line == 4
    assert "not well-formed" in str(e.value)


def test_unknown_address_node_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown node"):
        import_cib([((DATA / "modern.xml").read_text(), "modern.xml")], addresses={"n1": ["10.0.0.1"],
                                                                                     "nx": ["10.0.0.9"]})


def test_ids_that_are_not_havm_names_are_renamed_and_reported() -> None:
    xml = """<cib validate-with="pacemaker-3.9"><configuration><crm_config/>
      <nodes><node id="1" uname="n1"/></nodes>
      <resources><primitive id="_odd" class="ocf" provider="pacemaker" type="Dummy"/></resources>
      <constraints><rsc_location id="l" rsc="_odd" node="n1" score="5"/></constraints>
      </configuration></cib>"""
    result = import_cib([(xml, "odd.xml")])
    c = parse_config_text(result.text, "x.yaml").config
    assert c.resources[0].id == "r_odd"
    assert c.constraints[0].location == "r_odd"
    assert any("renamed to 'r_odd'" in str(i) for i in result.report.of_level("info"))


def test_colocation_and_order_sets_follow_pacemaker() -> None:
    xml = """<cib validate-with="pacemaker-3.9"><configuration><crm_config/>
      <nodes><node id="1" uname="n1"/></nodes>
      <resources>""" + "".join(
        f'<primitive id="{r}" class="ocf" provider="pacemaker" type="Dummy"/>' for r in "ABCDE") + """
      </resources><constraints>
        <rsc_colocation id="c" score="INFINITY">
          <resource_set id="s1" sequential="false"><resource_ref id="A"/><resource_ref id="B"/></resource_set>
          <resource_set id="s2"><resource_ref id="C"/><resource_ref id="D"/></resource_set>
        </rsc_colocation>
        <rsc_order id="o">
          <resource_set id="o1"><resource_ref id="A"/><resource_ref id="B"/></resource_set>
          <resource_set id="o2" sequential="false"><resource_ref id="D"/><resource_ref id="E"/></resource_set>
        </rsc_order>
        <rsc_order id="o-any">
          <resource_set id="o3" require-all="false"><resource_ref id="A"/><resource_ref id="B"/></resource_set>
        </rsc_order>
      </constraints></configuration></cib>"""
    result = import_cib([(xml, "sets.xml")])
    c = parse_config_text(result.text, "x.yaml").config
    colo = {(x.colocation, x.with_) for x in c.constraints if hasattr(x, "colocation")}
    # D with C inside set 2; A and B (non-sequential) each with D, the last of set 2
    assert colo == {("D", "C"), ("A", "D"), ("B", "D")}
    orders = {(x.order, x.then) for x in c.constraints if hasattr(x, "then")}
    # A then B inside set 1; B (last of a sequential set) before every member of set 2
    assert orders == {("A", "B"), ("B", "D"), ("B", "E")}
    assert any("require-all=false" in str(i) for i in result.report.of_level("dropped"))


def test_unsupported_rule_values_are_reported_not_mangled() -> None:
    xml = """<cib validate-with="pacemaker-3.9"><configuration><crm_config/>
      <nodes><node id="1" uname="n1"/></nodes>
      <resources><primitive id="A" class="ocf" provider="pacemaker" type="Dummy"/></resources>
      <constraints>
        <rsc_location id="l1" rsc="A"><rule id="r1" score="10">
          <expression id="e1" attribute="site" operation="eq" value="two words"/></rule></rsc_location>
        <rsc_location id="l2" rsc="A"><rule id="r2" score-attribute="weight">
          <expression id="e2" attribute="site" operation="defined"/></rule></rsc_location>
        <rsc_location id="l3" rsc-pattern="^A" node="n1" score="1"/>
      </constraints></configuration></cib>"""
    result = import_cib([(xml, "rules.xml")])
    c = parse_config_text(result.text, "x.yaml").config
    assert c.constraints == []
    text = "\n".join(str(i) for i in result.report.of_level("dropped"))
    assert "two words" in text and "score-attribute" in text and "rsc-pattern" in text


def test_fence_devices_from_stonith_primitives() -> None:
    xml = """<cib validate-with="pacemaker-3.9"><configuration><crm_config><cluster_property_set id="o">
        <nvpair id="o1" name="stonith-timeout" value="90s"/></cluster_property_set></crm_config>
      <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
      <resources>
        <primitive id="f1" class="stonith" type="fence_ipmilan">
          <instance_attributes id="f1-ia">
            <nvpair id="f1-a" name="ipaddr" value="10.9.0.1"/>
            <nvpair id="f1-h" name="pcmk_host_list" value="n1 n9"/>
            <nvpair id="f1-d" name="pcmk_delay_base" value="5s"/>
            <nvpair id="f1-m" name="pcmk_host_map" value="n1:1"/>
          </instance_attributes>
        </primitive>
        <clone id="fencing-clone"><primitive id="f2" class="stonith" type="external/ssh">
          <instance_attributes id="f2-ia"><nvpair id="f2-h" name="hostlist" value="n1 n2"/></instance_attributes>
        </primitive></clone>
      </resources>
      <constraints><rsc_location id="f1-not-n1" rsc="f1" node="n1" score="-INFINITY"/></constraints>
      </configuration></cib>"""
    result = import_cib([(xml, "f.xml")])
    c = parse_config_text(result.text, "x.yaml").config
    assert c.resources == [] and c.constraints == []
    [f1] = c.fencing.devices
    assert (f1.agent, f1.params, f1.host_map, f1.delay, f1.timeout) == ("fence_ipmilan", {"ipaddr": "10.9.0.1"},
                                                                         {"n1": "1"}, 5, 90)
    dropped = "\n".join(str(i) for i in result.report.of_level("dropped"))
    assert "n9" in dropped and "fence device" in dropped  # the location
    assert "external/ssh" in dropped and "fence_*" in dropped  # a cluster-glue plugin is not carried over


def test_fence_host_map_is_carried_over() -> None:
    xml = """<cib validate-with="pacemaker-3.9"><configuration><crm_config/>
      <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
      <resources><primitive id="f" class="stonith" type="fence_virsh"><instance_attributes id="f-ia">
            <nvpair id="f-m" name="pcmk_host_map" value="n1:vm-a;n2:vm-b n7:x"/>
      </instance_attributes></primitive></resources></configuration></cib>"""
    result = import_cib([(xml, "f.xml")])
    [f] = parse_config_text(result.text, "x.yaml").config.fencing.devices
    assert f.host_map == {"n1": "vm-a", "n2": "vm-b"}
    assert any("n7" in str(i) for i in result.report.of_level("dropped"))


def test_anonymous_clone_node_max_above_one_is_reported() -> None:
    xml = """<cib validate-with="pacemaker-3.9"><configuration><crm_config/>
      <nodes><node id="1" uname="n1"/></nodes>
      <resources><clone id="c"><meta_attributes id="m">
          <nvpair id="m1" name="clone-node-max" value="2"/></meta_attributes>
        <primitive id="p" class="ocf" provider="pacemaker" type="Dummy"/></clone></resources>
      </configuration></cib>"""
    result = import_cib([(xml, "c.xml")])
    c = parse_config_text(result.text, "x.yaml").config
    assert c.resources[0].clone_node_max == 1
    assert any("clone-node-max=2" in str(i) for i in result.report.of_level("dropped"))


# --- generated CIBs --------------------------------------------------------------

@pytest.mark.skipif(not GEN_CIB.exists(), reason="the shared Pacemaker bench tools are not here")
@pytest.mark.parametrize("scenario", ["fresh", "steady", "node-failure", "constraints", "utilization", "mixed"])
def test_generated_cibs_import_and_validate(tmp_path: Path, scenario: str) -> None:
    out = tmp_path / "cib.xml"
    subprocess.run([sys.executable, str(GEN_CIB), "--nodes", "5", "--resources", "40", "--scenario", scenario,
                    "--seed", "7", "--fencing", "--output", str(out)], check=True)
    result = import_cib([(out.read_text(), str(out))])
    c = parse_config_text(result.text, "x.yaml").config
    assert len(c.nodes) == 5
    primitives = sum(1 for r in c.resources for _ in (r.resources if hasattr(r, "resources") else [r]))
    assert primitives >= 40
    # generated CIBs use only what havm supports, except Pacemaker's own knobs
    assert {i.what.split()[-1].split("=")[0] for i in result.report.of_level("dropped")} <= \
        {"enable-startup-probes"}


def test_pacemakers_throttles_carry_over_as_counts() -> None:
    def props(pairs: str):
        xml = f"""<cib validate-with="pacemaker-3.9"><configuration><crm_config>
          <cluster_property_set id="o">{pairs}</cluster_property_set></crm_config>
          <nodes><node id="1" uname="n1"/></nodes><resources/><constraints/></configuration></cib>"""
        result = import_cib([(xml, "t.xml")])
        return result, parse_config_text(result.text, "x.yaml").config.properties

    result, p = props('<nvpair id="a" name="batch-limit" value="4"/><nvpair id="b" name="node-action-limit" '
                      'value="2"/><nvpair id="c" name="migration-limit" value="1"/>')
    assert (p.batch_limit, p.node_action_limit, p.migration_limit) == (4, 2, 1)
    result, p = props('<nvpair id="a" name="batch-limit" value="0"/><nvpair id="b" name="node-action-limit" '
                      'value="0"/><nvpair id="c" name="migration-limit" value="-1"/><nvpair id="d" '
                      'name="load-threshold" value="80%"/>')
    default = parse_config_text("cluster: x\nlinks: [{name: r}]\nnodes: [{name: n1, addresses: {r: 10.0.0.1}}]\n",
                                "d.yaml").config.properties
    assert (p.batch_limit, p.node_action_limit, p.migration_limit) == (
        default.batch_limit, default.node_action_limit, default.migration_limit)
    infos = [str(i) for i in result.report.of_level("info")]
    assert any("batch-limit" in i and "CPU load" in i for i in infos)
    assert any("node-action-limit" in i and "2 x the node's cores" in i for i in infos)
    result, _ = props('<nvpair id="a" name="batch-limit" value="lots"/>')
    assert dropped(result, "batch-limit") and "whole number" in dropped(result, "batch-limit")[0]
