"""Operator commands through the real CLI against real daemons: stop/start,
move/clear, ban, migrate (dummy supports it), standby/online, cleanup."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from havm.commands.edits import edit
from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster

RESOURCES = """\
properties:
  fencing_enabled: false
resources:
  # the VM-like one: may live-migrate
  - {id: vm1, type: dummy, meta: {allow_migrate: true, stickiness: 100}}
  - {id: d2, type: dummy, meta: {stickiness: 100}}
"""


@pytest.fixture
def cluster(tmp_path):
    with loopback_cluster(tmp_path / "c", extra=RESOURCES) as c:
        yield c


def havm(c: LoopbackCluster, *args: str, node: str = "n2") -> dict:
    out = subprocess.run([sys.executable, "-m", "havm.cli.main", "--socket", c.sock(node), *args, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


def placed(c: LoopbackCluster) -> dict[str, list[str]]:
    return {r["id"]: r["nodes"] for r in c.status("n1")["resources"]}


def test_operator_commands_end_to_end(cluster):
    cluster.start_all()
    cluster.wait(lambda: all(len(v) == 1 for v in placed(cluster).values()), timeout=30, what="started")
    home = placed(cluster)["vm1"][0]
    other = next(n for n in cluster.names if n != home)

    out = havm(cluster, "resource", "stop", "vm1")
    assert out["resource"]["state"] == "stopped" and out["resource"]["nodes"] == []
    assert "target_role: stopped" in cluster.client("n3").request("GET", "/v1/config")["text"]
    out = havm(cluster, "resource", "start", "vm1")
    assert out["resource"]["state"] == "started"

    home = placed(cluster)["vm1"][0]
    other = next(n for n in cluster.names if n != home)
    out = havm(cluster, "resource", "migrate", "vm1", other)
    assert out["resource"]["nodes"] == [other]
    log = (cluster.root / other / "havmd.log").read_text()
    assert "migrate_from vm1: rc=0" in log  # it really went through the migration phases
    out = havm(cluster, "resource", "ban", "vm1", other)
    assert other not in out["resource"]["nodes"] and out["resource"]["nodes"]
    out = havm(cluster, "resource", "clear", "vm1")
    assert "cli-" not in cluster.client("n1").request("GET", "/v1/config")["text"]

    # d2 cannot live-migrate: migrate is refused with the reason, move works
    err = subprocess.run([sys.executable, "-m", "havm.cli.main", "--socket", cluster.sock("n1"), "resource",
                          "migrate", "d2", other], capture_output=True, text=True, timeout=60)
    assert err.returncode == 2 and "allow_migrate" in err.stderr

    out = havm(cluster, "node", "standby", "n3")
    assert all("n3" not in r["nodes"] for r in cluster.status("n1")["resources"])
    assert any(n["name"] == "n3" and n["standby"] for n in cluster.status("n1")["nodes"])
    havm(cluster, "node", "online", "n3")

    out = havm(cluster, "resource", "cleanup", "d2")
    assert sorted(out["result"]["nodes"]) == ["n1", "n2", "n3"]


def test_edits_keep_comments_and_are_idempotent():
    text = "cluster: x  # the name\nnodes:\n  - name: n1  # first\n    addresses: {ring0: 10.0.0.1}\n" \
           "links:\n  - name: ring0\nresources:\n  - {id: vm1, type: vm}\n"
    once = edit(text, "resource-ban", "vm1", "n1")
    assert once == edit(once, "resource-ban", "vm1", "n1")
    assert "# the name" in once and "# first" in once
    assert "{location: vm1, id: cli-ban-vm1-n1, node: n1, score: -INFINITY}" in once
    assert edit(once, "resource-clear", "vm1") == edit(text, "resource-clear", "vm1")
    stopped = edit(text, "resource-stop", "vm1")
    assert "target_role: stopped" in stopped
    assert "target_role" not in edit(stopped, "resource-start", "vm1")
    assert "standby: true" in edit(text, "node-standby", "n1")


def test_clear_keeps_the_comment_lines_that_followed_the_constraints_it_removes():
    # chaos (migrate-* faults): a change appended as a comment after a migration's
    # cli-prefer constraint vanished when `clear` removed the constraints section with it
    text = "cluster: x\nnodes:\n  - name: n1\n    addresses: {ring0: 10.0.0.1}\n  - name: n2\n" \
           "    addresses: {ring0: 10.0.0.2}\nlinks:\n  - name: ring0\nresources:\n  - {id: vm1, type: vm}\n"
    moved = edit(text + "# --- placement ---\n", "resource-move", "vm1", "n2") + "# chaos change c0002\n"
    cleared = edit(moved, "resource-clear", "vm1")
    assert "cli-prefer" not in cleared
    assert cleared.endswith("# --- placement ---\n# chaos change c0002\n"), cleared
    assert edit(cleared, "resource-clear", "vm1") == cleared
    # a section header before the next key stays before it
    middle = moved.replace("# chaos change c0002\n", "# --- fencing ---\nfencing: {devices: []}\n")
    cleared = edit(middle, "resource-clear", "vm1")
    assert "# --- fencing ---\nfencing:" in cleared, cleared
