"""Alerts delivered for real: a script in a subprocess, a webhook to an aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import stat
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from havm.alerts.dispatcher import AlertDispatcher
from havm.alerts.payload import matches
from havm.clock import ManualClock
from havm.config.alerts import Alert
from havm.config.schema import ClusterConfig
from havm.events import Event, EventLog

PACEMAKER_SAMPLE = "/usr/share/pacemaker/alerts/alert_file.sh.sample"


def in_loop(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no pytest plugin needed)."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))
    return run


def config(alerts: list[dict[str, Any]]) -> ClusterConfig:
    return ClusterConfig.model_validate({
        "cluster": "c1", "links": [{"name": "l0"}],
        "nodes": [{"name": f"n{i}", "addresses": {"l0": f"10.0.0.{i}"}} for i in (1, 2, 3)],
        "resources": [{"group": "web", "resources": [{"id": "ip1", "type": "dummy"}, {"id": "app1", "type": "dummy"}]},
                      {"id": "vm1", "type": "dummy"}],
        "alerts": alerts})


def script(tmp_path: Path, body: str) -> str:
    p = tmp_path / "alert.sh"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


async def running(dispatcher: AlertDispatcher, cfg: ClusterConfig) -> AlertDispatcher:
    dispatcher.configure(cfg)
    dispatcher.start()
    return dispatcher


def ev(kind: str, **fields: Any) -> Event:
    return Event(1, 1000.0, "n1", kind, "text", fields)


def test_filters_by_kind_node_and_resource_group() -> None:
    a = Alert(id="a", kind="webhook", url="http://x/", kinds=["node", "action"], nodes=["n2"])
    assert matches(a, ev("node.leave", target="n2"))
    assert not matches(a, ev("node.leave", target="n3"))
    assert not matches(a, ev("quorum.lost"))
    assert matches(a, Event(1, 0.0, "n2", "action", "", {"rsc": "vm1", "target": "n1"}))  # recorded on n2
    b = Alert(id="b", kind="webhook", url="http://x/", resources=["web"])
    assert matches(b, ev("action", rsc="ip1"), {"ip1", "app1"})
    assert not matches(b, ev("action", rsc="vm1"), {"ip1", "app1"})
    assert not matches(b, ev("node.join", target="n2"), {"ip1", "app1"})


@in_loop
async def test_script_gets_json_on_stdin_and_variables(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = script(tmp_path, 'cat > "$OUT/$HAVM_ALERT_SEQ.json"\nenv > "$OUT/$HAVM_ALERT_SEQ.env"\n')
    events = EventLog("n1", None, ManualClock(wall_offset=1_700_000_000.25))
    d = await running(AlertDispatcher(events), config([
        {"id": "page", "kind": "script", "path": path, "kinds": ["action", "node", "fence"], "resources": [],
         "recipient": "ops@example.com", "env": {"OUT": str(out)}}]))
    events.emit("quorum.gained", "quorum: majority")  # filtered out
    events.emit("node.leave", "n3 left or was lost", target="n3", members=["n1", "n2"])
    events.emit("action", "start vm1 on n2: ok", rsc="vm1", op="start", target="n2", ok=True, rc=0, duration=1.5)
    events.emit("fence", "fencing n3 through pdu: FAILED: timeout", target="n3", device="pdu", ok=False, rc=1)
    await asyncio.wait_for(d.wait_idle(), 30)
    await d.close()
    assert sorted(p.name for p in out.iterdir()) == ["2.env", "2.json", "3.env", "3.json", "4.env", "4.json"]
    doc = json.loads((out / "3.json").read_text())
    assert doc["alert"] == "page" and doc["cluster"] == "c1" and doc["recipient"] == "ops@example.com"
    assert doc["event"]["kind"] == "action" and doc["event"]["fields"]["rsc"] == "vm1"

    def env(seq: int) -> dict[str, str]:
        return dict(line.split("=", 1) for line in (out / f"{seq}.env").read_text().splitlines() if "=" in line)

    node, action, fence = env(2), env(3), env(4)
    assert node["HAVM_ALERT_KIND"] == "node.leave" and node["HAVM_ALERT_FIELD_MEMBERS"] == '["n1","n2"]'
    assert (node["CRM_alert_kind"], node["CRM_alert_node"], node["CRM_alert_desc"], node["CRM_alert_nodeid"]) == (
        "node", "n3", "lost", "3")
    assert (action["CRM_alert_kind"], action["CRM_alert_rsc"], action["CRM_alert_task"], action["CRM_alert_rc"],
            action["CRM_alert_node"], action["CRM_alert_desc"], action["CRM_alert_exec_time"]) == (
        "resource", "vm1", "start", "0", "n2", "success", "1500")
    assert action["CRM_alert_timestamp_epoch"] == "1700001000" and action["CRM_alert_timestamp_usec"] == "250000"
    assert action["CRM_alert_recipient"] == "ops@example.com" and action["CRM_notify_rsc"] == "vm1"
    assert (fence["CRM_alert_kind"], fence["CRM_alert_node"], fence["CRM_alert_rc"]) == ("fencing", "n3", "1")
    assert "OUT" in action and action["HAVM_ALERT_ID"] == "page"
    assert d.counts().deliveries == {("page", "ok"): 3}


@pytest.mark.skipif(not os.path.exists(PACEMAKER_SAMPLE), reason="Pacemaker's sample alert agents not installed "
                                                                   "(Debian: pacemaker-common)")
@in_loop
async def test_pacemakers_own_alert_file_agent_runs_unmodified(tmp_path: Path) -> None:
    agent = tmp_path / "alert_file.sh"
    shutil.copy(PACEMAKER_SAMPLE, agent)
    agent.chmod(0o755)
    log = tmp_path / "alerts.log"
    events = EventLog("n1", None, ManualClock())
    d = await running(AlertDispatcher(events, workers=1), config([
        {"id": "file", "kind": "script", "path": str(agent), "recipient": str(log)}]))
    events.emit("node.leave", "n3 left or was lost", target="n3")
    events.emit("action", "stop vm1 on n2: failed rc=1", rsc="vm1", op="stop", target="n2", ok=False, rc=1,
                duration=0.2)
    events.emit("fence", "fencing n3 through pdu: confirmed off", target="n3", device="pdu", ok=True, rc=0)
    await asyncio.wait_for(d.wait_idle(), 30)
    await d.close()
    lines = log.read_text().splitlines()
    assert any(line.endswith("Node 'n3' is now 'lost'") for line in lines), lines
    assert any(line.endswith("Resource operation 'stop' for 'vm1' on 'n2': generic error") for line in lines), lines
    assert any(line.endswith("Fencing fencing n3 through pdu: confirmed off") for line in lines), lines
    assert d.counts().deliveries == {("file", "ok"): 3}


@in_loop
async def test_a_hanging_script_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    path = script(tmp_path, f'sleep 600 &\necho $! > {pids}\necho $$ >> {pids}\nwait\n')
    events = EventLog("n1", None, ManualClock())
    d = await running(AlertDispatcher(events), config([
        {"id": "hang", "kind": "script", "path": path, "timeout": "500ms"},
        {"id": "fail", "kind": "script", "path": script_at(tmp_path, "fail.sh", "echo broken >&2\nexit 3\n")}]))
    events.emit("node.join", "n2 joined", target="n2")
    await asyncio.wait_for(d.wait_idle(), 30)
    results = {r.alert: r for r in d.recent()}
    assert not results["hang"].ok and "timed out after 0.5s" in results["hang"].detail
    assert not results["fail"].ok and results["fail"].detail == "exit 3" and results["fail"].output == "broken"
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), f"pid {pid} of the hanging alert survived"
    events.emit("node.join", "n3 joined", target="n3")  # the dispatcher goes on after failures
    await asyncio.wait_for(d.wait_idle(), 30)
    await d.close()
    assert d.counts().deliveries == {("hang", "failed"): 2, ("fail", "failed"): 2}


def script_at(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Hooks:
    """A webhook receiver on loopback: records each POST; answers per path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/ok", self.ok)
        self.app.router.add_post("/broken", self.broken)
        self.app.router.add_post("/slow", self.slow)
        self.runner = web.AppRunner(self.app)
        self.port = 0

    async def ok(self, request: web.Request) -> web.Response:
        self.received.append((request.path, dict(request.headers), await request.json()))
        return web.Response(status=204)

    async def broken(self, request: web.Request) -> web.Response:
        self.received.append((request.path, dict(request.headers), await request.json()))
        return web.Response(status=500, text="no")

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(status=204)

    async def __aenter__(self) -> Hooks:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        await self.runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@in_loop
