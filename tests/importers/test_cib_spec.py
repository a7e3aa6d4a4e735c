"""The lean CIB reader (havm simulate's fast path) agrees with the full importer.

Every CIB the tests hold, and CIBs written here for the features the lean reader
carries itself, are read both ways: either the lean reader declines
(``Unsupported``, and havm simulate takes the full path) or the ClusterSpec and
State are equal.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from havm.importers.cib_simulation import load_cib_simulation
from havm.importers.cib_spec import Unsupported, load_cib_spec

DATA = Path(__file__).parent / "data"
GEN_CIB = Path("/work/shared/bench/pacemaker/gen_cib.py")

FEATURES = """<cib validate-with="pacemaker-3.9" have-quorum="1" dc-uuid="1" execution-date="1700000600">
 <configuration>
  <crm_config><cluster_property_set id="o">
    <nvpair id="o1" name="stonith-enabled" value="true"/>
    <nvpair id="o2" name="no-quorum-policy" value="Freeze"/>
    <nvpair id="o3" name="placement-strategy" value="balanced"/>
    <nvpair id="o4" name="default-resource-stickiness" value="7"/>
  </cluster_property_set></crm_config>
  <nodes>
   <node id="1" uname="n1"><instance_attributes id="n1a"><nvpair id="n1a1" name="rack" value="r1"/>
     </instance_attributes><utilization id="n1u"><nvpair id="n1u1" name="cpu" value="8"/></utilization></node>
   <node id="2" uname="n2"><instance_attributes id="n2a"><nvpair id="n2a1" name="standby" value="on"/>
     <nvpair id="n2a2" name="rack" value="r2"/></instance_attributes></node>
   <node id="3" uname="n3"/>
   <node id="4" uname="ping1" type="ping"/>
  </nodes>
  <resources>
   <primitive id="fence" class="stonith" type="fence_ipmilan"/>
   <primitive id="vm1" class="ocf" provider="heartbeat" type="VirtualDomain">
    <instance_attributes id="vm1p"><nvpair id="vm1p1" name="config" value="/etc/vm1.xml"/></instance_attributes>
    <meta_attributes id="vm1m"><nvpair id="vm1m1" name="allow-migrate" value="true"/>
      <nvpair id="vm1m2" name="migration-threshold" value="3"/><nvpair id="vm1m3" name="failure-timeout" value="2min"/>
      <nvpair id="vm1m4" name="notify" value="true"/></meta_attributes>
    <utilization id="vm1u"><nvpair id="vm1u1" name="cpu" value="2"/></utilization>
    <operations><op id="vm1o0" name="monitor" interval="0" timeout="20s"/>
      <op id="vm1o1" name="monitor" interval="10s" timeout="20s" on-fail="restart"/>
      <op id="vm1o2" name="monitor" interval="20s" timeout="20s"/><op id="vm1o3" name="stop" interval="0"
      timeout="60s" on-fail="block"/></operations>
   </primitive>
   <group id="web"><meta_attributes id="webm"><nvpair id="webm1" name="target-role" value="Started"/>
     <nvpair id="webm2" name="priority" value="5"/></meta_attributes>
    <primitive id="ip" class="ocf" type="IPaddr2"/>
    <primitive id="apache" class="lsb" type="apache2"><meta_attributes id="am">
      <nvpair id="am1" name="resource-stickiness" value="INFINITY"/></meta_attributes></primitive>
   </group>
   <clone id="fs-clone"><meta_attributes id="fsm"><nvpair id="fsm1" name="interleave" value="true"/>
     <nvpair id="fsm2" name="clone-max" value="2"/></meta_attributes>
    <primitive id="fs" class="systemd" type="srv-fs"/></clone>
   <master id="drbd-ms"><meta_attributes id="dm"><nvpair id="dm1" name="master-max" value="1"/>
     <nvpair id="dm2" name="notify" value="true"/></meta_attributes>
    <primitive id="drbd" class="ocf" provider="linbit" type="drbd">
     <operations><op id="do1" name="monitor" interval="15s" role="Master"/>
       <op id="do2" name="monitor" interval="30s" role="Slave"/></operations></primitive></master>
   <clone id="u-clone"><meta_attributes id="um"><nvpair id="um1" name="globally-unique" value="true"/>
     <nvpair id="um2" name="clone-node-max" value="2"/><nvpair id="um3" name="clone-max" value="3"/>
     </meta_attributes><primitive id="u" class="ocf" provider="pacemaker" type="Dummy"/></clone>
   <clone id="fence-clone"><primitive id="fence2" class="stonith" type="fence_xvm"/></clone>
  </resources>
  <constraints>
   <rsc_location id="l1" rsc="vm1" node="n1" score="100"/>
   <rsc_location id="l2" rsc="web" node="n9" score="100"/>
   <rsc_location id="l3" rsc="drbd-ms" role="Master" node="n1" score="50"/>
   <rsc_location id="l4" rsc="web"><rule id="r1" score="-INFINITY" boolean-op="or">
     <expression id="e1" attribute="rack" operation="eq" value="r2"/>
     <expression id="e2" attribute="ssd" operation="not_defined"/></rule>
     <rule id="r2" score="10"><expression id="e3" attribute="#uname" operation="ne" value="n3"/></rule>
     <rule id="r3" score="10"><date_expression id="d1" operation="in_range" start="2024-01-01"/></rule>
   </rsc_location>
   <rsc_location id="l5" rsc="vm1" role="Master" node="n1" score="5"/>
   <rsc_colocation id="c1" rsc="web" with-rsc="fs-clone" score="INFINITY"/>
   <rsc_colocation id="c2" rsc="vm1" with-rsc="drbd-ms" with-rsc-role="Master"/>
   <rsc_colocation id="c3" rsc="vm1" with-rsc="fence" score="INFINITY"/>
   <rsc_order id="o1" first="fs-clone" then="web"/>
   <rsc_order id="o2" first="drbd-ms" first-action="promote" then="vm1" then-action="start" kind="Optional"/>
   <rsc_order id="o3" first="ip" then="vm1" score="0" symmetrical="false"/>
   <rsc_order id="o4" first="vm1" then="u-clone" kind="Serialize"/>
   <rsc_ticket id="t1" rsc="vm1" ticket="T"/>
  </constraints>
  <rsc_defaults><meta_attributes id="rd"><nvpair id="rd1" name="resource-stickiness" value="100"/>
  </meta_attributes></rsc_defaults>
 </configuration>
 <status>
  <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
   <transient_attributes id="1"><instance_attributes id="s1"><nvpair id="s1a" name="fail-count-vm1#monitor_10000"
     value="2"/><nvpair id="s1b" name="last-failure-vm1#monitor_10000" value="1700000500"/>
     <nvpair id="s1c" name="master-drbd" value="10"/></instance_attributes></transient_attributes>
   <lrm id="1"><lrm_resources>
    <lrm_resource id="vm1" class="ocf" provider="heartbeat" type="VirtualDomain">
     <lrm_rsc_op id="a" operation="start" call-id="3" rc-code="0" op-status="0" interval="0"
       transition-key="1:1:0:x" last-rc-change="1700000000"/>
     <lrm_rsc_op id="b" operation="monitor" call-id="4" rc-code="7" op-status="0" interval="10000"
       transition-key="2:1:0:x" last-rc-change="1700000500"/></lrm_resource>
    <lrm_resource id="drbd:0" class="ocf" provider="linbit" type="drbd">
     <lrm_rsc_op id="c" operation="promote" call-id="5" rc-code="0" op-status="0" interval="0"
       transition-key="3:1:0:x"/></lrm_resource>
    <lrm_resource id="u:1" class="ocf" provider="pacemaker" type="Dummy">
     <lrm_rsc_op id="d" operation="start" call-id="6" rc-code="0" op-status="0" interval="0"
       transition-key="4:1:0:x"/></lrm_resource>
    <lrm_resource id="gone" class="ocf" provider="pacemaker" type="Dummy">
     <lrm_rsc_op id="e" operation="start" call-id="7" rc-code="0" op-status="0" interval="0"
       transition-key="5:1:0:x"/></lrm_resource>
   </lrm_resources></lrm>
  </node_state>
  <node_state id="2" uname="n2" in_ccm="false" crmd="offline" join="down" expected="member"/>
 </status>
