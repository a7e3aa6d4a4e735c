"""CIB fence devices (``class="stonith"`` primitives) as havm's ``fencing.devices``.

In Pacemaker a fence device is a resource that must run somewhere; in havm it is
an entry of the ``fencing`` section, used by whichever node fences. So a
stonith primitive (also one inside a clone or group, as old CIBs cloned them)
becomes a device: ``agent`` is its type, its parameters are carried over except
Pacemaker's own ``pcmk_*`` ones, of which ``pcmk_host_list`` gives ``nodes``,
``pcmk_host_map`` the ``host_map`` (with a host list: the listed nodes, each
mapped to its plug or, as Pacemaker does, to its own name), ``pcmk_delay_base``
the ``delay`` (also its ``node:delay`` per-target form), ``pcmk_off_timeout``
(else ``pcmk_reboot_timeout``, else the ``stonith-timeout`` property) the
``timeout`` and ``pcmk_off_retries`` (else ``pcmk_reboot_retries``) the
``retries``: havm always runs the off action, so the off action's own settings
win. An ``action`` parameter is handled as Pacemaker's fencer does (it removes
it: ``reboot`` is ignored, ``off`` makes reboots offs, which havm's always are).
Constraints that place the device (typically "not on the node it fences") no
longer apply and are reported.

The fencing cluster properties (``stonith-action``, ``stonith-watchdog-timeout``,
``stonith-max-attempts``, ``priority-fencing-delay``, ``concurrent-fencing``)
are read by ``fencing_properties``; the ``fencing-topology`` by
``havm.importers.cib_topology``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from havm.config.cluster import Timing
from havm.config.watchdog import (
    UNSAFE_POLICIES,
    Watchdog,
    effective_fencing_watchdog_timeout,
    min_fencing_watchdog_timeout,
)
from havm.importers.cib_resources import Ctx
from havm.importers.cibxml import describe, pcmk_bool, pcmk_int, pcmk_interval, shown
from havm.importers.output import format_duration, havm_id

_PCMK_WHY = {
    "pcmk_host_check": "havm asks the device for the nodes listed in 'nodes' (all nodes if none)",
    "pcmk_delay_max": "havm has no random fencing delay (Pacemaker waits between pcmk_delay_base and this): "
                      "the device's fixed delay is pcmk_delay_base's; to decide fence races, give one node's "
                      "device a longer fixed delay",
    "pcmk_host_argument": "havm passes the node to the agent as fence-agents expect (port/plug)",
}


_MAX_RETRIES = 10  # FenceDevice.retries' bound
_FENCE_AGENT = re.compile(r"^fence_[A-Za-z0-9_]{1,60}$")


def _pairs(value: str, option: str, kind: str, separators: str) -> list[tuple[str, str]]:
    """``node:value`` pairs of a ``pcmk_*`` option (node names as havm ids), in order."""
    out = []
    for item in re.split(f"[{separators}]+", value.strip()):
        if not item:
            continue
        node, sep, val = item.partition(":")
        if not sep or not node or not val:
            raise ValueError(f"{option} entry {item!r}: expected node:{kind}")
        out.append((havm_id(node), val))
    return out


def _host_map(value: str) -> dict[str, str]:
    """Pacemaker's ``pcmk_host_map``: ``node:plug`` pairs separated by ``;``, ``,`` or spaces."""
    return dict(_pairs(value, "pcmk_host_map", "plug", r"\s,;"))


def _delay_base(value: str, nodes: set[str]) -> tuple[float | dict[str, float], list[str]]:
    """``pcmk_delay_base``: a delay, or ``node:delay`` pairs (separated by ``;``, spaces or tabs, as
    Pacemaker's fencer splits them; the first entry of a node counts, a node without one waits 0).
    Returns the delay and the mapped nodes that are not imported nodes."""
    if ":" not in value:
        return pcmk_interval(value), []
    out: dict[str, float] = {}
    unknown = []
    for name, delay in _pairs(value, "pcmk_delay_base", "delay", r";\s"):
        if name in nodes:
            out.setdefault(name, pcmk_interval(delay))
        else:
            unknown.append(name)
    return out, unknown


