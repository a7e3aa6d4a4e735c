"""Operations of CIB primitives (``<operations><op/>``) as havm ``ops``.

havm configures one operation per name (``monitor_promoted`` for the monitor of
the promoted role); a second monitor of the same role (OCF_CHECK_LEVEL depths),
probes configured as ``monitor interval=0``, disabled operations and
per-operation attributes are reported. A missing timeout takes ``op_defaults``'
timeout. Intervals and timeouts are written as durations (``30s``, ``500ms``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from havm.importers.cibxml import describe, norm, pcmk_bool, pcmk_interval, pcmk_role, shown
from havm.importers.output import format_duration

if TYPE_CHECKING:
    from havm.importers.cib_resources import Ctx

OP_NAMES = ("start", "stop", "monitor", "migrate_to", "migrate_from", "promote", "demote")
ON_FAIL = ("restart", "ignore", "block", "stop", "fence", "standby")


def convert_ops(ctx: Ctx, sources: list[ET.Element]) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for src in sources:
        for operations in src.findall("operations"):
            container = ctx.cib.resolve(operations, ctx.report)
            if container is None:
                continue
            for op in container.findall("op"):
                _op(ctx, op, ops)
    return ops


def _op(ctx: Ctx, op: ET.Element, ops: dict[str, Any]) -> None:
    name = op.get("name", "")
    attrs = {norm(k): v for k, v in op.attrib.items()}
    if name not in OP_NAMES:
        ctx.drop(op, f"operation {name!r}: havm configures only {', '.join(OP_NAMES)}")
        return
    if "enabled" in attrs and not safe_bool(attrs["enabled"], True):
        ctx.drop(op, "a disabled operation")
        return
    try:
        interval = pcmk_interval(attrs.get("interval", "0"))
        timeout = pcmk_interval(attrs["timeout"]) if "timeout" in attrs else ctx.op_timeout
    except ValueError as e:
        ctx.drop(op, str(e))
        return
    role = pcmk_role(attrs["role"]) if "role" in attrs else None
    if "role" in attrs and role is None:
        ctx.drop(op, f"role {attrs['role']!r}: havm monitors only started, promoted or unpromoted instances")
        return
    if name == "monitor" and interval == 0:
        ctx.drop(op, "a probe (monitor with interval 0) cannot be configured in havm; probes use the "
                     "monitor timeout")
        return
    key = "monitor_promoted" if name == "monitor" and role == "promoted" else name
    if key in ops:
        ctx.drop(op, f"a second {key} operation: havm keeps one per resource (the first)")
        return
    entry: dict[str, Any] = {}
    if interval:
        entry["interval"] = format_duration(interval)
    if timeout is not None:
        entry["timeout"] = format_duration(timeout)
    if role is not None and key != "monitor_promoted":
        entry["role"] = role
    on_fail = attrs.get("on-fail")
    if on_fail is not None:
        if on_fail.strip().lower() in ON_FAIL:
            entry["on_fail"] = on_fail.strip().lower()
        else:
            ctx.report.drop(*ctx.where(op), f"{describe(op)} on-fail={on_fail}",
                            f"havm's on_fail is one of {', '.join(ON_FAIL)}")
    for k, v in attrs.items():
        if k not in ("id", "name", "interval", "timeout", "role", "on-fail", "enabled", "description"):
            why = {"start-delay": "havm runs an operation when it is due; no start delay",
                   "requires": "havm decides from the fencing configuration what a start requires",
                   "record-pending": "havm always shows operations in flight"}.get(k, "havm has no such "
                                                                                    "operation option")
            ctx.report.drop(*ctx.where(op), f"{describe(op)} {shown(k, v)}", why)
    for sub in op:
        ctx.drop(sub, "per-operation attributes (e.g. OCF_CHECK_LEVEL) are not supported")
    ops[key] = entry


def safe_bool(v: str, default: bool) -> bool:
    try:
        return pcmk_bool(v)
    except ValueError:
        return default
