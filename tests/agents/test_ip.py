"""The ip agent: parameter checks (pure) and, as root, real addresses inside two
network namespaces joined by a veth pair: start/stop/monitor, idempotency, the
default interface, labels, and gratuitous ARP learnt by the neighbour."""

from __future__ import annotations

import ipaddress
import json
import os
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from havm.agents.base import OCF
from havm.agents.ip import IpAgent, ParamError, arp_frames, full_label, parse_params
from tests.agents.nshelp import need_root_and_netns, netns_prefix, run_agent, sh

CLS = "havm.agents.ip:IpAgent"


def test_parse_params_accepts_cidr_and_masks():
    assert parse_params({"ip": "10.1.2.3/24"}).prefixlen == 24
    assert parse_params({"ip": "10.1.2.3", "cidr_netmask": "255.255.0.0"}).prefixlen == 16
    assert parse_params({"ip": "10.1.2.3", "cidr_netmask": 28}).prefixlen == 28
    assert parse_params({"ip": "10.1.2.3"}).prefixlen is None


@pytest.mark.parametrize("params, needle", [
    ({}, "'ip' is required"),
    ({"ip": "10.1.2.300"}, "not an IP address"),
    ({"ip": "fe80::1"}, "IPv6"),
    ({"ip": "127.0.0.5"}, "not a unicast host address"),
    ({"ip": "10.1.2.3/40"}, "outside 1..32"),
    ({"ip": "10.1.2.3", "cidr_netmask": "255.0.255.0"}, "'cidr_netmask'"),
    ({"ip": "10.1.2.3/24", "cidr_netmask": 16}, "contradicts"),
    ({"ip": "10.1.2.3", "nic": "a-very-long-interface-name"}, "'nic'"),
    ({"ip": "10.1.2.3", "arp_count": "many"}, "integers"),
])
def test_parse_params_errors_name_the_parameter(params, needle):
    with pytest.raises(ParamError, match=needle):
        parse_params(params)


def test_invalid_params_are_err_configured_for_every_action():
    agent = IpAgent("vip", {"ip": "not-an-ip"})
    for result in (agent.validate(), agent.start(), agent.stop(), agent.monitor()):
        assert result.rc == OCF.ERR_CONFIGURED and "'ip'" in result.output


def test_labels():
    assert full_label("eth0", "web") == "eth0:web"
    assert full_label("eth0", "eth0:web") == "eth0:web"
    assert full_label("eth0", None) is None
    with pytest.raises(ParamError, match="longer than 15"):
        full_label("eth0", "averyverylonglabel")


def test_gratuitous_arp_frames():
    mac = bytes.fromhex("020000000001")
    req, rep = arp_frames(mac, ipaddress.IPv4Address("10.9.8.7"))
    for frame, op in ((req, 1), (rep, 2)):
        assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
        htype, ptype, hlen, plen, got_op, sha, spa, _tha, tpa = struct.unpack("!HHBBH6s4s6s4s", frame[14:42])
        assert (htype, ptype, hlen, plen, got_op) == (1, 0x0800, 6, 4, op)
        assert sha == mac and spa == tpa == bytes([10, 9, 8, 7])  # gratuitous: sender ip == target ip


def test_meta_data_lists_params():
    root = ET.fromstring(IpAgent("vip", {}).meta_data())
    names = {p.get("name") for p in root.iter("parameter")}
    assert {"ip", "cidr_netmask", "nic", "label"} <= names


# -- real addresses in network namespaces --

SUBNET = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    """Namespaces a (veth va, SUBNET.1/24) and b (veth vb, SUBNET.2/24, accepts gratuitous ARP)."""
    need_root_and_netns()
    a, b = f"havm-ipa-{os.getpid()}", f"havm-ipb-{os.getpid()}"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b)
        sh("ip", "-n", a, "addr", "add", f"{SUBNET}.1/24", "dev", "va")
        sh("ip", "-n", b, "addr", "add", f"{SUBNET}.2/24", "dev", "vb")
        sh("ip", "-n", a, "link", "set", "va", "up")
        sh("ip", "-n", b, "link", "set", "vb", "up")
        sh("ip", "netns", "exec", b, "sysctl", "-qw", "net.ipv4.conf.vb.arp_accept=1")
        yield a, b
    finally:
        for ns in (a, b):
            sh("ip", "netns", "delete", ns, check=False)


def addrs(netns: str, dev: str) -> str:
    return sh("ip", "-n", netns, "-4", "-o", "addr", "show", "dev", dev)


