"""GET /metrics' text: valid Prometheus exposition (parsed by prometheus_client), with the right values."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from havm.clock import ManualClock
from havm.events import EventLog
from havm.metrics.collect import AlertCounts, MetricsInput, collect
from havm.metrics.exposition import Family, render
from havm.metrics.recorder import MetricsRecorder
from havm.store import ConfigVersion
from tests.membership.membership_harness import Cluster, make_config


def parse(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """family name -> [(sample name, labels, value)]; raises on anything malformed."""
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = [(s.name, dict(s.labels), s.value) for s in fam.samples]
    return out


def value(fams: dict, sample: str, **labels: str) -> float:
    family = max((f for f in fams if sample == f or sample.startswith(f + "_")), key=len)
    hits = [v for name, lb, v in fams[family] if name == sample and all(lb.get(k) == x for k, x in labels.items())]
    assert len(hits) == 1, (sample, labels, fams[family])
    return hits[0]


def test_render_escapes_and_builds_cumulative_buckets() -> None:
    text = render([
        Family("x_info", "gauge", 'help with \\ and\nnewline').add(1, path='a"b\\c\nd'),
        Family("x_seconds", "histogram", "h").add_histogram((0.1, 1.0), [2, 3, 1], 4.5, op="start"),
        Family("x_total", "counter", "c").add(7),
    ])
    assert '# HELP x_info help with \\\\ and\\nnewline' in text
    assert 'x_info{path="a\\"b\\\\c\\nd"} 1' in text
    fams = parse(text)
    assert value(fams, "x_info", path='a"b\\c\nd') == 1
    assert [(lb["le"], v) for n, lb, v in fams["x_seconds"] if n == "x_seconds_bucket"] == [
        ("0.1", 2), ("1", 5), ("+Inf", 6)]
    assert value(fams, "x_seconds_count", op="start") == 6 and value(fams, "x_seconds_sum", op="start") == 4.5
    assert value(fams, "x_total") == 7


@pytest.mark.parametrize("bad", [lambda: Family("2bad", "gauge", ""), lambda: Family("x_count", "counter", ""),
                                 lambda: Family("x", "gauge", "").add(1, **{"__x": "1"}),
                                 lambda: Family("x", "histogram", "").add_histogram((1.0,), [1], 0.0)])
def test_programming_errors_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        bad()


def test_a_family_appears_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        render([Family("a", "gauge", ""), Family("a", "gauge", "")])


def test_collect_from_real_snapshots() -> None:
    c = Cluster(make_config(nodes=3, links=2))
    c.run(8.0)
    c.kill("n3")
    c.run(4.0)
    view = c.view("n1")
    config = c.config
    clock = ManualClock(start=0.0, wall_offset=1000.0)
    events = EventLog("n1", None, clock)
    rec = MetricsRecorder(events, agent_of=lambda rsc: {"vm1": "havm:qemu"}.get(rsc))
    events.emit("node.leave", "n3 left or was lost", target="n3")
    events.emit("action", "start vm1 on n2: ok", rsc="vm1", op="start", target="n2", ok=True, rc=0, duration=0.3)
    events.emit("action", "start vm1 on n1: failed", rsc="vm1", op="start", target="n1", ok=False, rc=1,
                duration=12.0)
    events.emit("action", "stop vm1 on n3: unreachable", rsc="vm1", op="stop", target="n3", ok=False, rc=None)
    events.emit("fence", "fencing n3 through ipmi: FAILED", target="n3", device="ipmi", ok=False, rc=1)
    events.emit("fence", "fencing n3 through pdu: confirmed off", target="n3", device="pdu", ok=True, rc=0)
    local = {"states": {"vm1": {"rsc": "vm1", "role": "started", "failcount": 1},
                        "ip1": {"rsc": "ip1", "role": "stopped", "failcount": 0}},
             "in_flight": {"ip1": "start"}}
    inp = MetricsInput(node="n1", config=config, view=view, version=ConfigVersion(0, 4, "ab" * 32), local=local,
                       recorded=rec.snapshot(), alerts=AlertCounts({("page", "ok"): 2, ("hook", "failed"): 1}, 3, 0),
                       started_at=1000.0, now=1042.5, havm_version="0.1.0")
    fams = parse(render(collect(inp)))
    assert value(fams, "havm_node_up", node="n1") == 1 and value(fams, "havm_node_up", node="n2") == 1
    assert value(fams, "havm_node_up", node="n3") == 0 and value(fams, "havm_node_member", node="n3") == 0
    assert value(fams, "havm_link_up", node="n2", link="l1") == 1
    assert value(fams, "havm_link_up", node="n3", link="l0") == 0
    assert value(fams, "havm_quorum") == 1 and value(fams, "havm_quorum_votes") == 2
    assert value(fams, "havm_controller_info", controller="n1") == 1 and value(fams, "havm_is_controller") == 1
    assert value(fams, "havm_config_epoch") == 4
    assert value(fams, "havm_daemon_uptime_seconds") == 42.5
    assert value(fams, "havm_resource_state", resource="vm1", node="n1", role="started") == 1
    assert value(fams, "havm_resource_state", resource="vm1", node="n1", role="stopped") == 0
    assert value(fams, "havm_resource_state", resource="ip1", node="n1", role="stopped") == 1
    assert value(fams, "havm_resource_failcount", resource="vm1", node="n1") == 1
    assert value(fams, "havm_resource_action_in_flight", resource="ip1", node="n1", action="start") == 1
    ok = {"agent": "havm:qemu", "op": "start", "result": "ok"}
    assert value(fams, "havm_action_duration_seconds_count", **ok) == 1
    assert value(fams, "havm_action_duration_seconds_bucket", le="0.5", **ok) == 1
    assert value(fams, "havm_action_duration_seconds_bucket", le="0.25", **ok) == 0
    assert value(fams, "havm_action_duration_seconds_sum", agent="havm:qemu", op="start", result="failed") == 12.0
    assert value(fams, "havm_actions_total", agent="havm:qemu", op="stop", result="error") == 1
    assert value(fams, "havm_fencing_attempts_total", target="n3", device="ipmi", result="failure") == 1
    assert value(fams, "havm_fencing_attempts_total", target="n3", device="pdu", result="success") == 1
    assert value(fams, "havm_events_total", kind="action") == 3
    assert value(fams, "havm_alert_deliveries_total", alert="hook", result="failed") == 1
    assert value(fams, "havm_alert_dropped_total") == 3
    # heartbeats: every round counted, buckets cumulative, the dead peer's silence growing
    sent = value(fams, "havm_heartbeat_send_lateness_seconds_count")
    assert sent == view.jitter.count and sent > 0
    assert value(fams, "havm_heartbeat_send_lateness_seconds_bucket", le="+Inf") == sent
    recv = value(fams, "havm_heartbeat_receive_lateness_seconds_count", node="n2", link="l0")
    assert recv > 10 and value(fams, "havm_heartbeat_receive_lateness_seconds_bucket", node="n2", link="l0",
                               le="0.1") == recv
    assert value(fams, "havm_heartbeat_silence_seconds", node="n3", link="l0") >= 3.9
    assert value(fams, "havm_heartbeat_silence_seconds", node="n2", link="l0") <= 0.5 + c.STEP
    assert not math.isnan(value(fams, "havm_heartbeat_packets_sent_total", link="l0"))