def _action_option(ctx: Ctx, found: dict[str, tuple[str, ET.Element]],
                   option: str) -> tuple[str, ET.Element] | None:
    """The ``pcmk_off_<option>`` pair, else ``pcmk_reboot_<option>``: havm always runs the off action.
    The reboot value, when an off one wins over it, is reported."""
    off, reboot = found.get(f"pcmk_off_{option}"), found.get(f"pcmk_reboot_{option}")
    if off is not None and reboot is not None:
        value, pel = reboot
        ctx.report.drop(*ctx.where(pel), f"{describe(pel)} {shown(f'pcmk_reboot_{option}', value)}",
                        f"havm fences with the off action only: the device's pcmk_off_{option} applies")
    return off or reboot


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
    per_action: dict[str, tuple[str, ET.Element]] = {}
    host_list: list[str] | None = None
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
                host_list = [n for n in listed if n in nodes]
            elif key == "pcmk_host_map":
                host_map = _host_map(value)
                unknown = [n for n in host_map if n not in nodes]
                if unknown:
                    ctx.report.drop(*ctx.where(pel), what, f"node(s) {', '.join(unknown)} are not imported nodes")
                device["host_map"] = {n: p for n, p in host_map.items() if n in nodes}
            elif key == "pcmk_delay_base":
                delay, unknown = _delay_base(value, nodes)
                if unknown:
                    ctx.report.drop(*ctx.where(pel), what, f"node(s) {', '.join(unknown)} are not imported nodes")
                device["delay"] = ({n: format_duration(d) for n, d in delay.items()} if isinstance(delay, dict)
                                   else format_duration(delay))
            elif key in ("pcmk_off_timeout", "pcmk_reboot_timeout", "pcmk_off_retries", "pcmk_reboot_retries"):
                per_action[key] = (value, pel)
            elif key == "action":
                _action_param(ctx, pel, what, value)
            elif key in ("pcmk_off_action", "pcmk_reboot_action"):
                # the agent action Pacemaker runs for its off / reboot: havm runs the agent's off
                _as_havm_does(ctx, pel, what, value.strip() == "off",
                              "havm always runs the agent's off action, as this asks",
                              f"Pacemaker runs the agent's {value.strip()!r} action for this; havm always runs "
                              "off, then status")
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
    timeout = fence_timeout
    chosen = _action_option(ctx, per_action, "timeout")
    if chosen is not None:
        try:
            timeout = pcmk_interval(chosen[0])
        except ValueError as e:
            value, pel = chosen
            ctx.report.drop(*ctx.where(pel), f"{describe(pel)} {shown(pel.get('name', ''), value)}", str(e))
    if timeout is not None:
        device["timeout"] = format_duration(timeout)
    chosen = _action_option(ctx, per_action, "retries")
    if chosen is not None:
        _retries(ctx, device, *chosen)
    if host_list is not None:
        if "host_map" in device:
            # pcmk_host_list names the targets; pcmk_host_map only translates names to plugs,
            # and a listed node it does not name is passed as itself (Pacemaker's fencer)
            device["host_map"] = {n: device["host_map"].get(n, n) for n in host_list}
            ctx.report.info(*ctx.where(el), describe(el), "pcmk_host_list and pcmk_host_map both given: "
                            "host_map holds the listed nodes, each with its pcmk_host_map plug or its own name")
        else:
            device["nodes"] = host_list
    if device.get("nodes") == [] or device.get("host_map") == {}:
        ctx.drop(el, "it can fence none of the imported nodes")
        ctx.dropped[raw_id] = "a fence device for no imported node"
        return
    if device.get("delay") == {}:
        del device["delay"]
    ctx.devices.append(device)
    ctx.fence_ids[raw_id] = dev_id
    ctx.dropped[raw_id] = "a fence device: it is in havm's fencing section, not among the resources"
    ctx.report.info(*ctx.where(el), describe(el), f"fence device {dev_id!r} ({rtype}) written to fencing.devices")


