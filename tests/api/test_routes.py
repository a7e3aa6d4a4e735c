"""REST routes: each maps to one command; errors are JSON naming the problem; 409 on a stale base."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from havm.commands.fence import FenceNode
from havm.commands.history import GetHistory
from havm.commands.resource import ChangeNode, ChangeResource, CleanupResource
from havm.daemon import handlers
from tests.api.fake import FakeDaemon, api_client


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def admin(d: FakeDaemon) -> dict[str, str]:
    return {"Authorization": f"Bearer {d.token('alice', 'admin')}"}


def test_reads(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    h = admin(d)
    d.events.emit("action", "start vm1 on n1: ok", rsc="vm1", op="start", target="n1", ok=True)
    d.events.emit("action", "start site on n1: ok", rsc="site", op="start", target="n1", ok=True)

    async def body() -> None:
        async with api_client(d) as c:
            assert [n["name"] for n in await (await c.get("/v1/nodes", headers=h)).json()] == ["n1", "n2"]
            assert (await (await c.get("/v1/nodes/n2", headers=h)).json())["state"] == "online"
            r = await c.get("/v1/nodes/zz", headers=h)
            assert r.status == 404 and "n1, n2" in (await r.json())["error"]["message"]
            assert len(await (await c.get("/v1/resources", headers=h)).json()) == 3
            one = await (await c.get("/v1/resources/vm1", headers=h)).json()
            assert one["kind"] == "primitive" and one["status"]["node"] == "n1"
            assert one["config"]["type"] == "dummy" and [e["fields"]["rsc"] for e in one["events"]] == ["vm1"]
            grp = await (await c.get("/v1/resources/web", headers=h)).json()
            assert grp["kind"] == "group" and [m["id"] for m in grp["members"]] == ["ip1", "site"]
            assert [e["fields"]["rsc"] for e in grp["events"]] == ["site"]
            assert (await c.get("/v1/resources/nope", headers=h)).status == 404
    run(body())


def test_actions_map_to_the_command_objects(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    h = admin(d)

    async def body() -> None:
        async with api_client(d) as c:
            for path, data in [("/v1/resources/vm1/move", {"node": "n2"}), ("/v1/resources/vm1/ban", {"node": "n1"}),
                               ("/v1/resources/vm1/clear", None), ("/v1/resources/vm1/cleanup", {}),
                               ("/v1/nodes/n2/standby", None), ("/v1/nodes/n2/online", {}),
                               ("/v1/nodes/n2/fence", {})]:
                r = await c.post(path, json=data, headers=h)
                assert r.status == 200, (path, await r.text())
    run(body())
    cmds = [c for c, _ in d.executed if c.writes]
    assert cmds == [ChangeResource("move", "vm1", "n2", by="token:alice"),
                    ChangeResource("ban", "vm1", "n1", by="token:alice"),
                    ChangeResource("clear", "vm1", None, by="token:alice"), CleanupResource("vm1", None),
                    ChangeNode("standby", "n2", by="token:alice"), ChangeNode("online", "n2", by="token:alice"),
                    FenceNode("n2", by="token:alice")]
    assert "cli-ban-vm1-n1" not in d.replica.current.text and "standby: true" not in d.replica.current.text


def test_bad_requests_name_the_problem(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    h = admin(d)

    async def body() -> None:
        async with api_client(d) as c:
            async def err(r: Any, status: int) -> str:
                assert r.status == status, (r.status, await r.text())
                return str((await r.json())["error"]["message"])

            assert "not valid JSON" in await err(await c.post("/v1/resources/vm1/move", data=b"{node:",
                                                              headers=h), 400)
            assert "unknown field(s) nod" in await err(await c.post("/v1/resources/vm1/move",
                                                                    json={"nod": "n2"}, headers=h), 400)
            assert "'node' must be str" in await err(await c.post("/v1/resources/vm1/move", json={"node": 3},
                                                                  headers=h), 400)
            assert "must be a JSON object" in await err(await c.post("/v1/resources/vm1/move", json=[1],
                                                                     headers=h), 400)
            assert "needs a node" in await err(await c.post("/v1/resources/vm1/move", headers=h), 400)
            assert "no resource action 'explode'" in await err(await c.post("/v1/resources/vm1/explode",
                                                                            headers=h), 404)
            assert "no node 'zz'" in await err(await c.post("/v1/resources/vm1/move", json={"node": "zz"},
                                                            headers=h), 404)
            assert "no resource 'zz'" in await err(await c.post("/v1/resources/zz/stop", headers=h), 404)
            assert "limit" in await err(await c.get("/v1/history?limit=x", headers=h), 400)
            assert "since" in await err(await c.get("/v1/history?since=yesterday", headers=h), 400)
            assert "since" in await err(await c.get("/v1/history?since=", headers=h), 400)
            r = await c.get("/v1/nothing", headers=h)
            assert r.status == 404 and (await r.json())["error"]["code"] == "not-found"
            r = await c.delete("/v1/status", headers=h)
            assert r.status == 405 and (await r.json())["error"]["code"] == "method-not-allowed"
    run(body())
    assert d.replica.version.epoch == 0


def test_config_put_with_a_stale_base_is_409_and_changes_nothing(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    h = admin(d)

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.get("/v1/config", headers=h)
            etag, cfg = r.headers["ETag"], await r.json()
            assert etag == f'"0.0.{cfg["digest"]}"'
            assert (await c.get("/v1/config", headers={**h, "If-None-Match": etag})).status == 304
            new = cfg["text"].replace("cluster: apitest", "cluster: apitest  # edited")
            # no base at all: refused, the request must name one
            r = await c.put("/v1/config", json={"text": new}, headers=h)
            assert r.status == 428
            r = await c.put("/v1/config", json={"text": new, "base_epoch": [0, 0], "comment": "one"}, headers=h)
            assert r.status == 200 and (await r.json())["version"][:2] == [0, 1]
            assert r.headers["ETag"].startswith('"0.1.')
            # someone else's edit based on the old version: 409, nothing changes
            other = cfg["text"].replace("cluster: apitest", "cluster: apitest  # other")
            r = await c.put("/v1/config", json={"text": other, "base_epoch": [0, 0]}, headers=h)
            assert r.status == 409 and (await r.json())["error"]["code"] == "conflict"
            r = await c.put("/v1/config", json={"text": other}, headers={**h, "If-Match": etag})
            assert r.status == 409
            assert "# edited" in d.replica.current.text and d.replica.version.epoch == 1
            # If-Match with the current ETag works
            cur = (await c.get("/v1/config", headers=h)).headers["ETag"]
            r = await c.put("/v1/config", json={"text": other}, headers={**h, "If-Match": cur})
            assert r.status == 200 and d.replica.version.epoch == 2
            # an invalid configuration: 422 with issues naming the line
            r = await c.put("/v1/config", json={"text": "cluster: x\nnodes: 3\n", "base_epoch": [0, 2]},
                            headers=h)
            assert r.status == 422 and (await r.json())["error"]["issues"]
            r = await c.put("/v1/config", json={"text": other, "base_epoch": [0]}, headers=h)
            assert r.status == 400 and "base_epoch" in (await r.json())["error"]["message"]
    run(body())
    assert d.replica.version.epoch == 2


def test_history_gathers_events_through_the_command(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    h = admin(d)
    d.events.emit("node.join", "n2 joined", target="n2")
    d.clock.advance(10)
    d.events.emit("action", "stop vm1 on n1: ok", rsc="vm1", op="stop", target="n1", ok=True)

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.get("/v1/history?resource=vm1", headers=h)
            got = await r.json()
            assert [e["kind"] for e in got["events"]] == ["action"] and got["nodes"] == {"n1": "ok"}
            got = await (await c.get("/v1/history?kind=node&limit=5", headers=h)).json()
            assert [e["text"] for e in got["events"]] == ["n2 joined"]
            got = await (await c.get("/v1/history?since=5s", headers=h)).json()
            assert [e["kind"] for e in got["events"]] == ["action"]
    run(body())
    hist = [c for c, _ in d.executed if isinstance(c, GetHistory)]
    assert hist[0] == GetHistory(resource="vm1") and hist[1] == GetHistory(kinds=["node"], limit=5)


def test_a_change_on_a_node_whose_view_is_stale_waits_for_it_then_is_refused_and_stores_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # just resumed from a freeze: who is controller, and in which term, may be past; the
    # node listens for 2 x keepalive, and a change waits that out (at most deadtime, 3 s here)
    monkeypatch.setattr(handlers, "STALE_POLL", 0.01)
    d = FakeDaemon(tmp_path)
    d.stale = "resumed 0.05s ago from a 4.00s stall: listening to peers again"

    async def body() -> None:
        async with api_client(d) as c:
            h = admin(d)
            text = d.replica.current.text + "# one\n"
            r = await c.put("/v1/config", json={"text": text, "base_epoch": [0, 0]}, headers=h)
            err = (await r.json())["error"]
            assert r.status == 503 and err["code"] == "no-quorum", err
            assert err["message"] == ("node n1's membership view is not current (resumed 0.05s ago from a 4.00s "
                                      "stall: listening to peers again): the change is refused, nothing was "
                                      "stored; try again in a moment")
            assert d.replica.version.epoch == 0
            asyncio.get_running_loop().call_later(0.1, setattr, d, "stale", "")  # listened enough
            r = await c.put("/v1/config", json={"text": text, "base_epoch": [0, 0]}, headers=h)
            assert r.status == 200
    run(body())
    assert d.replica.version.epoch == 1
