"""The REST API of real havmd processes (loopback cluster): a token moves a resource through a
non-controller node; anonymous and read-only writes change nothing; schemathesis finds no 500."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from havm.api.tokens import create_token
from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster

RESOURCES = """\
properties:
  fencing_enabled: false
resources:
  - {id: vm1, type: dummy, meta: {allow_migrate: true, stickiness: 100}}
  - {id: d2, type: dummy, meta: {stickiness: 100}}
  - group: web
    resources:
      - {id: ip1, type: dummy}
      - {id: site, type: dummy}
"""


class Rest:
    def __init__(self, c: LoopbackCluster, node: str, token: str | None) -> None:
        self.base = f"http://{c.addr[node]}:{7694}"
        self.token = token

    def __call__(self, method: str, path: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        h = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, method=method, headers=h,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null"), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null"), dict(e.headers)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LoopbackCluster, dict[str, str]]]:
    with loopback_cluster(tmp_path / "c", extra=RESOURCES) as c:
        tokens = {role: create_token(str(c.root / "tokens"), f"t-{role}", role) for role in ("read", "admin")}
        c.start_all()
        c.wait(lambda: c.converged() and all(r["nodes"] for r in c.status("n1")["resources"]), timeout=40,
               what="cluster up, resources started")
        yield c, tokens


def test_move_through_a_non_controller_node_with_a_token(cluster: tuple[LoopbackCluster, dict[str, str]]) -> None:
    c, tokens = cluster
    controller = c.status("n1")["controller"]
    door = next(n for n in c.names if n != controller)  # writes are forwarded from here
    admin, read, anon = Rest(c, door, tokens["admin"]), Rest(c, door, tokens["read"]), Rest(c, door, None)
    status, vm1, _ = read("GET", "/v1/resources/vm1")
    assert status == 200 and vm1["kind"] == "primitive"
    home = vm1["status"]["node"]
    target = next(n for n in c.names if n != home)

    assert anon("POST", "/v1/resources/vm1/move", {"node": target})[0] == 401
    assert read("POST", "/v1/resources/vm1/move", {"node": target})[0] == 403
    assert c.status("n1")["config"]["epoch"] == 0  # neither changed anything

    status, result, _ = admin("POST", "/v1/resources/vm1/move", {"node": target})
    assert status == 200 and result["changed"] and result["controller"] == controller
    c.wait(lambda: read("GET", "/v1/resources/vm1")[1]["status"]["nodes"] == [target], timeout=30,
           what=f"vm1 on {target}")
    _, cfg, hdrs = read("GET", "/v1/config")
    assert cfg["changed_by"] == "token:t-admin" and "cli-prefer-vm1" in cfg["text"]

    # optimistic concurrency against the real controller: a stale base is refused, nothing changes
    stale = [cfg["admin_epoch"], cfg["epoch"] - 1]
    status, err, _ = admin("PUT", "/v1/config", {"text": cfg["text"] + "# edit\n", "base_epoch": stale})
    assert status == 409 and err["error"]["code"] == "conflict"
    status, _, _ = admin("PUT", "/v1/config", {"text": cfg["text"] + "# edit\n"}, {"If-Match": hdrs["ETag"]})
    assert status == 200 and c.status("n1")["config"]["epoch"] == cfg["epoch"] + 1

    # the history merges every member's events: the migration's steps ran on two nodes
    _, hist, _ = read("GET", "/v1/history?resource=vm1")
    assert hist["nodes"] == {n: "ok" for n in c.names}
    ops = {(e["fields"].get("op"), e["fields"].get("target")) for e in hist["events"] if e["kind"] == "action"}
    assert ("migrate_to", home) in ops and ("migrate_from", target) in ops


def schemathesis(c: LoopbackCluster, token: str | None, examples: int, seed: int) -> tuple[int, str]:
    cmd = [str(Path(sys.executable).parent / "st"), "run", f"http://{c.addr['n2']}:7694/v1/openapi.json",
           "--checks", "not_a_server_error", "--max-examples", str(examples), "--seed", str(seed),
           "--exclude-path", "/v1/events/stream", "--request-timeout", "30", "-w", "1",
           "--phases", "examples,coverage,fuzzing"]  # stateful runs until a time budget: not for CI
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=c.root)  # its cache stays there
    return out.returncode, out.stdout + out.stderr


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(cluster: tuple[LoopbackCluster, dict[str, str]]) -> None:
    """Bounded for CI (a few examples per operation); docs/api.md gives a longer run's figures."""
    c, tokens = cluster
    for who in (None, "read"):  # anonymous and read-only: no write may get through
        rc, out = schemathesis(c, tokens[who] if who else None, 5, 1)
        assert rc == 0, out[-4000:]
        assert c.status("n1")["config"]["epoch"] == 0, f"{who or 'anonymous'} changed the configuration"
    rc, out = schemathesis(c, tokens["admin"], 5, 1)
    assert rc == 0, out[-4000:]
    m = re.search(r"(\d+) generated, (\d+) passed", out)
    assert m and int(m.group(1)) > 100 and m.group(1) == m.group(2), out[-2000:]


def test_event_stream_of_a_real_daemon_and_a_prompt_stop(cluster: tuple[LoopbackCluster, dict[str, str]]) -> None:
    """The stream carries status and live events; a daemon with an open stream still stops at once
    (aiohttp would otherwise wait up to a minute for the stream to end)."""
    import signal

    c, tokens = cluster
    req = urllib.request.Request(f"http://{c.addr['n2']}:7694/v1/events/stream",
                                 headers={"Authorization": f"Bearer {tokens['read']}"})
    with urllib.request.urlopen(req, timeout=30) as stream:
        kinds: list[str] = []
        while "status" not in kinds:
            line = stream.readline().decode()
            if line.startswith("event: "):
                kinds.append(line[7:].strip())
        c.client("n1").request("POST", "/v1/commands/resource",
                               {"command": "resource", "params": {"op": "stop", "resource": "d2"}})
        texts = []
        while not any("d2" in t for t in texts):  # n2 records the config change it adopts
            line = stream.readline().decode()
            assert line, "stream ended early"
            if line.startswith("data: ") and kinds and kinds[-1] == "event":
                texts.append(json.loads(line[6:])["text"])
            elif line.startswith("event: "):
                kinds.append(line[7:].strip())
        c.kill("n2", signal.SIGTERM)  # waits at most 10 s for the process, else fails
        rest = stream.read().decode()
    assert "event: dropped" in rest
