"""bench/conformance.py: its comparison and classification on tiny CIBs.

The pure comparison runs everywhere; the end-to-end cases (crm_simulate and our planner on
the same CIB) are skipped when crm_simulate or the shared Pacemaker helper scripts are absent.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("conformance", ROOT / "bench" / "conformance.py")
assert _spec is not None and _spec.loader is not None
conformance: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conformance)

HAVE_PCMK = shutil.which("crm_simulate") is not None and os.path.isfile(
    os.path.join(conformance.DEFAULT_TOOLS, "parse_placement.py"))
needs_pcmk = pytest.mark.skipif(not HAVE_PCMK, reason="crm_simulate or ../shared/bench/pacemaker absent")

NODE_STATE = ('<node_state id="{i}" uname="{n}" in_ccm="true" crmd="online" join="member" '
              'expected="member" crm-debug-origin="test"/>')


def cib(constraints: str = "", nodes: int = 2) -> str:
    names = [f"node{i}" for i in range(1, nodes + 1)]
    node_xml = "".join(f'<node id="{i}" uname="{n}"/>' for i, n in enumerate(names, 1))
    status = "".join(NODE_STATE.format(i=i, n=n) for i, n in enumerate(names, 1))
    return f"""<cib validate-with="pacemaker-3.0" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1">
  <configuration>
    <crm_config><cluster_property_set id="opts">
      <nvpair id="opt-stonith" name="stonith-enabled" value="false"/>
    </cluster_property_set></crm_config>
    <nodes>{node_xml}</nodes>
    <resources>
      <primitive id="rsc1" class="ocf" provider="pacemaker" type="Dummy"/>
      <primitive id="rsc2" class="ocf" provider="pacemaker" type="Dummy"/>
    </resources>
    <constraints>{constraints}</constraints>
  </configuration>
  <status>{status}</status>
</cib>
"""


def pcmk_data(placement: dict[str, Any], scores: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {"placement": placement, "clones": {}, "promoted": {}, "initial": {},
            "nodes": {"node1": "online", "node2": "online"}, "scores": scores}


def ours_data(placement: dict[str, Any]) -> dict[str, Any]:
    return {"placement": placement, "promoted": {}, "primitives": sorted(placement), "dropped": []}


REL = {"related": set(), "group_of": {}, "strategy": "default"}


def test_same_placement_has_no_difference() -> None:
    p = pcmk_data({"rsc1": "node1", "rsc2": None}, {})
    assert conformance.compare(p, ours_data({"rsc1": "node1", "rsc2": None}), REL) == []


def test_other_node_with_equal_scores_is_a_tie_and_unequal_is_not() -> None:
    p = pcmk_data({"rsc1": "node1"}, {"rsc1": {"node1": 0, "node2": 0}})
    diffs = conformance.compare(p, ours_data({"rsc1": "node2"}), REL)
    assert [d["class"] for d in diffs] == ["equal-score tie"]
    p = pcmk_data({"rsc1": "node1"}, {"rsc1": {"node1": 50, "node2": 0}})
    diffs = conformance.compare(p, ours_data({"rsc1": "node2"}), REL)
    assert [d["class"] for d in diffs] == ["score"]
    diffs = conformance.compare(p, ours_data({"rsc1": "node2"}), {**REL, "related": {"rsc1"}})
    assert [d["class"] for d in diffs] == ["order-colocation"]


def test_utilization_with_havm_on_a_node_pacemaker_scores_higher() -> None:
    p = pcmk_data({"rsc1": "node1"}, {"rsc1": {"node1": 0, "node2": 100}})
    diffs = conformance.compare(p, ours_data({"rsc1": "node2"}), {**REL, "strategy": "balanced"})
    assert [d["class"] for d in diffs] == ["utilization-order"]


def test_stopped_on_one_side() -> None:
    p = pcmk_data({"rsc1": None, "rsc2": "node1"}, {})
    diffs = conformance.compare(p, ours_data({"rsc1": "node1", "rsc2": None}), REL)
    assert {d["resource"]: d["class"] for d in diffs} == {"rsc1": "pacemaker-stopped", "rsc2": "havm-stopped"}


def test_clone_count_and_promotion() -> None:
    p = pcmk_data({}, {})
    p["clones"] = {"c": ["node1", "node2"]}
    p["promoted"] = {"c": ["node1"]}
    ours = ours_data({"c": ["node1"], "child": ["node1"]})
    ours["promoted"] = {"c": ["node2"]}
    diffs = conformance.compare(p, ours, REL)
    assert [d["class"] for d in diffs] == ["clone-fewer", "promotion"]


def test_dropped_features_decide_unsupported() -> None:
    p = pcmk_data({"rsc1": "node1"}, {})
    ours = ours_data({"rsc1": "node1"})
    ours["dropped"] = [{"what": '<rsc_ticket id="t">', "why": "havm has no tickets", "line": 3}]
    res = conformance.classify("unused.xml", p, ours, None)
    assert res["status"] == "unsupported" and res["reason"] == "feature-dropped"
    ours["dropped"] = [{"what": '<nvpair name="batch-limit">', "why": "tuning of Pacemaker's controller",
                        "line": 3}]
    assert not conformance.placement_relevant(ours["dropped"][0]["what"], ours["dropped"][0]["why"])


def test_planner_errors_are_unsupported_with_their_traceback() -> None:
    res = conformance.classify("x.xml", pcmk_data({}, {}),
                               {"error": "plan-crash", "detail": "KeyError: 'x'", "traceback": ["line"]}, None)
    assert res["status"] == "unsupported" and res["reason"] == "plan-crash" and res["traceback"] == ["line"]
    res = conformance.classify("x.xml", {"error": "crm_simulate rc=70"}, ours_data({}), None)
    assert res["status"] == "pacemaker-failed"


@needs_pcmk
def test_end_to_end_agreement_on_a_preference(tmp_path: Path) -> None:
    f = tmp_path / "pref.xml"
    f.write_text(cib('<rsc_location id="l1" rsc="rsc1" node="node2" score="100"/>'
                     '<rsc_colocation id="c1" rsc="rsc2" with-rsc="rsc1" score="INFINITY"/>'))
    conformance._init(conformance.DEFAULT_TOOLS)
    res = conformance.check_file((str(f), 60.0))
    assert res["status"] == "agree", res


@needs_pcmk
def test_end_to_end_tie_on_an_unconstrained_two_node_cluster(tmp_path: Path) -> None:
    # Two unconstrained resources on two empty nodes: Pacemaker spreads them by its own
    # tie-breaking; whatever havm does, the outcome is agree or an equal-score tie.
    f = tmp_path / "tie.xml"
    f.write_text(cib())
    conformance._init(conformance.DEFAULT_TOOLS)
    res = conformance.check_file((str(f), 60.0))
    assert res["status"] in ("agree", "tie"), res
    if res["status"] == "tie":
        assert all(d["class"] == "equal-score tie" for d in res["diffs"])
