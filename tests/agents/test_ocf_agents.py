"""Debian's resource-agents, unmodified, through havm's executor.

ocf:heartbeat:Dummy runs here (its state file in tmp_path); ocf:heartbeat:IPaddr2
runs inside a network namespace created for the test: each action is one
executor call in a small Python program started under ``ip netns exec``, so the
script, its ``ip`` commands and its send_arp all act on the namespace only.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from havm.agents.base import OCF
from havm.clock import SystemClock
from havm.executor.executor import Executor
from havm.executor.records import ActionRecord, ActionRequest
from tests.agents.nshelp import need_root_and_netns, sh

OCF_DIR = "/usr/lib/ocf/resource.d/heartbeat"
pytestmark = pytest.mark.skipif(not os.path.exists(f"{OCF_DIR}/Dummy"),
                                reason="Debian package resource-agents not installed")


def execute(reqs: list[ActionRequest]) -> list[ActionRecord]:
    async def go() -> list[ActionRecord]:
        ex = Executor("n1", SystemClock())
        try:
            return [await ex.execute(r) for r in reqs]
        finally:
            await ex.close()

    return asyncio.run(go())


def test_dummy_every_action_with_its_params(tmp_path, monkeypatch):
    monkeypatch.setenv("HA_RSCTMP", str(tmp_path))  # where Dummy's default state file goes
    state = tmp_path / "given.state"
    p = {"state": str(state)}
    names = ["meta_data", "validate", "monitor", "start", "monitor", "start", "migrate_to", "monitor",
             "migrate_from", "stop", "stop", "monitor"]
    args = {"migrate_to": {"target": "n2"}, "migrate_from": {"source": "n1"}}
    recs = execute([ActionRequest("d1", "ocf:heartbeat:Dummy", a, params=p, args=args.get(a, {}))
                    for a in names])
    rcs = [r.rc for r in recs]
    assert rcs == [0, 0, 7, 0, 0, 0, 0, 7, 0, 0, 0, 7], list(zip(names, rcs, strict=True))
    meta = ET.fromstring(recs[0].output)
    assert meta.get("name") == "Dummy"
    assert {"state", "fake"} <= {e.get("name") for e in meta.iter("parameter")}
    # OCF_RESKEY_CRM_meta_migrate_target/source reached the script (it logs them)
    assert "Migrating d1 to n2" in recs[6].output and "Migrating d1 from n1" in recs[8].output
    assert not state.exists()

    # OCF_RESKEY_state came from the params: without it, OCF_RESOURCE_INSTANCE names the default file
    recs = execute([ActionRequest("d2", "ocf:heartbeat:Dummy", "start")])
    assert recs[0].ok and (tmp_path / "Dummy-d2.state").exists()
    assert execute([ActionRequest("d2", "ocf:heartbeat:Dummy", "stop")])[0].ok
    assert not (tmp_path / "Dummy-d2.state").exists()


def test_dummy_validate_failure_and_unknown_agent(tmp_path):
    bad = execute([ActionRequest("d3", "ocf:heartbeat:Dummy", "validate",
                                 params={"state": "/nonexistent/havm/dir/d3.state"})])[0]
    assert bad.rc == OCF.ERR_ARGS and "is not writable" in bad.output
    missing = execute([ActionRequest("d4", "ocf:heartbeat:NoSuchAgent", "monitor")])[0]
    assert missing.rc == OCF.ERR_INSTALLED and "is not installed" in missing.output


# -- IPaddr2 inside a network namespace --

RUN_IN_NS = """
import asyncio, json, sys
from havm.clock import SystemClock
from havm.executor.executor import Executor
from havm.executor.records import ActionRequest
rsc, agent, action, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
async def go():
    ex = Executor("n1", SystemClock())
    try:
        r = await ex.execute(ActionRequest(rsc, agent, action, params=params, timeout=30))
        print("RECORD " + json.dumps({"rc": r.rc, "output": r.output}))
    finally:
        await ex.close()