</cib>
"""


def _both(path: Path) -> tuple[object, object] | None:
    try:
        fast = load_cib_spec(path.read_bytes())
    except Unsupported:
        return None
    return fast, load_cib_simulation(str(path))


def test_features_the_lean_reader_carries_read_as_the_importer_does(tmp_path: Path) -> None:
    path = tmp_path / "features.xml"
    path.write_text(FEATURES)
    got = _both(path)
    assert got is not None, "the lean reader should read this CIB itself"
    fast, full = got
    assert fast == full
    spec, state = fast  # type: ignore[misc]
    assert [n.name for n in spec.nodes] == ["n1", "n2", "n3"]
    assert spec.properties.no_quorum_policy == "freeze" and spec.properties.placement_strategy == "balanced"
    assert spec.top == ("vm1", "web", "fs-clone", "drbd-ms", "u-clone")
    vm1 = spec.primitives["vm1"]
    assert (vm1.allow_migrate, vm1.migration_threshold, vm1.failure_timeout, vm1.monitor_interval,
            vm1.stickiness) == (True, 3, 120.0, 10.0, 100)
    assert spec.primitives["apache"].stickiness == 1_000_000 and spec.primitives["ip"].priority == 5
    assert spec.clones["drbd-ms"].promotable and spec.clones["u-clone"].clone_node_max == 2
    assert len(spec.locations) == 4 and len(spec.colocations) == 2 and len(spec.orders) == 4
    assert state.resources["vm1"]["n1"].failed and state.resources["vm1"]["n1"].failcount == 2
    assert state.resources["u:1"]["n1"].role == "started" and "gone" not in state.resources
    assert state.nodes["n2"].status == "unclean"


@pytest.mark.parametrize("change", [
    ("<cib validate-with", "<cib"),  # Heartbeat 2 era
    ('<nvpair id="vm1p1" name="config"', '<nvpair id="vm1p1" name="target_role" value="stopped"/><nvpair '
                                        'id="vm1p2" name="config"'),  # Heartbeat 2 meta in params
    ('<meta_attributes id="webm">', '<meta_attributes id-ref="vm1m"/><meta_attributes id="webm">'),
    ('<rsc_order id="o1" first="fs-clone" then="web"/>',
     '<rsc_order id="o1"><resource_set id="s"><resource_ref id="ip"/><resource_ref id="vm1"/></resource_set>'
     '</rsc_order>'),
    ('<primitive id="vm1" ', '<primitive id="vm 1" '),  # an id the importer renames
    ('<cib validate-with', '<!DOCTYPE cib>\n<cib validate-with'),  # entities: ElementTree's own handling
    ('<lrm_rsc_op id="e" ', '<lrm_resource id="in"/><lrm_rsc_op id="e" '),  # an lrm_resource in another
    ('</lrm_resources></lrm>', '</lrm_resources></lrm><node_state id="9"/>'),  # a node_state in another
    ('<nvpair id="s1c"', '<rule id="sr"/><nvpair id="s1c"'),  # transient attributes with a rule
    ('</lrm_resources></lrm>\n  </node_state>', '</lrm_resources></lrm>\n  </node_stat>'),  # not well-formed
    ('<cib validate-with', '<?xml version="1.0" encoding="x-unknown"?>\n<cib validate-with'),  # an encoding
])
def test_what_the_lean_reader_leaves_to_the_importer(change: tuple[str, str]) -> None:
    text = FEATURES.replace(*change, 1)
    assert text != FEATURES
    with pytest.raises(Unsupported):
        load_cib_spec(text.encode())


CIBS = sorted((DATA / "pacemaker").glob("*.xml")) + sorted((DATA / "pacemaker-cts").glob("*.xml"))


@pytest.mark.parametrize("path", CIBS, ids=[p.name for p in CIBS])
def test_test_cibs_read_alike(path: Path) -> None:
    got = _both(path)
    if got is not None:
        assert got[0] == got[1]


@pytest.mark.skipif(not GEN_CIB.exists(), reason="gen_cib.py (shared bench tools) not here")
@pytest.mark.parametrize("scenario", ["fresh", "node-failure", "constraints", "utilization", "mixed"])
def test_generated_cibs_read_alike(tmp_path: Path, scenario: str) -> None:
    path = tmp_path / f"{scenario}.xml"
    subprocess.run([sys.executable, str(GEN_CIB), "--nodes", "5", "--resources", "60", "--scenario", scenario,
                    "--seed", "3", "--fencing", "--output", str(path)], check=True)
    got = _both(path)
    assert got is not None, "generated CIBs are what the lean reader is for"
    assert got[0] == got[1]