async def test_webhooks_delivered_refused_slow_and_unreachable() -> None:
    async with Hooks() as hooks:
        events = EventLog("n1", None, ManualClock())
        d = await running(AlertDispatcher(events), config([
            {"id": "ok", "kind": "webhook", "url": hooks.url("/ok"), "headers": {"Authorization": "Bearer t0k"},
             "kinds": ["fence"]},
            {"id": "broken", "kind": "webhook", "url": hooks.url("/broken"), "kinds": ["fence"]},
            {"id": "slow", "kind": "webhook", "url": hooks.url("/slow"), "timeout": "300ms", "kinds": ["fence"]},
            {"id": "nobody", "kind": "webhook", "url": "http://127.0.0.1:9/", "kinds": ["fence"]}]))
        events.emit("node.join", "n2 joined", target="n2")  # no alert wants it
        events.emit("fence", "fencing n3 through pdu: confirmed off", target="n3", device="pdu", ok=True, rc=0)
        await asyncio.wait_for(d.wait_idle(), 30)
        await d.close()
    results = {r.alert: r for r in d.recent()}
    assert (results["ok"].ok, results["ok"].detail) == (True, "HTTP 204")
    assert (results["broken"].ok, results["broken"].detail, results["broken"].output) == (False, "HTTP 500", "no")
    assert not results["slow"].ok and results["slow"].detail == "timed out after 0.3s"
    assert not results["nobody"].ok and "Connect" in results["nobody"].detail
    paths = [p for p, _h, _b in hooks.received]
    assert sorted(paths) == ["/broken", "/ok"]
    _path, headers, body = next(r for r in hooks.received if r[0] == "/ok")
    assert headers["Authorization"] == "Bearer t0k" and headers["Content-Type"] == "application/json"
    assert body["event"]["kind"] == "fence" and body["event"]["fields"]["target"] == "n3" and body["alert"] == "ok"


