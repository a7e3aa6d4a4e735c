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
        assert [st["config"]["admin_epoch"], st["config"]["epoch"], st["config"]["digest"], st["config"]["term"]] == version
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


def _stale_change(text: str, above: str, epoch: int, term: int) -> dict:
    """What a deposed controller stored alone: same epoch, older term, a digest sorting above ``above``."""
    from havm.config.load import config_digest
    from havm.store import ConfigVersion, StoredConfig
    for i in range(1000):
        t = text + f"# change made by a deposed controller {i}\n"
        if config_digest(t) > above:
            return StoredConfig(ConfigVersion(0, epoch, config_digest(t), term), t, changed_by="n1").to_json()
    raise AssertionError("no text found")


def test_a_deposed_controllers_change_never_replaces_an_acknowledged_one(cluster):
    """Chaos finding 1, on real daemons: the majority's controller commits epoch E in a new
    term; the old controller's change at the same epoch (older term, higher digest) arrives
    late, pushed by the old controller (not a member any more) and by a member: both refused,
    and after the old controller returns every node holds the acknowledged change."""
    import asyncio

    from havm.config.load import read_key
    from havm.daemon.peers import PeerClient

    cluster.start_all()
    cluster.wait(cluster.converged, what="convergence")
    first = cluster.client("n1").run(ApplyConfig(text=cluster.config_text + "# one\n", by="test"))
    assert first["controller"] == "n1" and first["acked"] == ["n1", "n2", "n3"]
    cluster.procs["n1"].send_signal(signal.SIGSTOP)  # the old controller is cut off
    try:
        cluster.wait(lambda: cluster.status("n2")["controller"] == "n2" and cluster.converged(["n2", "n3"]),
                     what="n2 to take office")
        acked = cluster.client("n3").run(ApplyConfig(text=cluster.config_text + "# two\n", by="test"))
        assert acked["controller"] == "n2" and acked["acked"] == ["n2", "n3"]
        assert acked["version"][1] == first["version"][1] + 1 and acked["version"][3] > first["version"][3]
        stale = _stale_change(cluster.config_text, acked["version"][2], acked["version"][1], first["version"][3])

        async def push(as_node: str) -> dict:
            peers = PeerClient(read_key(str(cluster.root / "authkey")), as_node)
            try:
                return await peers.request([cluster.addr["n2"]], 7694, "POST", "/internal/config", stale)
            finally:
                await peers.close()

        from_old = asyncio.run(push("n1"))
        assert not from_old["adopted"] and "not a member" in from_old["reason"]
        from_member = asyncio.run(push("n3"))
        assert not from_member["adopted"] and "deposed controller" in from_member["reason"]
    finally:
        cluster.procs["n1"].send_signal(signal.SIGCONT)
    cluster.wait(cluster.converged, what="n1 back")
    cluster.wait(lambda: all(cluster.status(n)["config"]["digest"] == acked["version"][2] for n in cluster.names),
                 what="every node on the acknowledged change")
    assert cluster.client("n1").request("GET", "/v1/config")["text"] == cluster.config_text + "# two\n"
