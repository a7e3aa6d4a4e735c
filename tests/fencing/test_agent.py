"""fence-agents through their stdin protocol: what the agent is sent, how its
exit statuses are read (off, then status must say off), and the process runner's
bounds (a hung agent and its children are killed at the timeout)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from havm.config.fencing import FenceDevice as DeviceConfig
from havm.fencing.agent import FenceAgent, agent_stdin
from havm.fencing.runner import ProcessRunner, RunResult
from tests.fencing.fakes import ScriptedRunner


def dev(**kw) -> DeviceConfig:
    return DeviceConfig.model_validate({"id": "d", "agent": "fence_ipmilan", **kw})


def test_stdin_carries_params_unmodified_then_target_then_action():
    cfg = dev(params={"ip": "10.0.0.9", "password": "s=cret", "lanplus": True})
    assert agent_stdin(cfg, "n1", "off") == (
        "ip=10.0.0.9\npassword=s=cret\nlanplus=1\nnodename=n1\nplug=n1\naction=off\n")
    mapped = dev(host_map={"n1": "port-3"})
    assert "plug=port-3\n" in agent_stdin(mapped, "n1", "status")
    fixed = dev(params={"plug": "vm-a"})
    assert agent_stdin(fixed, "n1", "off").count("plug=") == 1


def outcome(answers: dict[str, RunResult], **kw):
    runner = ScriptedRunner(answers)
    return asyncio.run(FenceAgent(dev(**kw), runner).off("n1", 10.0)), runner


def rr(rc, out="", err=""):
    return RunResult(rc, out, err, 0.1)


def test_off_then_status_off_is_confirmed():
    res, runner = outcome({"off": rr(0, "Success: Powered OFF"), "status": rr(2, "Status: OFF")})
    assert res.ok and not res.already_off
    assert [s.splitlines()[-1] for s in runner.stdins] == ["action=off", "action=status"]


def test_already_off_is_reported():
    res, _ = outcome({"off": rr(0, "Success: Already OFF"), "status": rr(2, "Status: OFF")})
    assert res.ok and res.already_off


@pytest.mark.parametrize("answers,why", [
    ({"off": rr(1, err="Failed: Unable to obtain correct plug status"), "status": rr(2)}, "action=off exited 1"),
    ({"off": rr(0), "status": rr(0, "Status: ON")}, "still reports the node on"),
    ({"off": rr(0), "status": rr(1)}, "action=status exited 1"),
    ({"off": RunResult(None, "", "", 10.0, timed_out=True, error="fence_ipmilan did not finish within 10s"),
      "status": rr(2)}, "did not finish within 10s"),
])
def test_anything_but_a_confirmed_off_fails(answers, why):
    res, _ = outcome(answers)
    assert not res.ok and why in res.error


def test_confirm_exit_trusts_the_off_action_alone():
    res, runner = outcome({"off": rr(0, "Success: Powered OFF")}, confirm="exit")
    assert res.ok and len(runner.stdins) == 1


def test_an_agent_not_installed_fails_at_fence_time():
    res = asyncio.run(FenceAgent(DeviceConfig(id="d", agent="fence_not_here"), ScriptedRunner({})).off("n1", 1))
    assert not res.ok and "not installed on this node" in res.error


def test_runner_passes_stdin_and_reads_exit_status(tmp_path):
    script = tmp_path / "fence_echo"
    script.write_text("#!/bin/sh\ncat\necho oops >&2\nexit 2\n")
    script.chmod(0o755)
    res = asyncio.run(ProcessRunner().run([str(script)], "action=status\n", 10))
    assert res.rc == 2 and res.stdout == "action=status\n" and res.stderr.strip() == "oops"


def test_runner_kills_a_hung_agent_and_its_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "fence_hang"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}\nwait\n")
    script.chmod(0o755)

    async def run_while_loop_lives():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.05)

        t = asyncio.get_running_loop().create_task(ticker())
        res = await ProcessRunner().run([str(script)], "", 1.0)
        t.cancel()
        return res, ticks

    res, ticks = asyncio.run(run_while_loop_lives())
    assert res.timed_out and res.rc is None and "did not finish within 1s" in res.error
    assert ticks > 3  # the event loop kept running while the agent hung
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the agent's child survived the timeout"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def test_runner_reports_a_missing_executable():
    res = asyncio.run(ProcessRunner().run([os.path.join("/nonexistent", "fence_x")], "", 1))
    assert res.rc is None and "cannot run" in res.error
