"""Operator commands on resources and nodes (havm resource ..., havm node ...)."""

from __future__ import annotations

from dataclasses import dataclass

from havm.commands.base import Command

RESOURCE_OPS = ("start", "stop", "move", "migrate", "ban", "clear", "manage", "unmanage")
NODE_OPS = ("standby", "online", "maintenance", "unmaintenance")


@dataclass(frozen=True)
class ChangeResource(Command):
    """start/stop (target role), move/migrate (prefer a node), ban (avoid a node),
    clear (remove move/ban constraints), manage/unmanage. A configuration change."""

    name = "resource"
    writes = True
    op: str
    resource: str
    node: str | None = None
    by: str = ""


@dataclass(frozen=True)
class CleanupResource(Command):
    """Forget the failures of a resource (on one node, or everywhere) and re-probe."""

    name = "resource-cleanup"
    writes = True
    resource: str
    node: str | None = None


@dataclass(frozen=True)
class ChangeNode(Command):
    """standby (drain: run nothing), online, maintenance (leave its resources alone)."""

    name = "node"
    writes = True
    op: str
    node: str
    by: str = ""