@in_loop
async def test_a_full_queue_drops_and_counts_never_blocks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gate = tmp_path / "gate"
    path = script(tmp_path, f"while [ ! -e {gate} ]; do sleep 0.05; done\n")
    events = EventLog("n1", None, ManualClock())
    d = await running(AlertDispatcher(events, queue_size=2, workers=1), config([
        {"id": "slow", "kind": "script", "path": path}]))
    for i in range(6):  # emitted back to back on the loop: no worker has run yet
        events.emit("node.join", f"n{i} joined", target="n2")
    assert d.counts().dropped == 4 and d.counts().queued == 2
    assert "alert queue full" in caplog.text
    gate.touch()
    await asyncio.wait_for(d.wait_idle(), 30)
    await d.close()
    assert d.counts().deliveries == {("slow", "ok"): 2}


@in_loop
async def test_events_from_another_thread_are_handed_to_the_loop(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    path = script(tmp_path, f'echo "$HAVM_ALERT_TEXT" >> {out}\n')
    events = EventLog("n1", None, ManualClock())
    d = await running(AlertDispatcher(events), config([{"id": "s", "kind": "script", "path": path}]))
    await asyncio.to_thread(events.emit, "fence", "from a thread", target="n3", ok=True)
    for _ in range(100):  # bounded: the hand-over is one loop iteration away
        if d.counts().deliveries:
            break
        await asyncio.wait_for(d.wait_idle(), 30)
        await asyncio.sleep(0)
    await d.close()
    assert out.read_text() == "from a thread\n"


def test_a_failed_monitor_is_a_pacemaker_resource_alert() -> None:
    from havm.alerts.payload import pacemaker_variables

    a = Alert(id="a", kind="webhook", url="http://x/")
    v = pacemaker_variables(a, Event(3, 1000.5, "n2", "resource.changed", "d1 is failed on n2",
                                     {"rsc": "d1", "role": "failed", "op": "monitor", "rc": 7, "failcount": 1}),
                            {"n1": 1, "n2": 2})
    assert (v["kind"], v["node"], v["rsc"], v["task"], v["rc"], v["desc"], v["status"], v["target_rc"]) == (
        "resource", "n2", "d1", "monitor", "7", "not running", "0", "0")
    cleaned = pacemaker_variables(a, Event(4, 1001.0, "n2", "resource.changed", "d1 is stopped on n2",
                                           {"rsc": "d1", "role": "stopped", "op": None, "rc": None}), {})
    assert (cleaned["task"], cleaned["desc"], "rc" in cleaned) == ("monitor", "stopped", False)
