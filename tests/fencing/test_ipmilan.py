"""Debian's fence_ipmilan, unmodified, against a real openipmi ipmi_sim on loopback,
through havm's FenceAgent (stdin protocol, off then status): a power status/off/on
cycle, idempotence, and a wrong password failing. The simulated chassis here is a
power file; the lab tests use the lab's own chassis (a node's processes)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest

from havm.config.fencing import FenceDevice as DeviceConfig
from havm.config.fencing import find_agent
from havm.fencing.agent import FenceAgent, agent_stdin
from havm.fencing.runner import ProcessRunner
from havm.lab import bmc, process
from havm.lab.state import BmcRecord

pytestmark = [pytest.mark.slow]

if bmc.ipmi_sim_available() or find_agent("fence_ipmilan") is None:
    pytest.skip("needs openipmi (ipmi_sim), ipmitool and fence-agents (fence_ipmilan)", allow_module_level=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sim(tmp_path: Path):
    power = tmp_path / "power"
    power.write_text("1")
    chassis = tmp_path / "chassis.sh"
    chassis.write_text(f"""#!/bin/sh
case "$1 $2" in
  "get power") echo "power:$(cat {power})" ;;
  "set power") echo "$3" > {power} ;;
esac
""")
    chassis.chmod(0o755)
    b = BmcRecord(address="127.0.0.1", port=free_udp_port(), username="admin", password="s3cret",
                  dir=str(tmp_path / "bmc"))
    bmc.start("test", b, [str(chassis)])
    try:
        yield b, power
    finally:
        process.signal_pid(b.pid, 9, b.pid_start)
        process.wait_gone([b.pid] if b.pid else [], 5)


def device(b: BmcRecord, password: str | None = None) -> DeviceConfig:
    return DeviceConfig.model_validate({
        "id": "bmc", "agent": "fence_ipmilan", "timeout": 60,
        "params": {"ip": b.address, "ipport": b.port, "username": b.username,
                   "password": password or b.password, "lanplus": 0}})


def agent_action(cfg: DeviceConfig, action: str) -> int:
    exe = find_agent("fence_ipmilan")
    assert exe
    out = subprocess.run([exe], input=agent_stdin(cfg, "n1", action), capture_output=True, text=True, timeout=60)
    return out.returncode


def test_status_off_on_cycle_through_fence_ipmilan(sim):
    b, power = sim
    cfg = device(b)
    assert agent_action(cfg, "status") == 0  # on
    res = asyncio.run(FenceAgent(cfg, ProcessRunner()).off("n1", 60))
    assert res.ok and not res.already_off, res
    assert power.read_text().strip() == "0"
    assert agent_action(cfg, "status") == 2  # off
    again = asyncio.run(FenceAgent(cfg, ProcessRunner()).off("n1", 60))
    assert again.ok and again.already_off
    assert agent_action(cfg, "on") == 0
    assert power.read_text().strip() == "1"
    assert bmc.power_status_over_ipmi(b) is True


def test_a_wrong_password_fails_and_changes_nothing(sim):
    b, power = sim
    res = asyncio.run(FenceAgent(device(b, password="wrong"), ProcessRunner()).off("n1", 60))
    assert not res.ok and res.rc == 1 and "action=off exited 1" in res.error
    assert power.read_text().strip() == "1"


def test_a_refusing_chassis_is_never_taken_as_off(sim, tmp_path):
    b, power = sim
    (tmp_path / "chassis.sh").write_text("#!/bin/sh\n[ \"$1\" = get ] && echo power:1\n[ \"$1\" = set ] && exit 1\n"
                                         "exit 0\n")
    cfg = device(b).model_copy(update={"params": {**device(b).params, "power_timeout": "3"}})
    res = asyncio.run(FenceAgent(cfg, ProcessRunner()).off("n1", 60))
    assert not res.ok and res.rc == 1, res  # fence_ipmilan: timed out waiting to power off
    assert power.read_text().strip() == "1"
