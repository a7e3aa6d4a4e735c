"""no_quorum_policy on real havmd processes (loopback, fencing off): a survivor left
alone without quorum stops (stop), keeps what runs and starts nothing (freeze), or
carries on as if quorate, recovering the lost nodes' resources on itself (ignore)."""

from __future__ import annotations

import time

import pytest

from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster

RESOURCES = """\
properties:
  fencing_enabled: false
  no_quorum_policy: {policy}
resources:
  - {{id: d1, type: dummy, ops: {{monitor: {{interval: 500ms}}}}}}
  - {{id: d2, type: dummy, ops: {{monitor: {{interval: 500ms}}}}}}
  - {{id: d3, type: dummy, ops: {{monitor: {{interval: 500ms}}}}}}
constraints:
  - {{location: d1, node: n1, score: 100}}
  - {{location: d2, node: n2, score: 100}}
  - {{location: d3, node: n3, score: 100}}
"""
SYNC_INTERVAL = 1.0  # havmd's control loop applies the policy at least this often


def running_on(c: LoopbackCluster, node: str) -> set[str]:
    """What runs on ``node``, from its dummies' state files (outside the daemon)."""
    return {p.stem for p in (c.root / node / "state" / "run" / "dummy").glob("*.state")}


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["stop", "freeze", "ignore"])
def test_a_lone_survivor_follows_the_no_quorum_policy(tmp_path, policy):
    with loopback_cluster(tmp_path / "c", extra=RESOURCES.format(policy=policy)) as c:
        c.start_all()
        c.wait(lambda: all(running_on(c, n) == {f"d{n[1]}"} for n in c.names), timeout=30,
               what="d1, d2, d3 on n1, n2, n3")
        c.kill("n2")
        c.kill("n3")
        c.wait(lambda: not c.status("n1")["quorum"]["quorate"], timeout=10, what="n1 loses quorum")
        if policy == "stop":
            c.wait(lambda: running_on(c, "n1") == set(), timeout=20, what="n1 stops d1")
        elif policy == "ignore":
            # as if quorate: n1 (alone, fencing off) takes over d2 and d3 too
            c.wait(lambda: running_on(c, "n1") == {"d1", "d2", "d3"}, timeout=30, what="n1 runs everything")
        else:
            # freeze: d1 keeps running and nothing else starts; the stop case above shows a
            # policy acts within a couple of control-loop rounds, we watch for five
            deadline = time.monotonic() + 5 * SYNC_INTERVAL
            while time.monotonic() < deadline:
                assert running_on(c, "n1") == {"d1"}
                time.sleep(0.2)
            st = c.status("n1")
            assert not st["quorum"]["quorate"]
            assert {r["id"]: r["nodes"] for r in st["resources"]}["d1"] == ["n1"]