def _action_param(ctx: Ctx, pel: ET.Element, what: str, value: str) -> None:
    """A device's ``action`` parameter, as Pacemaker's fencer reads it (``xml2device_params``):
    never passed to the agent; ``reboot`` ignored; ``off`` turns reboots into offs; anything
    else becomes the agent action run for both off and reboot."""
    v = value.strip()
    if v in ("", "reboot"):
        ctx.report.drop(*ctx.where(pel), what, "Pacemaker ignores an action parameter of a fence device "
                                               "(stonith-action chooses the action); havm gives the action itself")
    elif v == "off":
        ctx.report.info(*ctx.where(pel), what, "not a parameter in havm: Pacemaker turns this device's reboots "
                                               "into offs, and havm always powers nodes off")
    else:
        ctx.report.drop(*ctx.where(pel), what, f"Pacemaker runs the agent's {v!r} action instead of off and "
                                               "reboot; havm always runs off, then status")


def _retries(ctx: Ctx, device: dict[str, Any], value: str, pel: ET.Element) -> None:
    """``pcmk_<action>_retries``: Pacemaker's number of attempts in all (default 2), made only while
    the action's timeout has 30% left; havm's ``retries`` are attempts after the first, each with
    the whole timeout."""
    what = f"{describe(pel)} {shown(pel.get('name', ''), value)}"
    try:
        attempts = pcmk_int(value)
    except ValueError as e:
        ctx.report.drop(*ctx.where(pel), what, str(e))
        return
    retries = max(0, attempts - 1)
    if retries > _MAX_RETRIES:
        ctx.report.drop(*ctx.where(pel), what, f"havm allows at most {_MAX_RETRIES} retries: {_MAX_RETRIES} written")
        retries = _MAX_RETRIES
    else:
        ctx.report.info(*ctx.where(pel), what, f"written as retries: {retries} (attempts after the first); each "
                                               "havm attempt has the whole timeout, where Pacemaker retries "
                                               "only within one")
    if retries:
        device["retries"] = retries


#: the fencing cluster properties ``fencing_properties`` reads (Pacemaker 2 and 3 spellings)
FENCING_PROPERTIES = ("stonith-action", "fencing-action", "concurrent-fencing", "priority-fencing-delay",
                      "stonith-watchdog-timeout", "fencing-watchdog-timeout", "stonith-max-attempts",
                      "fencing-max-attempts")
#: sbd's default SBD_WATCHDOG_TIMEOUT (/etc/sysconfig/sbd), assumed since the CIB does not hold it
SBD_WATCHDOG_TIMEOUT = 5.0


def fencing_properties(ctx: Ctx, raw: dict[str, tuple[str, ET.Element]],
                       props: dict[str, Any]) -> dict[str, Any] | None:
    """Report (and where havm has them, carry over) the fencing cluster properties ``raw``
    (normalised name -> (value, nvpair)). May set ``props['fencing_watchdog_timeout']``;
    returns the ``watchdog`` section to write, or None."""
    watchdog = None
    for key, (value, el) in raw.items():
        what = f"{describe(el)} {shown(el.get('name') or key, value)}"
        v = value.strip().lower()
        if key in ("stonith-action", "fencing-action"):
            _as_havm_does(ctx, el, what, v in ("off", "poweroff"),
                          "havm always fences with the off action, then confirms with status",
                          "havm never reboots a fenced node: it runs the agent's off action and confirms with "
                          "status, and the node stays off until powered on")
        elif key == "concurrent-fencing":
            try:
                concurrent = pcmk_bool(value)
            except ValueError as e:
                ctx.report.drop(*ctx.where(el), what, str(e))
                continue
            _as_havm_does(ctx, el, what, concurrent,
                          "havm fences the nodes of one transition in parallel (one fence per node at a time), "
                          "as this asks",
                          "havm fences the nodes of one transition in parallel and has no switch to fence one "
                          "node at a time")
        elif key == "priority-fencing-delay":
            ctx.report.drop(*ctx.where(el), what, "havm has no priority-based fencing delay (Pacemaker delays "
                            "fencing the node whose resources' priorities add up highest, so that it wins a fence "
                            "race): give the fence device of the node that should survive a split a fixed delay "
                            "for it instead (fencing.devices[].delay: {NODE: 15s})")
        elif key in ("stonith-max-attempts", "fencing-max-attempts"):
            ctx.report.drop(*ctx.where(el), what, "havm never stops retrying a fence: a failed fence is tried "
                            "again at every controller cycle, with no limit (Pacemaker gives up on a target after "
                            "this many failures); a device's own attempts are its retries (pcmk_off_retries)")
        else:  # stonith-watchdog-timeout, fencing-watchdog-timeout
            watchdog = _watchdog(ctx, el, what, value, props)
    return watchdog


