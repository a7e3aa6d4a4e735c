"""Debian's fence-agents, run unmodified through their stdin protocol.

Each action is one process reading ``key=value`` lines on stdin (the
device's ``params``, then ``nodename=`` and ``plug=`` for the target, then
``action=``), as Pacemaker's fencer runs them. Exit statuses are the
fence-agents API's: 0 success; for ``status`` 0 = on, 2 = off, 1 = error.

Fencing is ``action=off`` and then, unless the device says ``confirm:
exit``, ``action=status`` which must answer 2 (off): only then is the node
proven off. (Agents built on fencing.py, fence_ipmilan among them, already
wait after acting and re-check the power status before exiting 0; the
separate status run makes the proof explicit and also covers agents that do
not.) Both runs share the device's ``timeout``.
"""

from __future__ import annotations

import os
import time

from havm.config.fencing import FenceDevice as DeviceConfig
from havm.config.fencing import find_agent
from havm.fencing.device import FenceDevice
from havm.fencing.records import DeviceResult, tail
from havm.fencing.runner import AgentRunner

STATUS_ON, STATUS_FAILED, STATUS_OFF = 0, 1, 2
#: the target is given by these keys unless the device's params name it themselves
TARGET_KEYS = ("plug", "port")


def agent_stdin(cfg: DeviceConfig, node: str, action: str) -> str:
    """The stdin lines for one action: params unmodified, then the target, then the action."""
    lines = [f"{k}={v}" for k, v in cfg.params.items()]
    lines.append(f"nodename={node}")
    if not any(k in cfg.params for k in TARGET_KEYS):
        lines.append(f"plug={cfg.plug_for(node)}")
    lines.append(f"action={action}")  # last: it wins over anything above
    return "\n".join(lines) + "\n"


class FenceAgent(FenceDevice):
    def __init__(self, cfg: DeviceConfig, runner: AgentRunner) -> None:
        super().__init__(cfg)
        self.runner = runner

    async def off(self, node: str, timeout: float) -> DeviceResult:
        exe = find_agent(self.cfg.agent)
        if exe is None:
            return DeviceResult(False, error=f"fence agent {self.cfg.agent} is not installed on this node")
        name = os.path.basename(exe)
        deadline = time.monotonic() + timeout
        off = await self.runner.run([exe], agent_stdin(self.cfg, node, "off"), timeout)
        already = "already off" in off.stdout.lower()
        if off.rc != 0:
            why = off.error or f"{name} action=off exited {off.rc}"
            return DeviceResult(False, rc=off.rc, output=tail(off.output), error=why)
        if self.cfg.confirm == "exit":
            return DeviceResult(True, rc=0, output=tail(off.output), already_off=already)
        left = deadline - time.monotonic()
        if left <= 0:
            return DeviceResult(False, rc=0, output=tail(off.output),
                                error=f"no time left within {timeout:g}s to confirm with action=status")
        st = await self.runner.run([exe], agent_stdin(self.cfg, node, "status"), left)
        output = tail(off.output + "\n" + st.output)
        if st.rc == STATUS_OFF:
            return DeviceResult(True, rc=0, output=output, already_off=already)
        if st.rc == STATUS_ON:
            why = f"{name} action=off exited 0 but action=status still reports the node on"
        else:
            why = st.error or f"{name} action=status exited {st.rc}: the node is not confirmed off"
        return DeviceResult(False, rc=0, output=output, error=why)
