"""What an alert receives: which events match it, and the event as JSON and as variables.

Pure (no I/O, no clock): ``matches`` applies an alert's filters to an event;
``document`` is the JSON a script reads on stdin and a webhook receives;
``environment`` the variables a script gets:

- ``HAVM_ALERT_*``: the alert (ID, RECIPIENT), the cluster, the event (NODE:
  where it was recorded, KIND, TEXT, TIME, SEQ) and every scalar field of the
  event as ``HAVM_ALERT_FIELD_<NAME>`` (lists and mappings as JSON);
- Pacemaker's ``CRM_alert_*`` (and the older ``CRM_notify_*`` copies), so an
  existing Pacemaker alert agent (alert_file.sh, alert_smtp.sh, alert_snmp.sh)
  runs unmodified: node.join/leave are *node* alerts (desc member/lost),
  ``fence`` a *fencing* alert, ``action`` and ``resource.changed`` *resource*
  alerts; other kinds keep havm's kind name, which Pacemaker agents ignore.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from typing import Any

from havm import __version__
from havm.agents.base import OCF
from havm.config.alerts import Alert
from havm.events import Event

PAYLOAD_VERSION = 1
# Pacemaker's execution status codes (enum pcmk_exec_status): the action ran (its
# rc means something), or it could not be executed
EXEC_DONE = 0
EXEC_ERROR = 4


def matches(alert: Alert, ev: Event, resources: Collection[str] = ()) -> bool:
    """``resources``: the alert's resource filter with groups and clones expanded to
    their primitives (the events name primitives)."""
    if alert.kinds and not ev.matches(kinds=alert.kinds):
        return False
    if alert.nodes and not any(ev.matches(node=n) for n in alert.nodes):
        return False
    wanted = set(resources) or set(alert.resources)
    return not wanted or ev.fields.get("rsc") in wanted


def document(alert: Alert, ev: Event, cluster: str) -> dict[str, Any]:
    return {"version": PAYLOAD_VERSION, "alert": alert.id, "recipient": alert.recipient, "cluster": cluster,
            "event": ev.to_json()}


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if v is None:
        return ""
    if isinstance(v, str | int | float):
        return str(v)
    return json.dumps(v, default=str, separators=(",", ":"))


def pacemaker_kind(kind: str) -> str:
    if kind.startswith("node."):
        return "node"
    if kind == "fence" or kind.startswith("fence."):
        return "fencing"
    if kind in ("action", "resource.changed"):
        return "resource"
    return kind


def pacemaker_variables(alert: Alert, ev: Event, node_ids: Mapping[str, int]) -> dict[str, str]:
    """Pacemaker's alert variables (names from its alert_internal table) for this event."""
    f = ev.fields
    kind = pacemaker_kind(ev.kind)
    t = ev.time
    usec = int(round((t - int(t)) * 1e6)) % 1_000_000
    out = {
        "kind": kind,
        "version": __version__,
        "recipient": alert.recipient,
        "node_sequence": str(ev.seq),
        "timestamp": time.strftime("%H:%M:%S", time.localtime(t)) + f".{usec:06d}",  # Pacemaker's default format
        "timestamp_epoch": str(int(t)),
        "timestamp_usec": str(usec),
        "node": ev.node,
        "desc": ev.text,
    }
    target = f.get("target") or f.get("node")
    if kind == "node":
        out["node"] = str(target or ev.node)
        out["nodeid"] = str(node_ids.get(out["node"], 0))
        out["desc"] = "member" if ev.kind == "node.join" else "lost"
    elif kind == "fencing":
        out["node"] = str(target or ev.node)
        out["task"] = str(f.get("action") or "off")
        out["rc"] = "0" if f.get("ok") else "1"
    elif kind == "resource":
        rc = f.get("rc", f.get("last_rc"))
        out["node"] = str(target or ev.node)
        out["rsc"] = str(f.get("rsc", ""))
        out["task"] = str(f.get("op") or "monitor")
        out["interval"] = str(int(float(f.get("interval") or 0) * 1000))
        out["target_rc"] = "0"
        out["status"] = str(EXEC_DONE if rc is not None or ev.kind == "resource.changed" else EXEC_ERROR)
        if isinstance(rc, int) and not isinstance(rc, bool):
            out["rc"] = str(rc)
            out["desc"] = OCF(rc).meaning if rc in OCF._value2member_map_ else f"rc {rc}"
        elif ev.kind == "resource.changed":
            out["desc"] = str(f.get("role", ev.text))
        duration = f.get("duration")
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            out["exec_time"] = str(int(duration * 1000))
    return out


def environment(alert: Alert, ev: Event, cluster: str, node_ids: Mapping[str, int]) -> dict[str, str]:
    """The variables a script alert gets (besides PATH and the alert's own ``env``)."""
    env = {"HAVM_ALERT_ID": alert.id, "HAVM_ALERT_RECIPIENT": alert.recipient, "HAVM_ALERT_CLUSTER": cluster,
           "HAVM_ALERT_NODE": ev.node, "HAVM_ALERT_KIND": ev.kind, "HAVM_ALERT_TEXT": ev.text,
           "HAVM_ALERT_TIME": repr(ev.time), "HAVM_ALERT_SEQ": str(ev.seq)}
    for k, v in ev.fields.items():
        name = "".join(c if c.isalnum() else "_" for c in str(k)).upper()
        env[f"HAVM_ALERT_FIELD_{name}"] = _scalar(v)
    for k, v in pacemaker_variables(alert, ev, node_ids).items():
        env[f"CRM_alert_{k}"] = v
        env[f"CRM_notify_{k}"] = v
    return env
