"""Real havmd processes (loopback, fencing off): actions under way when the
cluster changes. ``d`` is a dummy whose start takes a while (``start_sleep``);
each test changes the cluster while that start runs.

- A controller taking office during the previous one's start (chaos finding 5):
  the member running it reports ``d`` "stopped" until the start ends; planning
  from that started a second copy. It now waits for the actions under way.
- A node that stops answering during the start (SIGSTOP: its TCP connections
  stay open and silent, as with a power cut or a cut cable, not refused): the
  controller awaited the request until the start's timeout + 10 s, planning
  nothing meanwhile; it now gives it up once the node leaves the membership
  (its outcome unknown, the node counts as unclean; off here, fencing being
  off; with fencing on it is fenced first: tests/controller).
- A node asked to stop (SIGTERM) during the start: a node that leaves cleanly
  is taken as holding nothing, so it refuses new starts, waits for the actions
  under way, stops what runs, then says LEAVE; it used to leave with ``d``
  coming up behind its stop sweep.
"""

from __future__ import annotations

import json
import signal

from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster


def d_config(start_sleep: float, prefer: str | None = None, start_timeout: float | None = None) -> str:
    ops = f", ops: {{start: {{timeout: {start_timeout}}}}}" if start_timeout else ""
    text = ("properties: {fencing_enabled: false}\nresources:\n"
            f"  - {{id: d, type: dummy, params: {{start_sleep: '{start_sleep}'}}{ops}}}\n")
    if prefer:
        text += f"constraints:\n  - {{location: d, node: {prefer}, score: 100}}\n"
    return text


def d_of(c: LoopbackCluster, node: str) -> dict:
    return next(r for r in c.status(node)["resources"] if r["id"] == "d")


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


def test_a_new_controller_does_not_plan_past_a_start_under_way(tmp_path):
    start_sleep = 6.0
    with loopback_cluster(tmp_path / "c", extra=d_config(start_sleep)) as c:
        c.start("n2")
        c.start("n3")
        # n1 is not a member and fencing is off: it counts as off; n2 starts d, slowly
        busy = c.wait(lambda: "start" in (r := d_of(c, "n2"))["in_flight"].values() and r, timeout=30,
                      what="the start of d under way")
        assert list(busy["in_flight"].values()) == ["start"], busy
        c.start("n1")  # takes office (lowest name) while that start runs
        c.wait(lambda: c.status("n1")["controller"] == "n1" and c.converged(), timeout=start_sleep,
               what="n1 the controller while the start is under way")
        assert d_of(c, "n1")["in_flight"], "the start ended before n1 took office: nothing tested"
        waits = c.wait(lambda: c.status("n3")["controller_waiting"], timeout=start_sleep,
                       what="the controller's wait shown in status")
        assert any(w.startswith("start d on n") for w in waits), waits
        placed = c.wait(lambda: (r := d_of(c, "n1"))["nodes"] and not r["in_flight"] and r, timeout=30,
                        what="d started")
        assert placed["nodes"] == list(busy["in_flight"]), placed  # where the first controller started it
        log = (c.root / "n1" / "havmd.log").read_text()
        assert "waiting for actions under way before planning: start d on" in log
        assert starts_of_d(c) == list(busy["in_flight"]), starts_of_d(c)  # one start, no second copy


def test_an_action_on_a_node_that_stops_answering_does_not_hold_the_recovery(tmp_path):
    start_sleep = 10.0  # the orphaned starts (frozen n3's, the recovery's) end by themselves after this
    with loopback_cluster(tmp_path / "c", extra=d_config(start_sleep, prefer="n3", start_timeout=60)) as c:
        c.start_all()
        c.wait(lambda: d_of(c, "n1")["in_flight"].get("n3") == "start", timeout=30,
               what="the start of d under way on n3")
        c.procs["n3"].send_signal(signal.SIGSTOP)
        try:
            # well before the start could end or time out (60 s + 10 s), the recovery begins
            # on a member (a start of d there, as slow as any start of d)
            recovery = c.wait(lambda: {n: a for n, a in d_of(c, "n1")["in_flight"].items() if n != "n3"},
                              timeout=start_sleep / 2, what="d starting on a member")
            assert list(recovery.values()) == ["start"] and list(recovery) in (["n1"], ["n2"]), recovery
            log = (c.root / "n1" / "havmd.log").read_text()
            assert "n3 left the membership while start d ran there: outcome unknown" in log
        finally:
            # SIGKILL: a stopped process does not act on SIGTERM, and a clean stop would wait
            # for the recovery's slow start
            for name in list(c.procs):
                c.kill(name)


def test_a_node_stopping_during_a_start_stops_that_resource_before_it_leaves(tmp_path):
    with loopback_cluster(tmp_path / "c", extra=d_config(3.0, prefer="n3")) as c:
        c.start_all()
        c.wait(lambda: d_of(c, "n1")["in_flight"].get("n3") == "start", timeout=30,
               what="the start of d under way on n3")
        c.kill("n3", signal.SIGTERM)  # waits for the daemon to exit
        state_files = sorted(str(p.relative_to(c.root)) for p in (c.root / "n3").rglob("d.state"))
        assert state_files == [], f"n3 left with d running: {state_files}"
        log = (c.root / "n3" / "havmd.log").read_text()
        assert "waiting for start d to end before stopping" in log and "stopping d before leaving" in log
        placed = c.wait(lambda: (r := d_of(c, "n1"))["nodes"] and not r["in_flight"] and r, timeout=30,
                        what="d started on a member")
        assert placed["nodes"] in (["n1"], ["n2"]), placed
