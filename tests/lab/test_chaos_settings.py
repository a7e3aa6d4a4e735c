"""The campaign's settings: its configuration adjustments and the fence hook (pure / files only)."""

from __future__ import annotations

import yaml

from havm.config.load import parse_config_text
from havm.lab.chaos import fencehook
from havm.lab.chaos.campaign import TWO_NODE_FENCE_DELAY, CampaignOptions, campaign_config

LAB_CONFIG = """
version: 1
cluster: lab-x
nodes:
  - {name: n1, addresses: {ring0: 10.213.0.1}}
  - {name: n2, addresses: {ring0: 10.213.0.2}}
links: [{name: ring0, mode: unicast, port: 694}]
auth: {key_file: authkey}
fencing:
  devices: [{id: lab-power, agent: lab, params: {lab_dir: /tmp/x}}]
resources:
  - id: vm1
    type: vm
    params: {name: vm1, kernel: /k, disks: [{path: /tmp/x/disks/vm1.qcow2, format: qcow2}]}
"""


def test_vm_disks_get_the_campaigns_locking():
    doc = yaml.safe_load(campaign_config(LAB_CONFIG, CampaignOptions(nodes=3, disk_locking="off"), None))
    assert doc["resources"][0]["params"]["disks"][0]["locking"] == "off"
    assert "quorum" not in doc


def test_two_nodes_get_a_ping_tiebreaker_and_a_fence_delay_on_n1():
    text = campaign_config(LAB_CONFIG, CampaignOptions(nodes=2), "10.214.255.254")
    doc = yaml.safe_load(text)
    assert doc["quorum"] == {"two_node": True, "tiebreaker": {"type": "ping", "targets": ["10.214.255.254"]}}
    # the default timing (deadtime 3 s): n1's delay outlasts n1's reaction (4.5 s), else havm refuses it
    assert doc["fencing"]["devices"][0]["delay"] == {"n1": 5.0}
    assert parse_config_text(text, "chaos.yaml") is not None  # havm accepts it
    lab_timing = LAB_CONFIG + "timing: {keepalive: 0.2, warntime: 0.6, deadtime: 1, initdead: 10}\n"
    doc = yaml.safe_load(campaign_config(lab_timing, CampaignOptions(nodes=2), "10.214.255.254"))
    assert doc["fencing"]["devices"][0]["delay"] == {"n1": TWO_NODE_FENCE_DELAY}  # the campaign's timing


def test_fence_hook_modes_nodes_and_removal(tmp_path):
    d = str(tmp_path)
    assert fencehook.fence_override(d, "n1") is None
    fencehook.set_override(d, "slow", delay=3, nodes=["n2"])
    assert fencehook.fence_override(d, "n1") is None
    assert fencehook.fence_override(d, "n2") == fencehook.FenceOverride("slow", 3.0)
    fencehook.set_override(d, "lie")
    assert fencehook.fence_override(d, "n1") == fencehook.FenceOverride("lie", 0.0)
    fencehook.set_override(d, None)
    assert fencehook.fence_override(d, "n1") is None
    (tmp_path / fencehook.HOOK_FILE).write_text("{not json")
    assert fencehook.fence_override(d, "n1") is None  # broken: fence for real


def test_fake_fencing_only_with_the_labs_power_switch():
    import pytest

    from havm.errors import UsageError
    from havm.lab.chaos.campaign import check_options

    with pytest.raises(UsageError, match="only with the lab's power switch"):
        check_options(CampaignOptions(fencing="ipmi", unsafe_fake_fencing=True))
    with pytest.raises(UsageError, match="unknown fault kind"):
        check_options(CampaignOptions(kinds=("kill", "meteor")))


def test_log_cursor_counts_fences_once_and_only_whole_lines(tmp_path):
    from havm.lab.chaos.campaign import LogCursor

    for n in ("n1", "n2"):
        (tmp_path / "nodes" / n).mkdir(parents=True)
    log1 = tmp_path / "nodes" / "n1" / "havmd.log"
    log1.write_text("2026-11-22 06:40:28,864 n1 havm.controller WARNING: fenced n2: confirmed off\n"
                    "2026-11-22 06:40:29,000 n1 havm.controller ERROR: FENCING n3 FAILED: retrying\n")
    cur = LogCursor(str(tmp_path), ["n1", "n2"])
    done, failed = cur.fences()
    assert [n for _, n in done] == ["n2"] and failed == 1
    assert cur.fences() == ([], 0)  # already read
    with log1.open("a") as f:
        f.write("2026-11-22 06:41:00,000 n1 havm.controller WARNING: n3 lost for 12.0s >= "
                "fencing_watchdog_timeout 10s: taken as fenced\n2026-11-22 06:41:01,000 n1 havm.contr")
    done, _ = cur.fences()
    assert [n for _, n in done] == ["n3"]  # the half-written line waits for its end
    cur.skip()
    assert cur.fences() == ([], 0)
