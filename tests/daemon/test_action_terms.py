"""Real havmd processes (loopback, fencing off): every action a controller sends carries
its controller term, and a node refuses to start anything for a term below the one it
promised. A controller frozen in office (SIGSTOP, a hung host) while a successor took
office, or its request still in transit, used to be obeyed: it resumed mid-transition
and its starts ran beside what the successor had placed."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from typing import Any

import pytest

from havm.commands.cluster import ApplyConfig
from havm.config.load import read_key
from havm.daemon.peers import PeerClient
from havm.errors import Conflict, UsageError
from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster

pytestmark = [pytest.mark.slow]

EXTRA = ("properties: {fencing_enabled: false}\nresources:\n  - {id: d, type: dummy}\n"
         "  - {id: spare, type: dummy, meta: {target_role: stopped}}\n")


def ask(c: LoopbackCluster, as_node: str, node: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /internal/execute to ``node``, signed with the cluster key as ``as_node``."""
    async def go() -> dict[str, Any]:
        peers = PeerClient(read_key(str(c.root / "authkey")), as_node)
        try:
            return await peers.request([c.addr[node]], 7694, "POST", "/internal/execute", body)  # type: ignore[no-any-return]
        finally:
            await peers.close()
    return asyncio.run(go())


def held_term(c: LoopbackCluster, node: str) -> int:
    found = re.findall(r"controller term (\d+) \(promised by", (c.root / node / "havmd.log").read_text())
    assert found, f"{node} never claimed a term"
    return int(found[-1])


def actions_on(c: LoopbackCluster, rsc: str) -> list[tuple[str, str]]:
    """(op, node) of every action on ``rsc`` any controller ran (every node's event log)."""
    out = []
    for name in c.names:
        path = c.root / name / "state" / "events.jsonl"
        for line in path.read_text().splitlines() if path.exists() else ():
            e = json.loads(line)
            if e["kind"] == "action" and e["fields"].get("rsc") == rsc:
                out.append((e["fields"].get("op"), e["fields"].get("target")))
    return out


def test_a_start_asked_in_a_deposed_controllers_term_is_refused_a_stop_still_runs(tmp_path):
    with loopback_cluster(tmp_path / "c", extra=EXTRA) as c:
        c.start_all()
        c.wait(lambda: c.converged() and any(r["id"] == "d" and r["nodes"] for r in c.status("n1")["resources"]),
               timeout=30, what="d started by n1")
        old = held_term(c, "n1")  # claimed before its first transition (d's start)
        c.procs["n1"].send_signal(signal.SIGSTOP)
        try:
            c.wait(lambda: c.status("n2")["controller"] == "n2" and c.converged(["n2", "n3"]),
                   what="n2 to take office")
            r = c.client("n3").run(ApplyConfig(text=c.config_text + "# n2 in office\n", by="test"))
            new = r["version"][3]
            assert r["controller"] == "n2" and new > old, (r, old)
            start = {"rsc": "spare", "agent": "havm:dummy", "action": "start", "term": old}
            with pytest.raises(Conflict, match=rf"start spare asked by n1 in controller term {old} is refused: "
                                               rf"n3 promised term {new} to a later controller"):
                ask(c, "n1", "n3", start)
            # a stop never adds a copy: it runs whatever the term (and a look too)
            assert ask(c, "n1", "n3", {**start, "action": "stop"})["rc"] == 0
            assert ask(c, "n1", "n3", {**start, "action": "monitor"})["rc"] == 7  # not running
            with pytest.raises(UsageError, match=r"'term' \(the controller term it is asked in\) must be a whole "
                                                 r"number >= 0, got None"):
                ask(c, "n1", "n3", {k: v for k, v in start.items() if k != "term"})
        finally:
            c.procs["n1"].send_signal(signal.SIGCONT)
        # n1 resumes without quorum (its peers dropped it) and stops its copy of d
        d = c.wait(lambda: c.converged() and c.status("n1")["controller"] == "n1"
                   and [r for r in c.status("n1")["resources"] if r["id"] == "d" and r["nodes"]],
                   timeout=30, what="n1 back in office, d running")
        assert len(d[0]["nodes"]) == 1, d
        assert [op for op, _ in actions_on(c, "spare")] == []  # nobody started it
