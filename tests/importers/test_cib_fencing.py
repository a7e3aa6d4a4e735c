"""havm import cib: fence devices' Pacemaker options, the fencing topology and the fencing
cluster properties (stonith-action, stonith-watchdog-timeout, stonith-max-attempts,
priority-fencing-delay, concurrent-fencing). Every result is validated by the schema."""

from __future__ import annotations

from havm.config.load import parse_config_text
from havm.importers.cib import import_cib

NODES = """<nodes><node id="1" uname="n1"><instance_attributes id="n1-a">
    <nvpair id="n1-rack" name="rack" value="r1"/></instance_attributes></node>
  <node id="2" uname="n2"><instance_attributes id="n2-a">
    <nvpair id="n2-rack" name="rack" value="r1"/></instance_attributes></node>
  <node id="3" uname="n3"/></nodes>"""
DEVICES = """<primitive id="ipmi" class="stonith" type="fence_ipmilan"/>
  <primitive id="pdu1" class="stonith" type="fence_apc_snmp"/>
  <primitive id="pdu2" class="stonith" type="fence_apc_snmp"/>
  <primitive id="ssh" class="stonith" type="external/ssh"/>
  <primitive id="only-n1" class="stonith" type="fence_virsh"><instance_attributes id="o-ia">
    <nvpair id="o-h" name="pcmk_host_list" value="n1"/></instance_attributes></primitive>"""


def cib(topology: str = "", props: str = "", resources: str = DEVICES) -> str:
    return f"""<cib validate-with="pacemaker-3.9"><configuration><crm_config>
  <cluster_property_set id="o">{props}</cluster_property_set></crm_config>
  {NODES}<resources>{resources}</resources><constraints/>
  <fencing-topology>{topology}</fencing-topology></configuration></cib>"""


def imported(xml: str):
    result = import_cib([(xml, "f.xml")])
    return result, parse_config_text(result.text, "x.yaml").config  # must validate, every time


def lines(result, level: str, fragment: str) -> list[str]:
    return [str(i) for i in result.report.of_level(level) if fragment in str(i)]


def level(target: str, index: int, devices: str, lid: str = "") -> str:
    return f'<fencing-level id="{lid or f"l-{target}-{index}-{devices}"}" target="{target}" index="{index}" ' \
           f'devices="{devices}"/>'


# --- topology -------------------------------------------------------------------

def test_levels_per_target_in_index_order_and_all_devices_of_a_level() -> None:
    result, c = imported(cib(level("n1", 2, "ipmi") + level("n1", 1, "pdu1,pdu2") + level("n2", 1, "ipmi")))
    assert c.fencing.levels == {"n1": [["pdu1", "pdu2"], ["ipmi"]], "n2": [["ipmi"]]}
    # the fencer's semantics: n1 tries both PDUs (both must succeed), then the BMC
    assert [[d.id for d in lv] for lv in c.fencing.levels_for("n1")] == [["pdu1", "pdu2"], ["ipmi"]]
    assert c.fencing.levels_for("n3")  # no topology: every device that can fence it
    assert not lines(result, "dropped", "fencing-level")


def test_levels_with_the_same_target_and_index_are_one_level() -> None:
    _, c = imported(cib(level("n1", 1, "pdu1") + level("n1", 1, "pdu2")))
    assert c.fencing.levels == {"n1": [["pdu1", "pdu2"]]}


def test_target_pattern_and_attribute_expand_to_the_matching_nodes() -> None:
    topology = ('<fencing-level id="p" target-pattern="n[23]" index="1" devices="pdu1"/>'
                '<fencing-level id="a" target-attribute="rack" target-value="r1" index="1" devices="pdu2"/>'
                + level("n2", 1, "ipmi"))
    result, c = imported(cib(topology))
    # n1: the attribute; n3: the pattern; n2 matches both, but has a level of its own, which wins
    assert c.fencing.levels == {"n1": [["pdu2"]], "n2": [["ipmi"]], "n3": [["pdu1"]]}
    assert lines(result, "info", "a node added later is not covered")
    assert lines(result, "info", "also matches node 'n2'")


def test_a_node_matching_two_pattern_targets_is_reported_not_guessed() -> None:
    topology = ('<fencing-level id="p1" target-pattern="^n" index="1" devices="pdu1"/>'
                '<fencing-level id="p2" target-pattern="3$" index="1" devices="pdu2"/>')
    result, c = imported(cib(topology))
    assert c.fencing.levels == {"n1": [["pdu1"]], "n2": [["pdu1"]]}
    [line] = lines(result, "dropped", "matches several topology targets")
    assert "'n3'" in line and "fencing.levels.n3" in line and "f.xml:" in line


