"""CIB fence devices (``class="stonith"`` primitives) as havm's ``fencing.devices``.

In Pacemaker a fence device is a resource that must run somewhere; in havm it is
an entry of the ``fencing`` section, used by whichever node fences. So a
stonith primitive (also one inside a clone or group, as old CIBs cloned them)
becomes a device: ``agent`` is its type, its parameters are carried over except
Pacemaker's own ``pcmk_*`` ones, of which ``pcmk_host_list`` gives ``nodes``,
``pcmk_delay_base`` the ``delay`` and ``pcmk_reboot_timeout`` (else the
``stonith-timeout`` property) the ``timeout``. Constraints that place the
device (typically "not on the node it fences") no longer apply and are reported.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from havm.importers.cib_resources import Ctx
from havm.importers.cibxml import describe, pcmk_interval, shown
from havm.importers.output import format_duration, havm_id

_PCMK_WHY = {
    "pcmk_host_check": "havm asks the device for the nodes listed in 'nodes' (all nodes if none)",
    "pcmk_delay_max": "a random delay: set a fixed 'delay' on one device to decide fence races",
    "pcmk_host_argument": "havm passes the node to the agent as fence-agents expect (port/plug)",
}


_FENCE_AGENT = re.compile(r"^fence_[A-Za-z0-9_]{1,60}$")


def _host_map(value: str) -> dict[str, str]:
    """Pacemaker's ``pcmk_host_map``: ``node:plug`` pairs separated by ``;``, ``,`` or spaces."""
    out: dict[str, str] = {}
    for item in re.split(r"[\s,;]+", value.strip()):
        if not item:
            continue
        node, sep, plug = item.partition(":")
        if not sep or not node or not plug:
            raise ValueError(f"pcmk_host_map entry {item!r}: expected node:plug")
        out[havm_id(node)] = plug
    return out


def convert_fence_device(ctx: Ctx, el: ET.Element, rtype: str,
                         params_raw: dict[str, tuple[str, ET.Element]], nodes: set[str],
                         fence_timeout: float | None) -> None:
    """Append the device for stonith primitive ``el`` to ``ctx.devices`` (or report why not)."""
    raw_id = el.get("id", "")
    dev_id = havm_id(raw_id)
    if not _FENCE_AGENT.match(rtype):
        ctx.drop(el, f"fence agent {rtype!r} is not one of fence-agents' (fence_*): havm runs those through "
                     "their stdin protocol (cluster-glue's Heartbeat-era plugins such as external/ssh are not "
                     "supported); configure the equivalent fence_* agent (e.g. fence_ipmilan, fence_virsh)")
        ctx.dropped[raw_id] = "a fence device with an unsupported agent"
        return
    if any(d["id"] == dev_id for d in ctx.devices):
        ctx.drop(el, f"fence device id {dev_id!r} is already used")
        ctx.dropped[raw_id] = "duplicate fence device"
        return
    device: dict[str, Any] = {"id": dev_id, "agent": rtype}
    params: dict[str, str] = {}
    timeout = fence_timeout
    for name, (value, pel) in params_raw.items():
        what = f"{describe(pel)} {shown(name, value)}"
        key = name.lower()
        try:
            if key == "pcmk_host_list":
                listed = [havm_id(n) for n in re.split(r"[\s,;]+", value.strip()) if n]
                unknown = [n for n in listed if n not in nodes]
                if unknown:
                    ctx.report.drop(*ctx.where(pel), what, f"node(s) {', '.join(unknown)} are not imported nodes; "
                                    "the device fences the others")
                device["nodes"] = [n for n in listed if n in nodes]
            elif key == "pcmk_host_map":
                host_map = _host_map(value)
                unknown = [n for n in host_map if n not in nodes]
                if unknown:
                    ctx.report.drop(*ctx.where(pel), what, f"node(s) {', '.join(unknown)} are not imported nodes")
                device["host_map"] = {n: p for n, p in host_map.items() if n in nodes}
            elif key == "pcmk_delay_base":
                device["delay"] = format_duration(pcmk_interval(value))
            elif key in ("pcmk_reboot_timeout", "pcmk_off_timeout"):
                timeout = pcmk_interval(value)
            elif key.startswith("pcmk_"):
                ctx.report.drop(*ctx.where(pel), what, _PCMK_WHY.get(key, "a Pacemaker fencing option havm does "
                                                                          "not have"))
            elif havm_id(name) != name:
                ctx.report.drop(*ctx.where(pel), what, "parameter names must be 1-63 of [A-Za-z0-9_.-]")
            else:
                params[name] = value
        except ValueError as e:
            ctx.report.drop(*ctx.where(pel), what, str(e))
    if params:
        device["params"] = params
    if timeout is not None:
        device["timeout"] = format_duration(timeout)
    if "host_map" in device and "nodes" in device:
        listed = device.pop("nodes")
        device["host_map"] = {n: p for n, p in device["host_map"].items() if n in listed}
        ctx.report.info(*ctx.where(el), describe(el), "pcmk_host_list and pcmk_host_map both given: the nodes of "
                        "the map that the list names are kept")
    if device.get("nodes") == [] or device.get("host_map") == {}:
        ctx.drop(el, "it can fence none of the imported nodes")
        ctx.dropped[raw_id] = "a fence device for no imported node"
        return
    ctx.devices.append(device)
    ctx.dropped[raw_id] = "a fence device: it is in havm's fencing section, not among the resources"
    ctx.report.info(*ctx.where(el), describe(el), f"fence device {dev_id!r} ({rtype}) written to fencing.devices")
