"""Which code runs a resource's agent, by the agent's full name.

- ``havm:<kind>``: havm's own Python agents (havm.agents), run one action per
  subprocess by ``havm.executor.runner`` so a timeout can kill it;
- ``ocf:<provider>:<type>``: an installed OCF script, unmodified, under
  ``$OCF_ROOT/resource.d/<provider>/<type>`` (Debian: /usr/lib/ocf);
- ``lsb:<name>``: an init script in /etc/init.d, through the ``service`` agent;
- ``systemd:<unit>``: a systemd unit, through the ``service`` agent.

Native agent names are part of the config format: ONLY APPEND.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from havm.errors import NotFound

OCF_ROOT = os.environ.get("OCF_ROOT", "/usr/lib/ocf")

NATIVE: dict[str, str] = {
    "dummy": "havm.agents.dummy:DummyAgent",
    "vm": "havm.agents.qemu:QemuAgent",
    "qemu": "havm.agents.qemu:QemuAgent",
    "ip": "havm.agents.ip:IpAgent",
    "fs": "havm.agents.fs:FsAgent",
    "service": "havm.agents.service:ServiceAgent",
    "libvirt": "havm.agents.libvirt:LibvirtAgent",
}


@dataclass(frozen=True)
class AgentRef:
    """How to run one agent: a native class path, or an OCF script path."""

    name: str
    native: str | None = None  # "module:Class"
    script: str | None = None  # OCF script
    service: str | None = None  # lsb:/systemd: unit handed to the service agent

    @property
    def kind(self) -> str:
        return "ocf" if self.script else "native"


def resolve(agent: str) -> AgentRef:
    """Find the agent for ``agent`` (a full name such as ``havm:vm`` or ``ocf:heartbeat:IPaddr2``)."""
    cls, _, rest = agent.partition(":")
    if cls == "havm":
        if rest not in NATIVE:
            raise NotFound(f"no native agent {rest!r}; havm ships {', '.join(sorted(NATIVE))}")
        return AgentRef(agent, native=NATIVE[rest])
    if cls == "ocf":
        provider, _, kind = rest.partition(":")
        path = os.path.join(OCF_ROOT, "resource.d", provider, kind)
        return AgentRef(agent, script=path)
    if cls in ("lsb", "systemd", "service"):
        return AgentRef(agent, native=NATIVE["service"], service=agent)
    raise NotFound(f"unknown agent class in {agent!r}; expected havm:, ocf:, lsb: or systemd:")


def load_native(path: str) -> type:
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as e:
        raise NotFound(f"agent {path} is not available: {e}") from None
