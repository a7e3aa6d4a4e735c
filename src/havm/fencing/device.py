"""Fence devices: what powers a node off, and proves it.

The guarantee every device gives: ``fence(node)`` returns True only when the
node is confirmed off (its processes gone, its power off). A device that
cannot confirm returns False; the controller then retries and never recovers
the node's resources elsewhere meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from havm.config.fencing import FenceDevice as DeviceConfig
from havm.errors import HavmError

log = logging.getLogger("havm.fencing")


class FenceDevice(ABC):
    def __init__(self, cfg: DeviceConfig) -> None:
        self.cfg = cfg

    def can_fence(self, node: str) -> bool:
        return self.cfg.nodes is None or node in self.cfg.nodes

    @abstractmethod
    async def fence(self, node: str) -> bool:
        """Power ``node`` off; True only if confirmed off."""


class LabPowerSwitch(FenceDevice):
    """The lab's power switch: what ``havm lab kill NODE`` does (SIGKILL to every
    process of the node, daemon and guests, re-listed until none is left), run in
    a worker thread of the daemon. Params: ``lab_dir``."""

    async def fence(self, node: str) -> bool:
        lab_dir = str(self.cfg.params.get("lab_dir", ""))
        if not lab_dir:
            log.error("fence device %s: parameter lab_dir is missing", self.cfg.id)
            return False
        from havm.lab.control import kill_node

        try:
            result = await asyncio.wait_for(asyncio.to_thread(kill_node, lab_dir, node), self.cfg.timeout)
        except TimeoutError:
            log.error("fence device %s: powering %s off did not finish within %gs", self.cfg.id, node,
                      self.cfg.timeout)
            return False
        except HavmError as e:  # LabError: processes survived, no such lab or node
            log.error("fence device %s: powering %s off failed: %s", self.cfg.id, node, e)
            return False
        log.info("fence device %s: %s is off (killed %d process(es))", self.cfg.id, node,
                 len(result.get("killed", [])))
        return True


def make_device(cfg: DeviceConfig) -> FenceDevice:
    if cfg.agent == "lab":
        return LabPowerSwitch(cfg)
    raise ValueError(f"fence agent {cfg.agent!r} is not supported yet (the fencing work adds fence-agents)")


async def fence_node(devices: list[DeviceConfig], node: str) -> bool:
    """Try each device that can fence ``node``, in order; True once one confirms."""
    usable = [d for d in devices if d.nodes is None or node in d.nodes]
    if not usable:
        log.error("no fence device can fence %s", node)
        return False
    for cfg in usable:
        try:
            dev = make_device(cfg)
        except ValueError as e:
            log.error("fence device %s: %s", cfg.id, e)
            continue
        if cfg.delay:
            await asyncio.sleep(cfg.delay)
        if await dev.fence(node):
            return True
    return False
