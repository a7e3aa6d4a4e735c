"""The acceptance of issue 6's metrics on real havmd processes (loopback, fencing off): scraped
with a read token as Prometheus would, a failover shows the node going down and the resource moving."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from havm.api.tokens import create_token
from tests.daemon.cluster_proc import loopback_cluster
from tests.daemon.waiting import wait_until
from tests.metrics.scrape import Scrape, scrape

pytestmark = [pytest.mark.slow]

RESOURCES = """\
properties:
  fencing_enabled: false
resources:
  - {id: d1, type: dummy, ops: {monitor: {interval: 500ms}}}
constraints:
  - {location: d1, node: n1, score: 100}
"""


def started_on(s: Scrape, rsc: str, node: str) -> bool:
    return s.get("havm_resource_state", resource=rsc, node=node, role="started") == 1


def test_failover_seen_in_scrapes(tmp_path: Path) -> None:
    with loopback_cluster(tmp_path / "c", extra=RESOURCES) as c:
        token = create_token(str(c.root / "tokens"), "prometheus", "read")  # daemon.api.tokens_file: "tokens"

        def s(n: str) -> Scrape:
            return scrape(c.addr[n], token=token)

        c.start_all()
        wait_until(lambda: started_on(s("n1"), "d1", "n1"), 60, "d1 started on n1 (its preferred node)")
        before = {n: s(n) for n in c.names}
        for n in c.names:
            assert before[n].get("havm_node_up", node="n1") == 1
            assert before[n].get("havm_quorum") == 1
            assert before[n].get("havm_controller_info", controller="n1") == 1
        assert not started_on(before["n2"], "d1", "n2") and not started_on(before["n3"], "d1", "n3")
        assert before["n1"].get("havm_actions_total", agent="havm:dummy", op="start", result="ok") == 1

        t_kill = time.time()
        c.kill("n1")
        series: list[tuple[str, Scrape]] = []

        def moved() -> str | None:
            for n in ("n2", "n3"):
                sc = s(n)
                series.append((n, sc))
                if started_on(sc, "d1", n):
                    return n
            return None

        new_home = wait_until(moved, 60, "d1 started on n2 or n3", every=0.1)
        with pytest.raises(OSError):
            s("n1")  # the lost node's target is gone: Prometheus' up{} turns 0
        after = {n: s(n) for n in ("n2", "n3")}
        for n in ("n2", "n3"):
            assert after[n].get("havm_node_up", node="n1") == 0 and after[n].get("havm_node_member", node="n1") == 0
            assert after[n].get("havm_quorum") == 1
            assert after[n].get("havm_controller_info", controller="n2") == 1
            assert (after[n].get("havm_events_total", kind="node.leave") or 0) >= 1
        other = "n3" if new_home == "n2" else "n2"
        assert not started_on(after[other], "d1", other)
        assert (after["n2"].get("havm_actions_total", agent="havm:dummy", op="start", result="ok") or 0) >= 1
        # in every scrape taken during the failover, d1 started elsewhere only once n1 was seen down
        first_down = min(sc.at for _n, sc in series if sc.get("havm_node_up", node="n1") == 0)
        first_moved = min(sc.at for n, sc in series if started_on(sc, "d1", n))
        assert first_down <= first_moved
        print(f"\nfailover in scrapes: n1 down after {first_down - t_kill:.2f}s, d1 started on {new_home} "
              f"after {first_moved - t_kill:.2f}s ({len(series)} scrapes)")