def test_a_level_that_cannot_be_carried_whole_is_dropped_for_that_node() -> None:
    topology = (level("n1", 1, "ipmi,ssh") + level("n1", 2, "pdu1")  # ssh was not imported
                + level("n2", 1, "only-n1") + level("n2", 2, "nosuch") + level("n3", 1, "watchdog"))
    result, c = imported(cib(topology))
    assert c.fencing.levels == {"n1": [["pdu1"]]}  # never ["ipmi"] alone: "ipmi and ssh" is not "ipmi"
    dropped = "\n".join(lines(result, "dropped", "fencing-level"))
    assert "level 1 for node 'n1'" in dropped and "'ssh' was not imported" in dropped
    assert "'only-n1' cannot fence 'n2'" in dropped
    assert "'nosuch' is not a fence device" in dropped
    assert "watchdog self-fences" in dropped
    # n2 and n3 keep no level: havm falls back to every device, and says so
    assert len(lines(result, "dropped", "none of the levels for node 'n2'")) == 1
    assert len(lines(result, "dropped", "none of the levels for node 'n3'")) == 1


def test_unusable_topology_entries_are_reported() -> None:
    topology = (level("remote-1", 1, "ipmi") + level("n1", 0, "ipmi") + level("n1", 10, "ipmi")
                + '<fencing-level id="x" index="1" devices="ipmi"/>'
                + '<fencing-level id="y" target="n2" index="1" devices=""/>'
                + '<fencing-level id="z" target-pattern="nomatch" index="1" devices="ipmi"/>'
                + '<fencing-level id="bad" target-pattern="n[" index="1" devices="ipmi"/>')
    result, c = imported(cib(topology))
    assert c.fencing.levels == {}
    dropped = "\n".join(lines(result, "dropped", "fencing-level"))
    for fragment in ("names no imported node", "index '0'", "index '10'", "no target", "names no devices",
                     "matches none of the imported nodes", "not a regular expression"):
        assert fragment in dropped, fragment


def test_renamed_device_ids_are_followed_into_levels() -> None:
    resources = '<primitive id="_odd" class="stonith" type="fence_ipmilan"/>'
    _, c = imported(cib(level("n1", 1, "_odd"), resources=resources))
    [dev] = c.fencing.devices
    assert c.fencing.levels == {"n1": [[dev.id]]} and dev.id != "_odd"


# --- fence device options ---------------------------------------------------------

def device(params: str, props: str = "") -> tuple:
    xml = cib(props=props, resources=f'<primitive id="d" class="stonith" type="fence_ipmilan">'
                                     f'<instance_attributes id="d-ia">{params}</instance_attributes></primitive>')
    result, c = imported(xml)
    return result, c.fencing.devices[0]


def nv(name: str, value: str) -> str:
    return f'<nvpair id="d-{name}" name="{name}" value="{value}"/>'


def test_an_action_parameter_is_read_as_pacemakers_fencer_does() -> None:
    for value, level_ in (("reboot", "dropped"), ("off", "info"), ("on", "dropped")):
        result, d = device(nv("action", value) + nv("ip", "10.0.0.9"))
        assert d.params == {"ip": "10.0.0.9"}  # never passed on: havm gives the action
        assert lines(result, level_, f"action={value}"), value
    result, _ = device(nv("action", "on"))
    assert "'on' action instead of off" in lines(result, "dropped", "action=on")[0]
    result, d = device(nv("pcmk_reboot_action", "off") + nv("pcmk_off_action", "poweroff"))
    assert d.params == {} and lines(result, "info", "pcmk_reboot_action=off")
    assert "'poweroff' action" in lines(result, "dropped", "pcmk_off_action=poweroff")[0]


def test_off_timeout_and_retries_win_over_reboot_ones() -> None:
    result, d = device(nv("pcmk_reboot_timeout", "90s") + nv("pcmk_off_timeout", "40s")
                       + nv("pcmk_reboot_retries", "5") + nv("pcmk_off_retries", "3"))
    assert (d.timeout, d.retries) == (40, 2)  # Pacemaker counts attempts, havm retries after the first
    assert lines(result, "dropped", "pcmk_reboot_timeout=90s") and lines(result, "dropped", "pcmk_reboot_retries=5")
    _, d = device(nv("pcmk_reboot_timeout", "90s") + nv("pcmk_reboot_retries", "1"))
    assert (d.timeout, d.retries) == (90, 0)
    result, d = device(nv("pcmk_off_retries", "50"))
    assert d.retries == 10 and lines(result, "dropped", "at most 10 retries")