asyncio.run(go())
"""

SUBNET = f"10.{150 + os.getpid() % 50}.{os.getpid() % 250}"


@pytest.fixture
def netns(tmp_path) -> Iterator[str]:
    need_root_and_netns()
    if not os.path.exists(f"{OCF_DIR}/IPaddr2"):
        pytest.skip("ocf:heartbeat:IPaddr2 not installed")
    ns = f"havm-ocf-{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        sh("ip", "-n", ns, "addr", "add", f"{SUBNET}.1/24", "dev", "eth0")
        for dev in ("lo", "eth0", "peer0"):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        yield ns
    finally:
        # IPaddr2 leaves send_arp running in the background for a while: end it by pid
        for pid in sh("ip", "netns", "pids", ns, check=False).split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        sh("ip", "netns", "delete", ns, check=False)


def in_ns(ns: str, rsc: str, action: str, params: dict) -> tuple[int, str]:
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", RUN_IN_NS, rsc,
                          "ocf:heartbeat:IPaddr2", action, json.dumps(params)],
                         capture_output=True, text=True, timeout=60, cwd=os.getcwd())
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RECORD ")]
    assert lines, f"executor child failed ({out.returncode}): {out.stderr[-2000:]}"
    rec = json.loads(lines[-1][len("RECORD "):])
    return rec["rc"], rec["output"]


def addresses(ns: str) -> str:
    return sh("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0")


@pytest.mark.lab
def test_ipaddr2_in_a_namespace(netns):
    vip = f"{SUBNET}.80"
    params = {"ip": vip, "cidr_netmask": 24, "nic": "eth0", "iflabel": "vip"}
    assert in_ns(netns, "vip", "monitor", params)[0] == OCF.NOT_RUNNING
    rc, out = in_ns(netns, "vip", "validate", params)
    assert rc == OCF.SUCCESS, out
    rc, out = in_ns(netns, "vip", "start", params)
    assert rc == OCF.SUCCESS, out
    shown = addresses(netns)
    assert f"{vip}/24" in shown and "eth0:vip" in shown  # OCF_RESKEY_ip/cidr_netmask/nic/iflabel used
    assert in_ns(netns, "vip", "monitor", params)[0] == OCF.SUCCESS
    assert in_ns(netns, "vip", "start", params)[0] == OCF.SUCCESS  # idempotent
    assert addresses(netns).count(f"{vip}/") == 1
    for _ in range(2):
        rc, out = in_ns(netns, "vip", "stop", params)
        assert rc == OCF.SUCCESS, out
    assert vip not in addresses(netns)
    assert in_ns(netns, "vip", "monitor", params)[0] == OCF.NOT_RUNNING
    # the address exists only in the namespace: the host never saw it
    assert vip not in sh("ip", "-4", "-o", "addr")


@pytest.mark.lab
def test_ipaddr2_reports_bad_params(netns):
    rc, out = in_ns(netns, "bad", "validate", {"ip": "10.1.2.300", "nic": "eth0"})
    assert rc == OCF.ERR_CONFIGURED and "10.1.2.300" in out
    rc, out = in_ns(netns, "bad", "start", {"ip": f"{SUBNET}.81", "cidr_netmask": 24, "nic": "eth9"})
    assert rc in (OCF.ERR_CONFIGURED, OCF.ERR_GENERIC) and "eth9" in out
    assert f"{SUBNET}.81" not in addresses(netns)


@pytest.mark.lab
def test_ipaddr2_meta_data_through_the_executor(netns):
    rc, out = in_ns(netns, "vip", "meta_data", {})
    assert rc == OCF.SUCCESS and out.rstrip().endswith("</resource-agent>")


@pytest.mark.lab
def test_ipaddr2_meta_data_arrives_whole(netns):
    rc, out = in_ns(netns, "vip", "meta_data", {})
    meta = ET.fromstring(out)
    assert meta.get("name") == "IPaddr2"
    assert {"ip", "nic", "cidr_netmask", "iflabel"} <= {e.get("name") for e in meta.iter("parameter")}
