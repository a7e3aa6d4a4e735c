"""Commands about the cluster as a whole: status and configuration."""

from __future__ import annotations

from dataclasses import dataclass

from havm.commands.base import Command


@dataclass(frozen=True)
class GetStatus(Command):
    name = "status"


@dataclass(frozen=True)
class GetConfig(Command):
    name = "config-show"


@dataclass(frozen=True)
class ApplyConfig(Command):
    """Replace the cluster configuration with ``text``.

    ``base_epoch`` = [admin_epoch, epoch] the edit started from: if the
    cluster moved on, the change is refused (Conflict) and nothing changes.
    ``force`` raises admin_epoch so this configuration wins over any other.
    """

    name = "config-apply"
    writes = True
    text: str
    base_epoch: list[int] | None = None
    force: bool = False
    comment: str = ""
    by: str = ""
