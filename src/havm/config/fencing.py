"""The ``fencing`` section: devices that can power nodes off.

Minimal for now (devices, which nodes each can fence, a delay and a timeout);
the fencing work (issue 5) adds levels, retries and fence-agents' own
parameters. Agents: ``lab`` (the lab's power switch: what ``havm lab kill``
does), and the names of Debian's fence-agents (``fence_ipmilan``, ...).
"""

from __future__ import annotations

from pydantic import Field

from havm.config.resources import Param, Section
from havm.config.types import Duration, Name


class FenceDevice(Section):
    id: Name
    agent: str = Field(description="'lab', or a fence agent such as fence_ipmilan")
    params: dict[Name, Param] = Field(default_factory=dict)
    nodes: list[Name] | None = Field(None, description="nodes this device can fence; default: all")
    delay: Duration = Field(0.0, description="wait this long before fencing (breaks fence races)")
    timeout: Duration = 60.0


class Fencing(Section):
    devices: list[FenceDevice] = Field(default_factory=list)
