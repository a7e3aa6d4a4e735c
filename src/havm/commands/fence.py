"""Fencing by hand: ``havm node fence NODE``, and each node's fencing history."""

from __future__ import annotations

from dataclasses import dataclass

from havm.commands.base import Command


@dataclass(frozen=True)
class FenceNode(Command):
    """Power NODE off through its fence devices (levels, retries, delay) and
    report the outcome. Run by the controller of a quorate partition (by
    another member when NODE is the controller); never by NODE itself."""

    name = "node-fence"
    writes = True
    node: str
    by: str = ""


@dataclass(frozen=True)
class GetFenceHistory(Command):
    """The fencing attempts this node ran (``havm status`` merges every member's)."""

    name = "fence-history"
