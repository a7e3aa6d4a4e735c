"""The ``watchdog`` section: self-fencing for nodes no fence device can power off.

```yaml
watchdog:
  backend: dev            # dev: /dev/watchdog (softdog or a hardware one); lab: the lab's watchdog
  device: /dev/watchdog   # dev: the device; lab: its socket, '{node}' is replaced by the node's name
  timeout: 10s            # the watchdog resets the node this long after the last feed
  interval: 1s            # havmd feeds it this often while it may (quorate, healthy)
  module: softdog         # dev: loaded with modprobe when the device is missing (null: never)
properties:
  fencing_watchdog_timeout: 25s   # survivors take a lost node as fenced only after this long
```

A node fenced by its watchdog cannot tell the survivors it is off; they
wait instead. Correctness rests on one inequality, checked here:

    fencing_watchdog_timeout > watchdog.timeout + watchdog.interval + timing.deadtime

A lost node stops feeding at the latest when it loses quorum, which happens
at most about one ``deadtime`` after the survivors lost it (each side detects
the other's silence on its own timer); the last feed may be one ``interval``
older than that decision; the watchdog resets the node ``timeout`` after the
last feed. The survivors start counting when they themselves see the node
go, so waiting longer than that sum means the node is either reset or had
stopped all its resources (a node disarms only once they are all stopped).

Watchdog fencing is refused with ``no_quorum_policy`` freeze, ignore or
demote: they keep resources running without quorum, and a watchdog that
resets a non-quorate node (or does not, under ignore) cannot make that safe.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from havm.config.cluster import Strict, Timing
from havm.config.types import Duration

Loc = tuple[str | int, ...]

# Linux's watchdog API takes whole seconds (WDIOC_SETTIMEOUT); softdog allows 1..65535.
MIN_TIMEOUT = 1.0
MAX_TIMEOUT = 65535.0
UNSAFE_POLICIES = ("freeze", "ignore", "demote")


class Watchdog(Strict):
    """How this cluster's nodes fence themselves (see the module doc)."""

    backend: Literal["none", "dev", "lab"] = Field(
        "none", description="none: no watchdog; dev: a Linux watchdog device; lab: the lab's watchdog process")
    device: str = Field("/dev/watchdog", description="dev: the device path; lab: the watchdog's socket "
                                                     "('{node}' is replaced by the node's name)")
    timeout: Duration = Field(10.0, description="the node is reset this long after the last feed")
    interval: Duration = Field(1.0, description="feed period while feeding is allowed")
    module: str | None = Field("softdog", description="dev: kernel module loaded if the device is missing")

    @model_validator(mode="after")
    def _rules(self) -> Watchdog:
        problems = []
        if not MIN_TIMEOUT <= self.timeout <= MAX_TIMEOUT or not float(self.timeout).is_integer():
            problems.append(f"timeout must be a whole number of seconds from {MIN_TIMEOUT:g} to "
                            f"{MAX_TIMEOUT:g} (the kernel's WDIOC_SETTIMEOUT unit), got {self.timeout:g}s")
        if not 0.05 <= self.interval or 2 * self.interval > self.timeout:
            problems.append(f"interval ({self.interval:g}s) must be at least 50ms and at most half of "
                            f"timeout ({self.timeout:g}s): one late feed must not reset the node")
        if not self.device:
            problems.append("device must not be empty")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def enabled(self) -> bool:
        return self.backend != "none"

    def device_for(self, node: str) -> str:
        return self.device.replace("{node}", node)


def min_fencing_watchdog_timeout(watchdog: Watchdog, timing: Timing) -> float:
    """The bound ``fencing_watchdog_timeout`` must exceed (module doc)."""
    return watchdog.timeout + watchdog.interval + timing.deadtime


def effective_fencing_watchdog_timeout(explicit: float | None, watchdog: Watchdog, timing: Timing) -> float:
    """The configured value, else twice the watchdog's timeout (Pacemaker's default
    for stonith-watchdog-timeout), raised to one second above the bound if needed."""
    if explicit is not None:
        return explicit
    return max(2 * watchdog.timeout, min_fencing_watchdog_timeout(watchdog, timing) + 1.0)


def self_fencing_nodes(node_names: list[str], devices: list[Any], watchdog: Watchdog) -> list[str]:
    """Nodes fenced by their watchdog: a watchdog is configured and no device can fence them."""
    if not watchdog.enabled:
        return []
    return [n for n in node_names if not any(_can_fence(d, n) for d in devices)]


def _can_fence(device: Any, node: str) -> bool:
    check = getattr(device, "can_fence", None)
    if check is not None:
        return bool(check(node))
    return device.nodes is None or node in device.nodes


def check_watchdog(watchdog: Watchdog, timing: Timing, no_quorum_policy: str,
                   fencing_watchdog_timeout: float | None) -> list[tuple[Loc, str, Any]]:
    """Cross-section problems as (location, message, input), like ``check_references``."""
    if not watchdog.enabled:
        return []
    problems: list[tuple[Loc, str, Any]] = []
    bound = min_fencing_watchdog_timeout(watchdog, timing)
    if fencing_watchdog_timeout is not None and fencing_watchdog_timeout <= bound:
        problems.append((("properties", "fencing_watchdog_timeout"),
                         f"fencing_watchdog_timeout ({fencing_watchdog_timeout:g}s) must exceed watchdog.timeout "
                         f"({watchdog.timeout:g}s) + watchdog.interval ({watchdog.interval:g}s) + timing.deadtime "
                         f"({timing.deadtime:g}s) = {bound:g}s: survivors would take a lost node as fenced "
                         "before its watchdog has certainly reset it", fencing_watchdog_timeout))
    if no_quorum_policy in UNSAFE_POLICIES:
        problems.append((("properties", "no_quorum_policy"),
                         f"no_quorum_policy {no_quorum_policy!r} cannot be used with watchdog self-fencing "
                         f"(watchdog.backend {watchdog.backend!r}): it keeps resources running without quorum, "
                         "while survivors take a lost node as stopped after fencing_watchdog_timeout; use 'stop'",
                         no_quorum_policy))
    return problems


def watchdog_warnings(no_quorum_policy: str) -> list[tuple[Loc, str]]:
    """Valid but dangerous settings, for ``havm config validate``."""
    if no_quorum_policy == "ignore":
        return [(("properties", "no_quorum_policy"),
                 "no_quorum_policy 'ignore' is dangerous: a partition without quorum carries on as if it had "
                 "it (starting resources and fencing the other side), so a split brain can run a VM twice")]
    return []