@pytest.mark.lab
def test_start_monitor_stop_in_a_namespace(pair):
    a, b = pair
    ns = netns_prefix(a)
    vip = f"{SUBNET}.50"
    params = {"ip": vip, "label": "vip", "arp_interval_ms": 20}
    assert run_agent(ns, CLS, "vip", params, "monitor").rc == OCF.NOT_RUNNING
    assert run_agent(ns, CLS, "vip", params, "validate").ok

    started = run_agent(ns, CLS, "vip", params, "start")
    assert started.ok, started.output
    assert started.data["nic"] == "va" and started.data["prefixlen"] == 24  # found by subnet
    assert started.data["garp_frames"] == 6
    shown = addrs(a, "va")
    assert f"{vip}/24" in shown and "va:vip" in shown

    again = run_agent(ns, CLS, "vip", params, "start")  # idempotent
    assert again.ok and "already on va" in again.output
    assert addrs(a, "va").count(f"{vip}/") == 1
    assert run_agent(ns, CLS, "vip", params, "monitor").rc == OCF.SUCCESS

    # the neighbour learnt the address from the gratuitous ARP alone (b never asked)
    mac_a = sh("ip", "-n", a, "-o", "link", "show", "va").split("link/ether ")[1].split()[0]
    neigh = ""
    for _ in range(50):  # bounded: 1 s
        neigh = sh("ip", "-n", b, "neigh", "show", vip, "dev", "vb")
        if mac_a in neigh:
            break
        time.sleep(0.02)
    assert mac_a in neigh, neigh

    for _ in range(2):  # idempotent stop
        stopped = run_agent(ns, CLS, "vip", params, "stop")
        assert stopped.ok, stopped.output
    assert vip not in addrs(a, "va")
    assert run_agent(ns, CLS, "vip", params, "monitor").rc == OCF.NOT_RUNNING


@pytest.mark.lab
def test_explicit_nic_and_netmask_outside_every_subnet(pair):
    a, _ = pair
    ns = netns_prefix(a)
    params = {"ip": "192.0.2.77", "nic": "va", "cidr_netmask": "255.255.255.0", "arp_count": 1}
    assert run_agent(ns, CLS, "vip2", params, "start").ok
    assert "192.0.2.77/24" in addrs(a, "va")
    assert run_agent(ns, CLS, "vip2", params, "monitor").ok
    assert run_agent(ns, CLS, "vip2", params, "stop").ok
    assert "192.0.2.77" not in addrs(a, "va")


@pytest.mark.lab
def test_validate_reports_missing_interface_and_subnet(pair):
    a, _ = pair
    ns = netns_prefix(a)
    bad_nic = run_agent(ns, CLS, "v", {"ip": f"{SUBNET}.51", "nic": "eth9"}, "validate")
    assert bad_nic.rc == OCF.ERR_CONFIGURED and "no interface 'eth9'" in bad_nic.output and "va" in bad_nic.output
    no_subnet = run_agent(ns, CLS, "v", {"ip": "192.0.2.9"}, "validate")
    assert no_subnet.rc == OCF.ERR_CONFIGURED and "set parameter 'nic'" in no_subnet.output
    no_mask = run_agent(ns, CLS, "v", {"ip": "192.0.2.9", "nic": "va"}, "start")
    assert no_mask.rc == OCF.ERR_CONFIGURED and "cidr_netmask" in no_mask.output
    assert "192.0.2.9" not in addrs(a, "va")


@pytest.mark.lab
def test_monitor_reports_address_on_the_wrong_interface(pair):
    a, _ = pair
    ns = netns_prefix(a)
    sh("ip", "-n", a, "addr", "add", "192.0.2.88/32", "dev", "lo")
    r = run_agent(ns, CLS, "v", {"ip": "192.0.2.88", "nic": "va", "cidr_netmask": 32}, "monitor")
    assert r.rc == OCF.ERR_GENERIC and "not va" in r.output
    assert run_agent(ns, CLS, "v", {"ip": "192.0.2.88", "nic": "va"}, "stop").ok  # removed wherever it is
    assert "192.0.2.88" not in sh("ip", "-n", a, "-4", "-o", "addr")


RUN_EXECUTOR = """
import asyncio, json, sys
from havm.clock import SystemClock
from havm.executor.executor import Executor
from havm.executor.records import ActionRequest
params = json.loads(sys.argv[1])
async def go():
    ex = Executor("n1", SystemClock())
    try:
        for action in sys.argv[2:]:
            r = await ex.execute(ActionRequest("vip", "havm:ip", action, params=params, timeout=30))
            print("RECORD " + json.dumps({"action": action, "rc": r.rc, "output": r.output}), flush=True)
    finally:
        await ex.close()
asyncio.run(go())
"""


@pytest.mark.lab
def test_havm_ip_through_the_executor(pair):
    a, _ = pair
    vip = f"{SUBNET}.60"
    out = subprocess.run(["ip", "netns", "exec", a, sys.executable, "-c", RUN_EXECUTOR,
                          json.dumps({"ip": vip, "arp_interval_ms": 10}),
                          "monitor", "start", "monitor", "validate", "meta_data"],
                         capture_output=True, text=True, timeout=120)
    recs = [json.loads(ln[len("RECORD "):]) for ln in out.stdout.splitlines() if ln.startswith("RECORD ")]
    assert [r["rc"] for r in recs] == [7, 0, 0, 0, 0], out.stderr[-2000:] + str(recs)
    assert f"{vip}/24" in addrs(a, "va")
    assert "<resource-agent name=\"ip\"" in recs[4]["output"]
    stop = subprocess.run(["ip", "netns", "exec", a, sys.executable, "-c", RUN_EXECUTOR,
                           json.dumps({"ip": vip}), "stop", "monitor"], capture_output=True, text=True, timeout=120)
    recs = [json.loads(ln[len("RECORD "):]) for ln in stop.stdout.splitlines() if ln.startswith("RECORD ")]
    assert [r["rc"] for r in recs] == [0, 7]
    assert vip not in addrs(a, "va")
