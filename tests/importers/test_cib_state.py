"""load_state: a CIB's status section as node states and per-node resource records.

Where Pacemaker's own crm_mon is installed, the node states and the active
resources we read are compared with what it reads from the same CIB file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from havm.importers.cib import load_cib_simulation, load_state

DATA = Path(__file__).parent / "data" / "pacemaker"
GEN_CIB = Path("/work/shared/bench/pacemaker/gen_cib.py")
CRM_MON = shutil.which("crm_mon")


def test_modern_status() -> None:
    s = load_state((DATA / "modern.xml").read_text())
    assert s["format"] == 1 and s["have_quorum"] is True and s["dc"] == "n1" and s["now"] == 1700000600
    assert s["nodes"]["n1"]["status"] == "online" and s["nodes"]["n1"]["attributes"] == {"pingd": "1"}
    assert s["nodes"]["n2"]["status"] == "unclean"  # expected up, gone from the membership, fencing on
    assert s["nodes"]["n2"]["reason"] == "peer is no longer part of the cluster"
    assert s["nodes"]["n3"]["status"] == "online" and s["nodes"]["n3"]["standby"] is True  # from <nodes>
    r = s["resources"]
    assert r["web-ip"]["n1"]["role"] == "started" and not r["web-ip"]["n1"]["failed"]
    assert r["web-ip"]["n1"]["last_op"] == {"operation": "monitor", "interval": 10.0, "rc_code": 0,
                                            "op_status": 0, "call_id": 6, "last_rc_change": 1700000000.0}
    assert r["drbd"]["n1"]["role"] == "promoted" and r["drbd"]["n1"]["promotion_score"] == 10000
    assert r["drbd"]["n2"]["role"] == "started"  # on an unclean node: still active until fenced
    fs_n2 = r["fs"]["n2"]
    assert fs_n2["failed"] and fs_n2["failcount"] == 1_000_000 and fs_n2["last_failure"] == 1700000100
    vm1 = r["vm1"]
    assert vm1["n1"]["failed"] and vm1["n1"]["role"] == "started"  # monitor found it stopped: recover
    assert vm1["n3"] == {**vm1["n3"], "role": None, "failed": False}  # probe: not running there
    assert s["orphans"] == []


def _cib(status: str, stonith: str = "true", extra: str = "") -> str:
    return f"""<cib validate-with="pacemaker-3.9" have-quorum="0"><configuration><crm_config>
      <cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="{stonith}"/>{extra}
      </cluster_property_set></crm_config>
      <nodes><node id="1" uname="a"/><node id="2" uname="b"/><node id="3" uname="c"/></nodes>
      <resources><clone id="u"><meta_attributes id="um"><nvpair id="um1" name="globally-unique" value="true"/>
        </meta_attributes><primitive id="p" class="ocf" provider="pacemaker" type="Dummy"/></clone>
        <clone id="anon"><primitive id="q" class="ocf" provider="pacemaker" type="Dummy"/></clone>
      </resources></configuration><status>{status}</status></cib>"""


def _op(rid: str, op: str, rc: int, call: int, interval: int = 0, status: int = 0) -> str:
    return (f'<lrm_resource id="{rid}" class="ocf" provider="pacemaker" type="Dummy"><lrm_rsc_op id="{rid}_{call}" '
            f'operation="{op}" call-id="{call}" rc-code="{rc}" op-status="{status}" interval="{interval}"/>'
            f'</lrm_resource>')


def test_node_status_rules() -> None:
    status = """
      <node_state id="1" uname="a" in_ccm="1700000000" crmd="1700000000" join="member" expected="member"/>
      <node_state id="2" uname="b" in_ccm="false" crmd="offline" join="down" expected="down"/>"""
    s = load_state(_cib(status))
    assert s["have_quorum"] is False
    assert s["nodes"]["a"]["status"] == "online"  # Pacemaker 2.1.7+ timestamps mean member
    assert s["nodes"]["b"]["status"] == "offline"  # left cleanly
    assert s["nodes"]["c"]["status"] == "unclean"  # never seen, startup-fencing
    s = load_state(_cib(status, stonith="false"))
    assert s["nodes"]["c"]["status"] == "offline"  # without fencing nobody is unclean
    s = load_state(_cib(status, extra='<nvpair id="o2" name="startup-fencing" value="false"/>'))
    assert s["nodes"]["c"]["status"] == "offline"
    pending = '<node_state id="1" uname="a" in_ccm="true" crmd="online" join="pending" expected="member"/>'
    node = load_state(_cib(pending))["nodes"]["a"]
    assert node["status"] == "online" and node["pending"] and node["standby"]  # as Pacemaker: standby


def test_operation_replay_and_clone_instances() -> None:
    lrm = (_op("p:0", "start", 0, 3) + _op("p:1", "start", 0, 4) + _op("q:0", "monitor", 0, 2)
           + '<lrm_resource id="q" class="ocf" provider="pacemaker" type="Dummy">'
             '<lrm_rsc_op id="q1" operation="start" call-id="5" rc-code="1" op-status="0" interval="0"/>'
             '<lrm_rsc_op id="q2" operation="stop" call-id="6" rc-code="0" op-status="0" interval="0"/>'
             '<lrm_rsc_op id="q3" operation="start" call-id="-1" rc-code="0" op-status="-1" interval="0"/>'
             '</lrm_resource>')
    status = f"""<node_state id="1" uname="a" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="1"><lrm_resources>{lrm}</lrm_resources></lrm></node_state>
      <node_state id="2" uname="b" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="2"><lrm_resources>{_op("ghost", "start", 0, 1)}{_op("q", "stop", 1, 7, status=2)}</lrm_resources>
      </lrm></node_state>"""
    s = load_state(_cib(status))
    r = s["resources"]
    assert r["p:0"]["a"]["role"] == "started" and r["p:1"]["a"]["role"] == "started"  # unique: kept apart
    # anonymous: q:0 and q are one history per node, replayed in call-id order: the failed
    # start was stopped, then a start is in flight (pending), so it counts as started
    assert r["q"]["a"]["role"] == "started" and not r["q"]["a"]["failed"]
    assert r["q"]["a"]["last_op"]["operation"] == "stop"  # the last completed operation
    assert r["q"]["b"]["failed"] and r["q"]["b"]["role"] == "started"  # stop timed out
    assert not r["q"]["b"]["blocked"]  # fencing can recover it
    assert load_state(_cib(status, stonith="false"))["resources"]["q"]["b"]["blocked"]
    assert s["orphans"] == ["ghost"]


def test_accepts_an_element() -> None:
    root = ET.fromstring((DATA / "modern.xml").read_text())
    assert load_state(root)["nodes"]["n2"]["status"] == "unclean"


def test_load_cib_simulation_builds_spec_and_state() -> None:
    spec, state = load_cib_simulation(str(DATA / "modern.xml"))
    assert set(spec.node_names()) == {"n1", "n2", "n3"}
    assert state.node("n2").status == "unclean" and state.quorum is True and state.now == 1700000600
    assert state.on("drbd")["n1"].role == "promoted"
    assert "ghost" not in state.resources


# --- against Pacemaker's own reading of the same CIB ------------------------------

def _crm_mon(path: Path) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    out = subprocess.run(["crm_mon", "-1", "--output-as=xml"], env={**os.environ, "CIB_file": str(path)},
                         capture_output=True, text=True, check=True).stdout
    root = ET.fromstring(out)
    nodes = {}
    for n in root.iter("node"):
        if n.get("online") is None:
            continue
        if n.get("unclean") == "true":
            nodes[n.get("name", "")] = "unclean"
        else:
            nodes[n.get("name", "")] = "online" if n.get("online") == "true" else "offline"
    active = set()
    for r in root.iter("resource"):
        if r.get("active") != "true":
            continue
        role = "promoted" if r.get("role") == "Promoted" else "started"
        for n in r.findall("node"):
            active.add((r.get("id", ""), n.get("name", ""), role))
    return nodes, active


def _ours(path: Path) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    s = load_state(path.read_text())
    nodes = {n: v["status"] for n, v in s["nodes"].items()}
    active = {(rid.split(":")[0], node, rec["role"]) for rid, per in s["resources"].items()
              for node, rec in per.items() if rec["role"] is not None and rid not in s["orphans"]}
    return nodes, active


@pytest.mark.skipif(CRM_MON is None, reason="Pacemaker's crm_mon is not installed")
def test_modern_status_agrees_with_crm_mon() -> None:
    assert _ours(DATA / "modern.xml") == _crm_mon(DATA / "modern.xml")


@pytest.mark.skipif(CRM_MON is None or not GEN_CIB.exists(), reason="needs crm_mon and the bench tools")
@pytest.mark.parametrize("scenario,fencing", [("steady", False), ("node-failure", False),
                                              ("node-failure", True), ("mixed", True)])
def test_generated_status_agrees_with_crm_mon(tmp_path: Path, scenario: str, fencing: bool) -> None:
    out = tmp_path / "cib.xml"
    subprocess.run([sys.executable, str(GEN_CIB), "--nodes", "4", "--resources", "20", "--scenario", scenario,
                    "--seed", "11", "--output", str(out)] + (["--fencing"] if fencing else []), check=True)
    ours, theirs = _ours(out), _crm_mon(out)
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]


# --- a few of Pacemaker's own regression inputs (see data/pacemaker-cts/README.md) ---------

CTS = Path(__file__).parent / "data" / "pacemaker-cts"


def test_pacemaker_inputs_read_as_pacemaker_reads_them() -> None:
    def state(name: str) -> dict:
        return load_state((CTS / name).read_text())

    s = state("stopped-monitor-01.xml")  # monitor of the Stopped role returned 7 as expected
    assert s["resources"]["rsc1"]["node2"]["role"] is None and not s["resources"]["rsc1"]["node2"]["failed"]
    assert state("mon-rsc-3.xml")["resources"]["rsc1"]["node1"]["role"] == "started"  # start in flight
    demoted = state("failed-demote-recovery.xml")["resources"]["DB2_HADR"]["fastvm-rhel-7-4-96"]
    assert (demoted["role"], demoted["failed"]) == ("started", True)  # failed demote: unpromoted
    node = state("simple1.xml")["nodes"]["node1"]
    assert (node["status"], node["pending"], node["standby"]) == ("online", True, True)
    s = state("stop-failure-with-fencing.xml")
    assert s["nodes"]["pcmk-2"]["status"] == "unclean" and "clvm" in s["nodes"]["pcmk-2"]["reason"]
    assert s["resources"]["clvm"]["pcmk-2"]["failed"]
    s = state("rec-rsc-5.xml")
    assert s["nodes"]["node2"]["status"] == "unclean" and s["resources"]["rsc1"]["node2"]["failed"]


@pytest.mark.skipif(CRM_MON is None, reason="Pacemaker's crm_mon is not installed")
@pytest.mark.parametrize("name", sorted(p.name for p in CTS.glob("*.xml")))
def test_pacemaker_inputs_agree_with_crm_mon(name: str) -> None:
    assert _ours(CTS / name) == _crm_mon(CTS / name)


@pytest.mark.parametrize("name", sorted(p.name for p in CTS.glob("*.xml")))
def test_pacemaker_inputs_import_and_simulate(name: str) -> None:
    spec, state = load_cib_simulation(str(CTS / name))
    assert spec.node_names()
    from havm.scheduler.plan import plan

    plan(spec, state)  # runs to a transition without error
