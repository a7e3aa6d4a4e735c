"""Operator commands shared by the CLI, the REST API and the daemon."""

from havm.commands.base import REGISTRY, Command, command_from_json
from havm.commands.cluster import ApplyConfig, GetConfig, GetStatus
from havm.commands.history import GetHistory
from havm.commands.resource import ChangeNode, ChangeResource, CleanupResource

__all__ = ["REGISTRY", "ApplyConfig", "ChangeNode", "ChangeResource", "CleanupResource", "Command", "GetConfig",
           "GetHistory", "GetStatus", "command_from_json"]