def _as_havm_does(ctx: Ctx, el: ET.Element, what: str, same: bool, same_why: str, other_why: str) -> None:
    """A setting havm has built in: info when the CIB asks for what havm does, else dropped."""
    if same:
        ctx.report.info(*ctx.where(el), what, same_why)
    else:
        ctx.report.drop(*ctx.where(el), what, other_why)


def _watchdog(ctx: Ctx, el: ET.Element, what: str, value: str, props: dict[str, Any]) -> dict[str, Any] | None:
    """``stonith-watchdog-timeout``: 0 disables watchdog fencing; a positive value is how long
    survivors wait for a lost node's watchdog (havm's ``fencing_watchdog_timeout``); a negative
    one means twice sbd's SBD_WATCHDOG_TIMEOUT (``pcmk__auto_watchdog_timeout``), which is also
    havm's default. sbd's watchdog timeout is not in the CIB: sbd's default is written."""
    v = value.strip()
    negative = v.startswith("-")
    try:
        seconds = pcmk_interval(v[1:] if negative else v)
    except ValueError as e:
        ctx.report.drop(*ctx.where(el), what, str(e))
        return None
    if seconds == 0:
        ctx.report.info(*ctx.where(el), what, "watchdog fencing is disabled (Pacemaker's default): no watchdog "
                                              "section is written")
        return None
    policy = props.get("no_quorum_policy", "stop")
    if policy in UNSAFE_POLICIES:
        ctx.report.drop(*ctx.where(el), what, f"havm refuses watchdog self-fencing with no_quorum_policy {policy!r} "
                        "(resources would keep running without quorum while survivors take the node as fenced): "
                        "set no_quorum_policy: stop and add a watchdog section by hand")
        return None
    section = {"backend": "dev", "timeout": format_duration(SBD_WATCHDOG_TIMEOUT)}
    ctx.report.warn(*ctx.where(el), what, f"watchdog self-fencing: a watchdog section was written (backend dev, "
                    f"/dev/watchdog) with timeout {format_duration(SBD_WATCHDOG_TIMEOUT)}, sbd's default: "
                    "SBD_WATCHDOG_TIMEOUT is not in the CIB (sbd reads it from /etc/sysconfig/sbd on each node); "
                    "set watchdog.timeout to it")
    if negative:
        ctx.report.warn(*ctx.where(el), what, "a negative value means twice SBD_WATCHDOG_TIMEOUT, which cannot be "
                        "known from the CIB: fencing_watchdog_timeout is left out, so havm waits twice "
                        "watchdog.timeout (raised to its safety bound + 1s if needed), the same rule")
        return section
    watchdog = Watchdog(backend="dev", timeout=SBD_WATCHDOG_TIMEOUT)
    bound = min_fencing_watchdog_timeout(watchdog, Timing())
    if seconds <= bound:
        default = effective_fencing_watchdog_timeout(None, watchdog, Timing())
        ctx.report.drop(*ctx.where(el), what, f"havm requires fencing_watchdog_timeout > watchdog.timeout + "
                        f"watchdog.interval + timing.deadtime = {bound:g}s (with the watchdog timeout written and "
                        f"the default timing): left out, so havm waits {default:g}s; set it once watchdog.timeout "
                        "and timing are right")
    else:
        props["fencing_watchdog_timeout"] = format_duration(seconds)
        ctx.report.info(*ctx.where(el), what, "written as properties.fencing_watchdog_timeout: survivors take a "
                                              "lost node as fenced after this long")
    return section
