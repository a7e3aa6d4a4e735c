"""Real havmd processes: a controller taking office while the previous one's
start is under way does not start a second copy (chaos finding 4).

n2 and n3 run; n2 is the controller and starts ``d``, whose start takes
START_SLEEP seconds. While it is under way, n1 comes up and, as the
lowest-named member, takes office. The member running the start reports ``d``
"stopped" until the start ends; before the fix n1 planned from that and started
``d`` on n1 as well. Now it waits for the actions under way, then plans from
their outcome: exactly one start of ``d``, one copy. Loopback, fencing off."""

from __future__ import annotations

import json

import pytest

from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster

START_SLEEP = 6.0
RESOURCES = ("properties: {fencing_enabled: false}\nresources:\n"
             f"  - {{id: d, type: dummy, params: {{start_sleep: '{START_SLEEP}'}}}}\n")


@pytest.fixture
def cluster(tmp_path):
    with loopback_cluster(tmp_path / "c", extra=RESOURCES) as c:
        yield c


def starts_of_d(c: LoopbackCluster) -> list[str]:
    """Nodes on which some controller ran a start of d (every node's event log)."""
    out = []
    for name in c.names:
        path = c.root / name / "state" / "events.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                e = json.loads(line)
                f = e["fields"]
                if e["kind"] == "action" and f.get("op") == "start" and f.get("rsc") == "d":
                    out.append(f["target"])
    return out


def d_of(status: dict) -> dict:
    return next(r for r in status["resources"] if r["id"] == "d")


def test_a_new_controller_does_not_plan_past_a_start_under_way(cluster):
    cluster.start("n2")
    cluster.start("n3")
    # n1 is not a member and fencing is off: it counts as off; n2 starts d, slowly
    busy = cluster.wait(lambda: "start" in (r := d_of(cluster.status("n2")))["in_flight"].values() and r,
                        timeout=30, what="the start of d under way")
    assert list(busy["in_flight"].values()) == ["start"], busy
    cluster.start("n1")  # takes office (lowest name) while that start runs
    cluster.wait(lambda: cluster.status("n1")["controller"] == "n1" and cluster.converged(), timeout=START_SLEEP,
                 what="n1 the controller while the start is under way")
    assert d_of(cluster.status("n1"))["in_flight"], "the start ended before n1 took office: nothing tested"
    placed = cluster.wait(lambda: (r := d_of(cluster.status("n1")))["nodes"] and not r["in_flight"] and r,
                          timeout=30, what="d started")
    assert placed["nodes"] == list(busy["in_flight"]), placed  # where the first controller started it
    log = (cluster.root / "n1" / "havmd.log").read_text()
    assert "waiting for actions under way before planning: start d on" in log
    assert starts_of_d(cluster) == list(busy["in_flight"]), starts_of_d(cluster)  # one start, no second copy
