"""The cluster section of the configuration: nodes, links, timing, quorum, daemon.

Declarative: each field states its type, default and why; cross-field rules
(deadtime vs keepalive, one address per link) live in ``model_validator``s
next to the fields they relate. Unknown keys are errors everywhere
(``extra="forbid"``): a misspelt ``deadtme`` must not silently fall back to a default.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from havm.config.types import Duration, IPv4, Name

DEFAULT_PORT = 694  # Heartbeat's registered port (ha-cluster)
DEFAULT_API_PORT = 7694


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Link(Strict):
    """One heartbeat network. A node is alive while any link carries its heartbeats."""

    name: Name
    mode: Literal["unicast", "multicast", "broadcast"] = "unicast"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    group: IPv4 | None = Field(None, description="multicast group (mode: multicast)")
    ttl: int = Field(1, ge=1, le=255, description="multicast TTL")
    broadcast: IPv4 | None = Field(
        None, description="broadcast address (mode: broadcast); default: the limited broadcast 255.255.255.255")

    @model_validator(mode="after")
    def _mode_fields(self) -> Link:
        if self.mode == "multicast":
            if self.group is None:
                raise ValueError("a multicast link needs 'group', a multicast address such as 239.0.0.1")
            if not ipaddress.IPv4Address(self.group).is_multicast:
                raise ValueError(f"group {self.group} is not a multicast address (224.0.0.0/4)")
        elif self.group is not None:
            raise ValueError(f"'group' is only for multicast links, this link is {self.mode}")
        if self.broadcast is not None and self.mode != "broadcast":
            raise ValueError(f"'broadcast' is only for broadcast links, this link is {self.mode}")
        return self


class Node(Strict):
    name: Name
    addresses: dict[Name, IPv4] = Field(
        description="this node's address on each link, keyed by link name")
    votes: int = Field(1, ge=0, le=255)
    attributes: dict[Name, str | int | float | bool] = Field(
        default_factory=dict, description="node attributes that location rules can test")
    utilization: dict[Name, int] = Field(
        default_factory=dict, description="capacity, e.g. {memory: 4096, cpu: 4}; resources placed here must fit")
    standby: bool = Field(False, description="standby: may run no resources (drained)")
    maintenance: bool = Field(False, description="maintenance: resources here are left alone, neither started nor stopped")


class Timing(Strict):
    """Heartbeat's four timers, with Heartbeat's meanings, in seconds.

    - keepalive: interval between heartbeats on each link.
    - warntime: a peer silent this long is logged as late (not yet dead).
    - deadtime: a peer silent this long on every link is declared dead.
    - initdead: at daemon start, peers get this long before they can be declared
      dead (boot and network bring-up are slow).
    Defaults suit a LAN: dead after 3 s of silence, i.e. six missed heartbeats.
    """

    keepalive: Duration = 0.5
    warntime: Duration = 1.5
    deadtime: Duration = 3.0
    initdead: Duration = 10.0

    @model_validator(mode="after")
    def _rules(self) -> Timing:
        problems = []
        if self.keepalive < 0.01:
            problems.append(f"keepalive must be at least 10ms, got {self.keepalive:g}s")
        if self.deadtime <= 2 * self.keepalive:
            problems.append(
                f"deadtime ({self.deadtime:g}s) must be more than 2 x keepalive ({2 * self.keepalive:g}s): "
                "one lost packet must not declare a node dead")
        if not (self.keepalive <= self.warntime < self.deadtime):
            problems.append(
                f"warntime ({self.warntime:g}s) must be at least keepalive ({self.keepalive:g}s) "
                f"and less than deadtime ({self.deadtime:g}s)")
        if self.initdead < self.deadtime:
            problems.append(f"initdead ({self.initdead:g}s) must be at least deadtime ({self.deadtime:g}s)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Tiebreaker(Strict):
    """How a two-node cluster (or an even split) decides who keeps quorum.

    - ``ping``: a side keeps quorum only if it reaches at least one of ``targets``
      (Heartbeat's ipfail); both sides may reach them, so it is paired with a
      fence delay (fencing issue) to decide a race.
    - ``lowest-node``: the half holding the lowest-named node wins (corosync's
      ``auto_tie_breaker``); no external dependency, but the other half loses even
      if the lowest node is really dead, so it suits only clusters of 4+.
    - ``none``: an even split has no quorum on either side.
    """

    type: Literal["none", "ping", "lowest-node"] = "none"
    targets: list[IPv4] = Field(default_factory=list)
    interval: Duration = 1.0

    @model_validator(mode="after")
    def _targets(self) -> Tiebreaker:
        if self.type == "ping" and not self.targets:
            raise ValueError("a ping tiebreaker needs at least one address in 'targets'")
        if self.type != "ping" and self.targets:
            raise ValueError("'targets' is only for the ping tiebreaker")
        return self


class Quorum(Strict):
    two_node: bool = Field(
        False, description="two-node mode: one node alone may keep quorum if the tiebreaker says so")
    tiebreaker: Tiebreaker = Field(default_factory=Tiebreaker)


class Auth(Strict):
    key_file: str = Field("authkey", description="path of the HMAC-SHA256 key file, relative to the config file")


class Api(Strict):
    port: int = Field(DEFAULT_API_PORT, ge=1, le=65535)
    tokens_file: str = Field("tokens", description="API tokens (names, roles, hashes; mode 0600), relative to "
                                                   "the config file; managed with 'havm token'")


class Daemon(Strict):
    state_dir: str = "/var/lib/havm"
    run_dir: str = Field("/run/havm", description="volatile state of running resources (pidfiles, sockets); "
                                                  "must not survive a reboot, as /run does not")
    socket: str = "/run/havm/havmd.sock"
    api: Api = Field(default_factory=Api)
    realtime_priority: int | None = Field(
        10, ge=1, le=99,
        description="SCHED_RR priority of the heartbeat thread (as corosync and Heartbeat run), so a "
                    "busy machine cannot starve heartbeats; null: normal scheduling")
