"""havm history against real havmd processes: every member's events, merged, filtered, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from havm.cli.main import main
from tests.daemon.cluster_proc import loopback_cluster
from tests.daemon.waiting import wait_until

pytestmark = [pytest.mark.slow]


def history(capsys: pytest.CaptureFixture[str], sock: str, *args: str) -> tuple[int, str, str]:
    rc = main(["--socket", sock, "history", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_history_merges_members_and_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with loopback_cluster(tmp_path / "c") as c:
        c.start_all()
        c.wait(lambda: c.converged(), timeout=30, what="3 members")
        sock = c.sock("n1")

        def started_everywhere() -> dict | None:
            rc, out, _ = history(capsys, sock, "--json", "--kind", "daemon")
            doc = json.loads(out)
            return doc if rc == 0 and {e["node"] for e in doc["events"]} == {"n1", "n2", "n3"} else None

        doc = wait_until(started_everywhere, 30, "daemon.started of every node in the history")
        assert doc["nodes"] == {"n1": "ok", "n2": "ok", "n3": "ok"}
        assert {e["kind"] for e in doc["events"]} == {"daemon.started"}
        times = [e["time"] for e in doc["events"]]
        assert times == sorted(times)  # merged by time

        c.kill("n3")
        wait_until(lambda: [e for e in json.loads(history(capsys, sock, "--json", "--kind", "node.leave")[1])
                            ["events"] if e["fields"].get("target") == "n3"], 30, "n3's loss recorded")
        rc, out, err = history(capsys, sock, "--kind", "node", "--node", "n3", "--since", "1h")
        lines = out.splitlines()
        assert rc == 0 and lines and all(" node.join " in x or " node.leave " in x for x in lines), out
        assert any("n3 left or was lost" in x for x in lines)
        assert {x.split()[2] for x in lines if "left or was lost" in x} <= {"n1", "n2"}  # recorded by survivors
        rc, out, _ = history(capsys, sock, "--limit", "2")
        assert rc == 0 and len(out.splitlines()) == 2
        rc, out, _ = history(capsys, sock, "--follow", "--count", "1", "--json", "--kind", "daemon")
        # n3 is no member any more: only the members' logs are asked
        assert rc == 0 and {json.loads(x)["node"] for x in out.splitlines()} == {"n1", "n2"}
