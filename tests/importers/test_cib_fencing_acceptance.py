"""Acceptance of 'havm import cib' on Pacemaker's own regression inputs with fencing,
through the real command line, as an operator runs it:

    havm import cib INPUT.xml -o out.yaml     (exit 0)
    havm config validate out.yaml            (exit 0)

colocation-vs-stickiness.xml has a fencing topology (two levels, a level of two devices,
a target-attribute target, levels for remote nodes); bug-5025-1.xml a fence device with
an ``action`` parameter (refused by the schema before the importer handled it);
per-op-failcount.xml a topology whose devices are cluster-glue plugins (not imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from havm.config.load import load_config

DATA = Path(__file__).parent / "data" / "pacemaker-cts"


def havm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAVM_")}
    return subprocess.run([sys.executable, "-m", "havm.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def import_and_validate(name: str, tmp_path: Path) -> tuple[list[dict[str, object]], Path]:
    out = tmp_path / "cluster.yaml"
    done = havm("import", "cib", str(DATA / name), "-o", str(out), "--json")  # DATA / an absolute path: itself
    assert done.returncode == 0, done.stdout + done.stderr
    checked = havm("config", "validate", "--no-key-check", str(out))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return json.loads(done.stdout)["report"], out


def test_topology_of_a_regression_input(tmp_path: Path) -> None:
    report, out = import_and_validate("colocation-vs-stickiness.xml", tmp_path)
    fencing = load_config(str(out), check_key=False).config.fencing
    assert fencing.levels == {
        "rhel7-1": [["FencingFail"], ["Fencing"]],  # index 1, then 2
        "rhel7-2": [["FencingFail"], ["Fencing"]],
        "rhel7-3": [["FencingPass", "Fencing"]],  # devices="FencingPass,Fencing": both must succeed
        "rhel7-4": [["FencingFail"], ["Fencing"]],
        "rhel7-5": [["FencingPass", "Fencing"]],  # target-attribute cts-fencing=levels-and
    }
    fence = fencing.device("Fencing")  # pcmk_host_list + pcmk_host_map (which maps only remote nodes)
    assert fence.host_map == {f"rhel7-{i}": f"rhel7-{i}" for i in range(1, 6)}
    dropped = [r for r in report if r["level"] == "dropped" and "fencing-level" in str(r["what"])]
    # the remote nodes' levels, each with its line
    assert sorted(int(r["line"]) for r in dropped) == [144, 148, 151, 154, 156]  # type: ignore[call-overload]
    assert all("remote and guest nodes" in str(r["why"]) for r in dropped)


def test_action_parameter_no_longer_refused(tmp_path: Path) -> None:
    report, out = import_and_validate("bug-5025-1.xml", tmp_path)
    [device] = load_config(str(out), check_key=False).config.fencing.devices
    assert "action" not in device.params
    assert any(r["level"] == "dropped" and "action=reboot" in str(r["what"]) and r["line"] == 23 for r in report)


def test_topology_of_devices_not_imported(tmp_path: Path) -> None:
    report, out = import_and_validate("per-op-failcount.xml", tmp_path)
    assert load_config(str(out), check_key=False).config.fencing.levels == {}
    why = [str(r["why"]) for r in report if r["level"] == "dropped" and "fencing-level" in str(r["what"])]
    assert len(why) == 4  # per node: its level (device not imported), then "none of its levels"
    assert sum("external/ssh" in w or "was not imported" in w for w in why) == 2


def test_watchdog_and_pattern_topology_through_the_command_line(tmp_path: Path) -> None:
    cib = tmp_path / "cib.xml"
    cib.write_text("""<cib validate-with="pacemaker-3.9"><configuration><crm_config>
      <cluster_property_set id="o"><nvpair id="o1" name="stonith-watchdog-timeout" value="30s"/>
        <nvpair id="o2" name="no-quorum-policy" value="stop"/></cluster_property_set></crm_config>
      <nodes><node id="1" uname="hv1"/><node id="2" uname="hv2"/><node id="3" uname="db1"/></nodes>
      <resources><primitive id="bmc" class="stonith" type="fence_ipmilan">
        <instance_attributes id="b"><nvpair id="b1" name="pcmk_host_list" value="hv1 hv2"/></instance_attributes>
      </primitive><primitive id="pdu" class="stonith" type="fence_apc_snmp">
        <instance_attributes id="p"><nvpair id="p1" name="pcmk_host_map" value="hv1:1;hv2:2"/></instance_attributes>
      </primitive></resources>
      <fencing-topology><fencing-level id="l1" target-pattern="^hv" index="1" devices="bmc"/>
        <fencing-level id="l2" target-pattern="^hv" index="2" devices="pdu"/></fencing-topology>
      </configuration></cib>""")
    _, out = import_and_validate(str(cib), tmp_path)
    config = load_config(str(out), check_key=False).config
    assert config.fencing.levels == {"hv1": [["bmc"], ["pdu"]], "hv2": [["bmc"], ["pdu"]]}
    assert config.watchdog.backend == "dev" and config.properties.fencing_watchdog_timeout == 30
    assert config.fencing.levels_for("db1") == []  # no device can fence it: its watchdog does
