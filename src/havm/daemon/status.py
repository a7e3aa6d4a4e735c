"""Build the status document (schema 1, docs/status.md) from one node's snapshots.

Pure: the membership view, the stored configuration and the peers' advertised
versions in, a JSON-ready dict out. ``havm status`` renders it; ``--json``
prints it as is, so its keys are a contract: add, never rename.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from havm.config.resources import walk_primitives
from havm.config.schema import ClusterConfig
from havm.controller.catalog import catalog
from havm.membership.view import MembershipView
from havm.store import ConfigVersion, StoredConfig

SCHEMA = 1


def build_status(config: ClusterConfig, node: str, view: MembershipView, stored: StoredConfig,
                 peer_versions: Mapping[str, ConfigVersion], started_at: float, now: float,
                 resources: list[dict[str, Any]] | None = None,
                 fencing: dict[str, Any] | None = None) -> dict[str, Any]:
    version = stored.version
    in_sync = all(v == version for v in peer_versions.values())
    nodes = []
    for n in config.nodes:
        if n.name == node:
            nodes.append({"name": n.name, "state": "online", "self": True, "member": True, "late": False,
                          "last_heard_s": 0.0, "links": {lk.name: "up" for lk in config.links},
                          "generation": view.generation, "restarts": 0,
                          "config_version": version.short(), "standby": n.standby,
                          "maintenance": n.maintenance})
            continue
        try:
            p = view.peer(n.name)
        except KeyError:
            nodes.append({"name": n.name, "state": "unknown", "self": False, "member": False, "late": False,
                          "last_heard_s": None, "links": {}, "generation": None, "restarts": 0,
                          "config_version": None, "standby": n.standby, "maintenance": n.maintenance})
            continue
        pv = peer_versions.get(n.name)
        state = {"alive": "online", "late": "online", "dead": "offline"}.get(p.state, p.state)
        if p.left:
            state = "stopped"
        nodes.append({"name": n.name, "state": state, "self": False, "member": p.member,
                      "late": p.state == "late", "last_heard_s": p.last_heard_age, "links": dict(p.links),
                      "generation": p.generation, "restarts": p.restarts,
                      "config_version": pv.short() if pv else None, "standby": n.standby,
                      "maintenance": n.maintenance})
    links = []
    for lk, cfg_link in zip(view.links, config.links, strict=False):
        state = "up" if lk.peers_up == lk.peers_total else ("down" if lk.peers_up == 0 and lk.peers_total else "degraded")
        links.append({"name": lk.name, "mode": lk.mode, "port": cfg_link.port, "state": state,
                      "peers_up": lk.peers_up, "peers_total": lk.peers_total, "sent": lk.sent,
                      "received": lk.received, "lost": lk.lost})
    t = view.traffic
    return {
        "schema": SCHEMA,
        "cluster": config.cluster,
        "node": node,
        "time": now,
        "uptime_s": round(now - started_at, 3),
        "generation": view.generation,
        "quorum": {"quorate": view.quorate, "votes": view.votes, "expected_votes": view.expected_votes,
                   "reason": view.quorum_reason, "two_node": config.quorum.two_node,
                   "tiebreaker": config.quorum.tiebreaker.type},
        "controller": view.controller,
        "view_agreed": view.agreed,
        "members": list(view.members),
        "config": {"version": version.short(), "admin_epoch": version.admin_epoch, "epoch": version.epoch,
                   "term": version.term, "digest": version.digest, "changed_by": stored.changed_by, "changed_at": stored.changed_at,
                   "in_sync": in_sync},
        "nodes": nodes,
        "links": links,
        "packets": {"sent": t.sent_packets, "received": t.received_packets, "bytes_sent": t.sent_bytes,
                    "bytes_received": t.received_bytes, "send_errors": t.send_errors, "dropped": dict(t.drops)},
        "heartbeat": {"keepalive_s": config.timing.keepalive, "deadtime_s": config.timing.deadtime,
                      "send_jitter_ms": {"median": view.jitter.median * 1000, "p99": view.jitter.p99 * 1000,
                                         "max": view.jitter.max * 1000, "count": view.jitter.count}},
        "resources": resources or [],
        "fencing": {"devices": [d.id for d in config.fencing.devices], "history": [], "failing": [],
                    **(fencing or {})},
    }


def resources_view(config: ClusterConfig, reports: Mapping[str, Mapping[str, Any]],
                   controller: Any = None) -> list[dict[str, Any]]:
    """Per configured primitive: where it runs, where it failed, fail counts, what is in flight,
    and a live migration under way (``migrating``: from, to; once the source's copy is stale
    and the target's not yet confirmed, the state is "migrating" rather than "stopped")."""
    out = []
    for rsc, run in catalog(config).items():
        running, failed, failcounts, busy = [], [], {}, {}
        incoming, stale = [], []
        for node, rep in sorted(reports.items()):
            st = rep.get("states", {}).get(rsc)
            if st:
                if st.get("role") in ("started", "promoted"):
                    running.append(node)
                elif st.get("role") in ("failed", "stop-failed"):
                    failed.append(node)
                elif st.get("role") == "incoming":
                    incoming.append(node)
                elif st.get("role") == "migrated":
                    stale.append(node)
                if st.get("failcount"):
                    failcounts[node] = st["failcount"]
            action = rep.get("in_flight", {}).get(rsc)
            if action:
                busy[node] = action
        promoted = [n for n, rep in sorted(reports.items())
                    if rep.get("states", {}).get(rsc, {}).get("role") == "promoted"]
        state = "started" if running else ("failed" if failed else ("migrating" if incoming or stale else "stopped"))
        if len(running) > 1 and not _is_clone(config, rsc):
            state = "MULTIPLE"  # never expected: shown loudly
        sources = stale or running
        migrating = ({"from": sources[0] if len(sources) == 1 else None, "to": incoming[0]}
                     if len(incoming) == 1 else None)
        out.append({"id": rsc, "agent": run.agent, "state": state,
                    "node": running[0] if len(running) == 1 else (running or None),
                    "nodes": running, "promoted": promoted, "failed_on": failed, "failcounts": failcounts,
                    "in_flight": busy, "migrating": migrating})
    return out


def _is_clone(config: ClusterConfig, rsc: str) -> bool:
    return any(p.id == rsc and clone is not None for p, _group, clone in walk_primitives(list(config.resources)))
