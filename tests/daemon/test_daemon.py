"""Real havmd processes on loopback: convergence, config replication, restart of all."""

from __future__ import annotations

import signal

import pytest

from havm.commands.cluster import ApplyConfig
from havm.errors import ConfigError, Conflict
from tests.daemon.cluster_proc import loopback_cluster


@pytest.fixture
def cluster(tmp_path):
    with loopback_cluster(tmp_path / "c") as c:
        yield c


def test_three_daemons_converge_and_agree(cluster):
    cluster.start_all()
    cluster.wait(cluster.converged, what="3 nodes to converge")
    sts = [cluster.status(n) for n in cluster.names]
    assert {s["controller"] for s in sts} == {"n1"}
    assert {s["config"]["version"] for s in sts} == {sts[0]["config"]["version"]}
    for s in sts:
        assert [n["state"] for n in s["nodes"]] == ["online"] * 3
        assert s["quorum"] == {**s["quorum"], "quorate": True, "votes": 3, "expected_votes": 3}


def test_config_change_reaches_all_and_survives_restart_of_all(cluster):
    cluster.start_all()
    cluster.wait(cluster.converged, what="convergence")
    new_text = cluster.config_text.replace("initdead: 2.0", "initdead: 2.5")
    # submitted to a non-controller: forwarded to the controller
    result = cluster.client("n3").run(ApplyConfig(text=new_text, by="test"))
    assert result["changed"] and result["controller"] == "n1"
    assert result["acked"] == ["n1", "n2", "n3"]
    version = result["version"]
    cluster.wait(lambda: all(cluster.status(n)["config"]["epoch"] == version[1] for n in cluster.names),
                 what="all nodes on the new epoch")
    # stale base epoch: refused, nothing changes
    with pytest.raises(Conflict):
        cluster.client("n2").run(ApplyConfig(text=new_text.replace("2.5", "3.0"), base_epoch=[0, 0]))
    # invalid config: refused with the errors, nothing changes
    with pytest.raises(ConfigError) as ei:
        cluster.client("n2").run(ApplyConfig(text=new_text.replace("deadtime: 0.6", "deadtime: 0.1")))
    assert "deadtime" in str(ei.value)
    # restart every node (power cut), they come back with the change
    for n in cluster.names:
        cluster.kill(n, signal.SIGKILL)
    cluster.start_all()
    cluster.wait(cluster.converged, what="re-convergence after restart of all")
    for n in cluster.names:
        st = cluster.status(n)
        assert [st["config"]["admin_epoch"], st["config"]["epoch"], st["config"]["digest"]] == version
    assert cluster.client("n1").request("GET", "/v1/config")["text"] == new_text


def test_rejoining_node_catches_up(cluster):
    cluster.start_all()
    cluster.wait(cluster.converged, what="convergence")
    cluster.kill("n3")
    cluster.wait(lambda: cluster.converged(["n1", "n2"]), what="n3 gone")
    new_text = cluster.config_text.replace("initdead: 2.0", "initdead: 3.0")
    r = cluster.client("n2").run(ApplyConfig(text=new_text))
    assert r["acked"] == ["n1", "n2"] and r["missing"] == []
    cluster.start("n3")
    cluster.wait(lambda: cluster.status("n3")["config"]["epoch"] == r["version"][1], what="n3 catch-up")
    cluster.wait(cluster.converged, what="n3 back")
