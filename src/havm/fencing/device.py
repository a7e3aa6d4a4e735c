"""Fence devices: what powers a node off, and proves it.

The guarantee every device gives: ``fence(node)`` returns True only when the
node is confirmed off (its processes gone, its power off). A device that
cannot confirm returns False; the controller then retries and never recovers
the node's resources elsewhere meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from abc import ABC, abstractmethod

from havm.config.fencing import FenceDevice as DeviceConfig

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
    """The lab's power switch: ``havm lab kill NODE`` (SIGKILL to every process of
    the node, daemon and guests) and a check that none is left. Params: ``lab_dir``."""

    async def fence(self, node: str) -> bool:
        lab_dir = str(self.cfg.params.get("lab_dir", ""))
        if not lab_dir:
            log.error("fence device %s: parameter lab_dir is missing", self.cfg.id)
            return False
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "havm.cli.main", "lab", "kill", node, "--dir", lab_dir, "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.cfg.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("fence device %s: 'havm lab kill %s' timed out", self.cfg.id, node)
            return False
        if proc.returncode != 0:
            log.error("fence device %s: 'havm lab kill %s' failed: %s", self.cfg.id, node,
                      err.decode(errors="replace").strip()[-500:])
            return False
        try:
            result = json.loads(out)
        except ValueError:
            log.error("fence device %s: unreadable answer from havm lab kill: %r", self.cfg.id, out[-200:])
            return False
        left = result.get("left") or result.get("survivors") or []
        if left:
            log.error("fence device %s: processes of %s survived: %s", self.cfg.id, node, left)
            return False
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