def test_delay_base_per_node_and_delay_max_reported() -> None:
    result, d = device(nv("pcmk_delay_base", "n1:5s;n2:2 n9:1s") + nv("pcmk_delay_max", "20s"))
    assert d.delay == {"n1": 5, "n2": 2}
    assert lines(result, "dropped", "n9") and lines(result, "dropped", "no random fencing delay")
    _, d = device(nv("pcmk_delay_base", "3s"))
    assert d.delay == 3


def test_host_list_with_host_map_keeps_the_listed_nodes() -> None:
    _, d = device(nv("pcmk_host_list", "n1 n2") + nv("pcmk_host_map", "n1:plug3;remote-x:n2"))
    # the map only renames: a listed node it does not name is its own plug (Pacemaker's fencer)
    assert (d.host_map, d.nodes) == ({"n1": "plug3", "n2": "n2"}, None)


# --- fencing cluster properties ----------------------------------------------------

def prop(name: str, value: str, pid: str = "") -> str:
    return f'<nvpair id="{pid or "o-" + name}" name="{name}" value="{value}"/>'


def test_fencing_properties_are_reported_with_their_reason() -> None:
    props = (prop("stonith-action", "reboot") + prop("concurrent-fencing", "false")
             + prop("priority-fencing-delay", "15") + prop("stonith-max-attempts", "3"))
    result, c = imported(cib(props=props))
    assert "never reboots" in lines(result, "dropped", "stonith-action=reboot")[0]
    assert "in parallel" in lines(result, "dropped", "concurrent-fencing=false")[0]
    assert "fencing.devices[].delay" in lines(result, "dropped", "priority-fencing-delay=15")[0]
    assert "never stops retrying" in lines(result, "dropped", "stonith-max-attempts=3")[0]
    assert all(line.startswith("f.xml:") for line in lines(result, "dropped", "<nvpair id=\"o-"))
    assert c.watchdog.backend == "none" and c.properties.fencing_watchdog_timeout is None
    result, _ = imported(cib(props=prop("fencing-action", "off") + prop("concurrent-fencing", "true")))
    assert lines(result, "info", "fencing-action=off") and lines(result, "info", "concurrent-fencing=true")


def test_stonith_watchdog_timeout_becomes_a_watchdog_and_its_wait() -> None:
    result, c = imported(cib(props=prop("stonith-watchdog-timeout", "20s")))
    assert (c.watchdog.backend, c.watchdog.timeout) == ("dev", 5)
    assert c.properties.fencing_watchdog_timeout == 20
    assert "SBD_WATCHDOG_TIMEOUT" in lines(result, "warning", "stonith-watchdog-timeout")[0]


def test_negative_stonith_watchdog_timeout_leaves_havms_default() -> None:
    result, c = imported(cib(props=prop("stonith-watchdog-timeout", "-1")))
    assert c.watchdog.backend == "dev" and c.properties.fencing_watchdog_timeout is None
    warnings = "\n".join(lines(result, "warning", "stonith-watchdog-timeout=-1"))
    assert "twice SBD_WATCHDOG_TIMEOUT" in warnings and "cannot be known from the CIB" in warnings


def test_stonith_watchdog_timeout_havm_cannot_take_is_reported() -> None:
    result, c = imported(cib(props=prop("stonith-watchdog-timeout", "6s")))
    assert c.watchdog.backend == "dev" and c.properties.fencing_watchdog_timeout is None
    assert lines(result, "dropped", "fencing_watchdog_timeout > watchdog.timeout")
    result, c = imported(cib(props=prop("stonith-watchdog-timeout", "20s") + prop("no-quorum-policy", "freeze")))
    assert c.watchdog.backend == "none" and c.properties.no_quorum_policy == "freeze"
    assert lines(result, "dropped", "no_quorum_policy 'freeze'")
    result, c = imported(cib(props=prop("stonith-watchdog-timeout", "0")))
    assert c.watchdog.backend == "none" and lines(result, "info", "disabled")
