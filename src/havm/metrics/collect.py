"""What one node exposes at ``GET /metrics``: its snapshots turned into metric families.

Pure: ``collect(MetricsInput) -> list[Family]`` reads one frozen snapshot of
each source (membership view, this node's resource report, the configuration
and its version, the recorder's counters, the alert dispatcher's counters), so
a scrape is one consistent picture and tests need no daemon.

Every node answers for itself, as Prometheus expects of a target: cluster
facts (node up, links, quorum, controller) are *this node's view* of them, and
resource state is what runs *here*. A failover is seen as: the lost node's
target stops answering, ``havm_node_up{node="<lost>"}`` goes to 0 on the
survivors, and the resource's ``havm_resource_state{role="started"}`` appears
on the target of the node that took it over. docs/metrics.md lists every name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from havm.config.schema import ClusterConfig
from havm.executor import records
from havm.membership.view import LATENESS_BOUNDS, LATENESS_LABELS, MembershipView
from havm.metrics.exposition import Family
from havm.metrics.recorder import ACTION_BUCKETS, Recorded
from havm.store import ConfigVersion

#: the roles ``havm_resource_state`` reports (one series each, 1 for the current one)
ROLES = records.ROLES


@dataclass(frozen=True)
class AlertCounts:
    deliveries: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (alert id, ok|failed) -> count
    dropped: int = 0  # events not queued because the queue was full
    queued: int = 0  # deliveries waiting now


@dataclass(frozen=True)
class MetricsInput:
    node: str
    config: ClusterConfig
    view: MembershipView
    version: ConfigVersion
    local: Mapping[str, Any]  # LocalResources.report(): {"states": {rsc: LocalState json}, "in_flight": {...}}
    recorded: Recorded
    alerts: AlertCounts
    started_at: float  # wall clock
    now: float  # wall clock
    havm_version: str = ""


def collect(inp: MetricsInput) -> list[Family]:
    return [*_daemon(inp), *_membership(inp), *_heartbeat(inp), *_resources(inp), *_recorded(inp),
            *_alerts(inp)]


def _daemon(inp: MetricsInput) -> list[Family]:
    v = inp.version
    return [
        Family("havm_build_info", "gauge", "havm's version (always 1)").add(1, version=inp.havm_version),
        Family("havm_daemon_start_time_seconds", "gauge", "When havmd started, unix time").add(inp.started_at),
        Family("havm_daemon_uptime_seconds", "gauge", "Seconds since havmd started").add(
            max(0.0, inp.now - inp.started_at)),
        Family("havm_config_epoch", "gauge", "Epoch of the configuration this node holds (grows with each "
                                             "committed change)").add(v.epoch),
        Family("havm_config_admin_epoch", "gauge", "Admin epoch of the configuration this node holds").add(
            v.admin_epoch),
        Family("havm_config_info", "gauge", "The configuration version this node holds (always 1)").add(
            1, version=v.short(), digest=v.digest),
    ]


def _membership(inp: MetricsInput) -> list[Family]:
    view, config = inp.view, inp.config
    up = Family("havm_node_up", "gauge", "1 if the node is alive (heard within deadtime) as this node sees it")
    member = Family("havm_node_member", "gauge", "1 if the node is a member of this node's partition")
    standby = Family("havm_node_standby", "gauge", "1 if the node is in standby (configured)")
    maintenance = Family("havm_node_maintenance", "gauge", "1 if the node is in maintenance (configured)")
    link_up = Family("havm_link_up", "gauge", "1 if the peer's heartbeats arrive on this link")
    peers = {p.name: p for p in view.peers}
    for n in config.nodes:
        p = peers.get(n.name)
        if n.name == inp.node:
            alive = True
        else:
            alive = p is not None and p.state in ("alive", "late")
        up.add(1 if alive else 0, node=n.name)
        member.add(1 if n.name in view.members else 0, node=n.name)
        standby.add(1 if n.standby else 0, node=n.name)
        maintenance.add(1 if n.maintenance else 0, node=n.name)
        if p is not None:
            for lk, state in p.links.items():
                link_up.add(1 if state == "up" else 0, node=n.name, link=lk)
    peers_up = Family("havm_link_peers_up", "gauge", "Peers whose heartbeats arrive on this link")
    peers_total = Family("havm_link_peers", "gauge", "Peers that should be heard on this link")
    for lv in view.links:
        peers_up.add(lv.peers_up, link=lv.name)
        peers_total.add(lv.peers_total, link=lv.name)
    controller = Family("havm_controller_info", "gauge",
                        "The controller this node follows (always 1; absent without quorum)")
    if view.controller is not None:
        controller.add(1, controller=view.controller)
    return [
        up, member, standby, maintenance, link_up, peers_up, peers_total,
        Family("havm_quorum", "gauge", "1 if this node's partition has quorum").add(1 if view.quorate else 0),
        Family("havm_quorum_votes", "gauge", "Votes of this node's partition").add(view.votes),
        Family("havm_quorum_expected_votes", "gauge", "Votes of every configured node").add(view.expected_votes),
        controller,
        Family("havm_is_controller", "gauge", "1 if this node is the controller").add(
            1 if view.controller == inp.node else 0),
    ]


def _heartbeat(inp: MetricsInput) -> list[Family]:
    view = inp.view
    send = Family("havm_heartbeat_send_lateness_seconds", "histogram",
                  "How late each heartbeat round left against its fixed schedule")
    j = view.jitter
    send.add_histogram(LATENESS_BOUNDS, [j.histogram.get(lb, 0) for lb in LATENESS_LABELS], j.total)
    recv = Family("havm_heartbeat_receive_lateness_seconds", "histogram",
                  "How late each heartbeat from a peer arrived on a link (gap since the previous one "
                  "minus keepalive; a lost heartbeat counts one keepalive late)")
    silence = Family("havm_heartbeat_silence_seconds", "gauge",
                     "Seconds since the peer's latest heartbeat on the link (absent: never heard there)")
    for p in view.peers:
        for lk, late in p.receive_lateness.items():
            recv.add_histogram(LATENESS_BOUNDS, [late.histogram.get(lb, 0) for lb in LATENESS_LABELS], late.total,
                               node=p.name, link=lk)
        for lk, age in p.link_ages.items():
            if age is not None:
                silence.add(age, node=p.name, link=lk)
    sent = Family("havm_heartbeat_packets_sent_total", "counter", "Heartbeat packets sent on the link")
    received = Family("havm_heartbeat_packets_received_total", "counter", "Valid heartbeat packets received on the link")
    lost = Family("havm_heartbeat_packets_lost_total", "counter",
                  "Heartbeats estimated lost towards this node on the link (gaps in peers' sequence numbers)")
    for lv in view.links:
        sent.add(lv.sent, link=lv.name)
        received.add(lv.received, link=lv.name)
        lost.add(lv.lost, link=lv.name)
    dropped = Family("havm_heartbeat_packets_dropped_total", "counter",
                     "Received packets dropped (forged, replayed, other cluster...), by reason")
    for reason, n in sorted(view.traffic.drops.items()):
        dropped.add(n, reason=str(reason))
    return [send, recv, silence, sent, received, lost, dropped,
            Family("havm_heartbeat_send_errors_total", "counter", "Heartbeat sends that failed").add(
                view.traffic.send_errors)]


def _resources(inp: MetricsInput) -> list[Family]:
    state = Family("havm_resource_state", "gauge",
                   "1 for the resource's current role on this node, 0 for the other roles")
    failcount = Family("havm_resource_failcount", "gauge", "The resource's fail count on this node")
    busy = Family("havm_resource_action_in_flight", "gauge", "1 while an action on the resource runs here")
    states = inp.local.get("states") or {}
    for rsc in sorted(states):
        st = states[rsc] or {}
        role = str(st.get("role") or "stopped")
        roles = ROLES if role in ROLES else (*ROLES, role)
        for r in roles:
            state.add(1 if r == role else 0, resource=rsc, node=inp.node, role=r)
        failcount.add(float(st.get("failcount") or 0), resource=rsc, node=inp.node)
    for rsc, action in sorted((inp.local.get("in_flight") or {}).items()):
        busy.add(1, resource=rsc, node=inp.node, action=str(action))
    return [state, failcount, busy]


def _recorded(inp: MetricsInput) -> list[Family]:
    rec = inp.recorded
    durations = Family("havm_action_duration_seconds", "histogram",
                       "Duration of agent actions the controller ran (on any node), by agent, op and result")
    for (agent, op, result), h in sorted(rec.action_durations.items()):
        durations.add_histogram(ACTION_BUCKETS, h.counts, h.total, agent=agent, op=op, result=result)
    actions = Family("havm_actions_total", "counter",
                     "Agent actions the controller ran, by agent, op and result (ok, failed, error: no answer)")
    for (agent, op, result), n in sorted(rec.actions.items()):
        actions.add(n, agent=agent, op=op, result=result)
    fencing = Family("havm_fencing_attempts_total", "counter",
                     "Fence device attempts this node made, by target, device and result (success: the device "
                     "confirmed the target off; failure)")
    for (target, device, result), n in sorted(rec.fencing.items()):
        fencing.add(n, target=target, device=device, result=result)
    events = Family("havm_events_total", "counter", "Events recorded in this node's event log, by kind")
    for kind, n in sorted(rec.events.items()):
        events.add(n, kind=kind)
    return [durations, actions, fencing, events]


def _alerts(inp: MetricsInput) -> list[Family]:
    deliveries = Family("havm_alert_deliveries_total", "counter", "Alert deliveries, by alert and result (ok, failed)")
    for (alert, result), n in sorted(inp.alerts.deliveries.items()):
        deliveries.add(n, alert=alert, result=result)
    return [deliveries,
            Family("havm_alert_dropped_total", "counter",
                   "Alert deliveries not queued because the queue was full").add(inp.alerts.dropped),
            Family("havm_alert_queue_length", "gauge", "Alert deliveries waiting").add(inp.alerts.queued)]
