"""Real havmd processes honour node_action_limit: the controller never runs two
starts on one node at once. Loopback, fencing off, dummy resources whose every
action takes half a second (op_sleep), so actions that overlapped would overlap
by about that much; windows come from the controller's event log (each action's
end and duration)."""

from __future__ import annotations

import json

import pytest

from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster

SLEEP = 0.5
RESOURCES = "properties: {fencing_enabled: false, node_action_limit: 1}\nresources:\n" + "".join(
    f"  - {{id: d{k}, type: dummy, params: {{op_sleep: '{SLEEP}'}}}}\n" for k in range(6))


@pytest.fixture
def cluster(tmp_path):
    with loopback_cluster(tmp_path / "c", extra=RESOURCES) as c:
        yield c


def start_windows(c: LoopbackCluster) -> dict[str, list[tuple[float, float]]]:
    """node -> (began, ended) of every start the controllers ran there, by wall clock."""
    out: dict[str, list[tuple[float, float]]] = {}
    for name in c.names:
        path = c.root / name / "state" / "events.jsonl"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            e = json.loads(line)
            f = e["fields"]
            if e["kind"] == "action" and f.get("op") == "start" and f.get("ok"):
                out.setdefault(f["target"], []).append((e["time"] - f["duration"], e["time"]))
    return out


def test_one_action_at_a_time_per_node(cluster):
    cluster.start_all()
    placed = cluster.wait(lambda: (w := {r["id"]: r["nodes"] for r in cluster.status("n1")["resources"]})
                          and all(len(v) == 1 for v in w.values()) and w, timeout=40, what="every resource started")
    per_node = {n: sum(v == [n] for v in placed.values()) for n in cluster.names}
    assert max(per_node.values()) >= 2, per_node  # some node got two starts: the limit had work to do
    windows = start_windows(cluster)
    assert sum(len(w) for w in windows.values()) == 6, windows
    for node, ws in windows.items():
        ws.sort()
        for (_, end), (begin, _) in zip(ws, ws[1:], strict=False):
            # sequential starts may appear to overlap by the HTTP round trip (the event's time is
            # taken on the controller); overlapping starts would overlap by about SLEEP
            assert begin > end - SLEEP / 2, (node, ws)
    logs = "".join((cluster.root / n / "havmd.log").read_text() for n in cluster.names)
    assert "waited for a free slot (batch_limit 16, node_action_limit 1, migration_limit -1)" in logs
