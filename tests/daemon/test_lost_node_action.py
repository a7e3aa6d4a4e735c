"""Real havmd processes: an action under way on a node that stops answering is
given up once the node leaves the membership, so the recovery does not wait for
the action's timeout.

``d`` prefers n3 and its start takes START_SLEEP seconds (timeout 60 s). While
n3 runs it, n3's daemon is frozen (SIGSTOP: its TCP connections stay open and
silent, as with a node that lost power or a cut cable, not refused). Before
the fix the controller awaited the request until the start's timeout + 10 s,
and nothing else was planned meanwhile; now it gives the start up when n3
leaves the membership and starts ``d`` on a member at once. Loopback, fencing off (a
lost node counts as off; with fencing on it is fenced first, as the unit test
in tests/controller shows)."""

from __future__ import annotations

import signal

import pytest

from tests.daemon.cluster_proc import loopback_cluster

START_SLEEP = 20.0  # the orphaned start on the frozen n3 ends by itself after this
RESOURCES = ("properties: {fencing_enabled: false}\nresources:\n"
             f"  - {{id: d, type: dummy, params: {{start_sleep: '{START_SLEEP}'}}, ops: {{start: {{timeout: 60}}}}}}\n"
             "constraints:\n  - {location: d, node: n3, score: 100}\n")


@pytest.fixture
def cluster(tmp_path):
    with loopback_cluster(tmp_path / "c", extra=RESOURCES) as c:
        yield c


def d_of(status: dict) -> dict:
    return next(r for r in status["resources"] if r["id"] == "d")


def test_an_action_on_a_node_that_stops_answering_does_not_hold_the_recovery(cluster):
    cluster.start_all()
    cluster.wait(lambda: d_of(cluster.status("n1"))["in_flight"].get("n3") == "start", timeout=30,
                 what="the start of d under way on n3")
    cluster.procs["n3"].send_signal(signal.SIGSTOP)
    try:
        # well before the start could end (START_SLEEP) or time out (60 s + 10 s), the recovery
        # begins on a member (a start of d there, as slow as any start of d)
        recovery = cluster.wait(lambda: {n: a for n, a in d_of(cluster.status("n1"))["in_flight"].items()
                                         if n != "n3"}, timeout=START_SLEEP / 2, what="d starting on a member")
        assert list(recovery.values()) == ["start"] and list(recovery) in (["n1"], ["n2"]), recovery
        log = (cluster.root / "n1" / "havmd.log").read_text()
        assert "n3 left the membership while start d ran there: outcome unknown" in log
    finally:
        cluster.kill("n3")  # SIGKILL: a stopped process does not act on SIGTERM
