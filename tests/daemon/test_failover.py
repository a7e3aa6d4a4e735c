"""Real havmd processes keep dummy resources running: placement, node loss,
monitor failure and restart in place, loss of quorum. Loopback, fencing off
(the lab tests cover fencing)."""

from __future__ import annotations

import os

import pytest

from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster

RESOURCES = """\
properties:
  fencing_enabled: false
resources:
  - {id: d1, type: dummy, ops: {monitor: {interval: 500ms}}}
  - {id: d2, type: dummy, ops: {monitor: {interval: 500ms}}, meta: {migration_threshold: 2}}
  - group: g1
    resources:
      - {id: g1a, type: dummy}
      - {id: g1b, type: dummy}
constraints:
  - {location: d1, node: n1, score: 100}
"""


@pytest.fixture
def cluster(tmp_path):
    with loopback_cluster(tmp_path / "c", extra=RESOURCES) as c:
        yield c


def where(c: LoopbackCluster, name: str | None = None) -> dict[str, list[str]]:
    st = c.status(name or next(iter(c.procs)))
    return {r["id"]: r["nodes"] for r in st["resources"]}


def all_placed(c: LoopbackCluster, name: str | None = None) -> dict[str, list[str]] | None:
    w = where(c, name)
    return w if all(len(v) == 1 for v in w.values()) else None


def test_placement_failover_and_never_twice(cluster):
    cluster.start_all()
    placed = cluster.wait(lambda: all_placed(cluster), timeout=30, what="every resource started")
    assert placed["d1"] == ["n1"]  # location preference
    assert placed["g1a"] == placed["g1b"]  # a group runs on one node
    victim = placed["g1a"][0]
    cluster.kill(victim)
    survivor = next(n for n in cluster.names if n != victim)
    moved = cluster.wait(lambda: (w := all_placed(cluster, survivor)) and victim not in sum(w.values(), []) and w,
                         timeout=30, what=f"resources of {victim} recovered")
    assert moved["g1a"] == moved["g1b"]
    # the state files prove each resource is active on exactly one node
    for rsc in ("d1", "d2", "g1a", "g1b"):
        holders = [n for n in cluster.names if n != victim
                   and os.path.exists(cluster.root / n / "state" / "run" / "dummy" / f"{rsc}.state")]
        assert len(holders) == 1, (rsc, holders)


def test_monitor_failure_restarts_in_place_then_moves_after_threshold(cluster):
    cluster.start_all()
    placed = cluster.wait(lambda: all_placed(cluster), timeout=30, what="every resource started")
    home = placed["d2"][0]
    state_file = cluster.root / home / "state" / "run" / "dummy" / "d2.state"
    state_file.unlink()  # d2 dies behind havm's back

    def d2_back() -> dict | None:
        d2 = next(r for r in cluster.status(home)["resources"] if r["id"] == "d2")
        # restarted = running again after the monitor counted the failure
        return d2 if d2["nodes"] and d2["failcounts"] and not d2["in_flight"] else None

    d2 = cluster.wait(d2_back, timeout=30, what="d2 restarted")
    assert d2["nodes"] == [home] and d2["failcounts"] == {home: 1}  # in place, one failure counted
    assert state_file.exists()
    state_file.unlink()  # second failure reaches migration_threshold 2: it moves away
    moved = cluster.wait(lambda: (w := where(cluster)["d2"]) and w != [home] and w, timeout=20,
                         what="d2 moved after the threshold")
    assert len(moved) == 1 and moved[0] != home


def test_minority_partition_stops_its_resources(cluster):
    cluster.start_all()
    cluster.wait(lambda: all_placed(cluster), timeout=30, what="every resource started")
    # leave only n1: kill n2 and n3 (a survivor alone is a minority)
    cluster.kill("n2")
    cluster.kill("n3")
    cluster.wait(lambda: not cluster.status("n1")["quorum"]["quorate"], timeout=10, what="n1 loses quorum")
    cluster.wait(lambda: where(cluster, "n1") and all(v == [] for v in where(cluster, "n1").values()),
                 timeout=20, what="n1 stops everything")
    assert not list((cluster.root / "n1" / "state" / "run" / "dummy").glob("*.state"))


def test_a_daemon_restarted_alone_stops_what_still_runs_there(cluster):
    cluster.start_all()
    placed = cluster.wait(lambda: all_placed(cluster), timeout=30, what="every resource started")
    home = placed["d1"][0]
    # the other two go away, and home's daemon restarts (its resources keep running):
    # it never has quorum in its new life, and must still stop them
    for n in cluster.names:
        if n != home:
            cluster.kill(n)
    cluster.kill(home)
    run = cluster.root / home / "state" / "run" / "dummy"
    assert list(run.glob("*.state")), "the resources should still run after the daemon died"
    cluster.start(home)
    cluster.wait(lambda: not list(run.glob("*.state")), timeout=30, what=f"{home} to stop everything")
    assert not cluster.status(home)["quorum"]["quorate"]
