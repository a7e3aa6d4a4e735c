"""Fence devices: what powers a node off, and proves it.

The guarantee every device gives: ``off(node)`` returns a result with
``ok=True`` only when the node is confirmed off (its power off, its
processes gone). A device that cannot confirm returns ``ok=False`` with the
reason; the policy (``havm.fencing.policy``) then tries again or the next
level, and the controller never recovers the node's resources meanwhile.

Devices plug in by the config's ``agent``: ``lab`` is the lab's power switch
(``LabPowerSwitch``), any ``fence_*`` name a fence-agent run unmodified
(``havm.fencing.agent.FenceAgent``).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from havm.config.fencing import LAB_AGENT
from havm.config.fencing import FenceDevice as DeviceConfig
from havm.errors import HavmError
from havm.fencing.records import DeviceResult
from havm.fencing.runner import AgentRunner, ProcessRunner

log = logging.getLogger("havm.fencing")


class FenceDevice(ABC):
    def __init__(self, cfg: DeviceConfig) -> None:
        self.cfg = cfg

    def can_fence(self, node: str) -> bool:
        return self.cfg.can_fence(node)

    @abstractmethod
    async def off(self, node: str, timeout: float) -> DeviceResult:
        """Power ``node`` off within ``timeout`` seconds; ``ok`` only if confirmed off.
        Never raises for a device failure: the result says why."""


class LabPowerSwitch(FenceDevice):
    """The lab's power switch: what ``havm lab kill NODE`` does (SIGKILL to every
    process of the node, daemon and guests, re-listed until none is left), run in
    a worker thread of the daemon. Confirmed off when no process of the node is
    left. Params: ``lab_dir``."""

    async def off(self, node: str, timeout: float) -> DeviceResult:
        lab_dir = str(self.cfg.params.get("lab_dir", ""))
        if not lab_dir:
            return DeviceResult(False, error="parameter lab_dir is missing")
        from havm.lab.chaos.fencehook import fence_override
        from havm.lab.control import kill_node

        # the fault campaign's hook (havm lab chaos): a switch that fails, is slow, or (unsafe, test only) lies
        if (hook := fence_override(lab_dir, node)) is not None:
            await asyncio.sleep(min(hook.delay, timeout))
            if hook.mode == "fail":
                return DeviceResult(False, error="the power switch does not answer (havm lab chaos: fence-fail)")
            if hook.mode == "lie":
                log.error("UNSAFE TEST HOOK (havm lab chaos --unsafe-fake-fencing): %s reported off but NOT "
                          "powered off", node)
                return DeviceResult(True, rc=0, output="UNSAFE: reported off without powering off")

        try:
            result = await asyncio.wait_for(asyncio.to_thread(kill_node, lab_dir, node), timeout)
        except TimeoutError:
            return DeviceResult(False, error=f"powering {node} off did not finish within {timeout:g}s")
        except HavmError as e:  # LabError: processes survived, no such lab or node
            return DeviceResult(False, rc=e.exit_status, error=f"powering {node} off failed: {e}")
        killed = result.get("killed", [])
        return DeviceResult(True, rc=0, output=f"killed {len(killed)} process(es)", already_off=not killed)


def make_device(cfg: DeviceConfig, runner: AgentRunner | None = None) -> FenceDevice:
    """The device for ``cfg`` (``runner`` runs fence-agents; a fake in unit tests)."""
    if cfg.agent == LAB_AGENT:
        return LabPowerSwitch(cfg)
    from havm.fencing.agent import FenceAgent

    return FenceAgent(cfg, runner or ProcessRunner())
