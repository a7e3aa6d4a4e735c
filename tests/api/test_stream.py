"""GET /v1/events/stream: status first, events as they happen, slow clients dropped, never blocking."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from havm.api.events_stream import QUEUE, StreamHub
from tests.api.fake import FakeDaemon, api_client


async def next_event(resp: Any, kind: str) -> dict[str, Any]:
    """Read SSE lines until an event of ``kind``; return its data (bounded by the caller's timeout)."""
    current = None
    while True:
        line = (await resp.content.readline()).decode()
        assert line, "stream ended"
        if line.startswith("event: "):
            current = line[7:].strip()
        elif line.startswith("data: ") and current == kind:
            return json.loads(line[6:])  # type: ignore[no-any-return]


def test_stream_sends_status_then_recent_and_live_events(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("viewer", "read")
    d.events.emit("node.join", "n2 joined", target="n2")

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.get("/v1/events/stream?recent=5", headers={"Authorization": f"Bearer {tok}"})
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
            st = await asyncio.wait_for(next_event(r, "status"), 10)
            assert st["cluster"] == "apitest"
            old = await asyncio.wait_for(next_event(r, "event"), 10)
            assert old["text"] == "n2 joined"
            d.events.emit("fence", "fencing n2: confirmed off", target="n2", ok=True)
            live = await asyncio.wait_for(next_event(r, "event"), 10)
            assert live["kind"] == "fence" and live["fields"]["ok"] is True
            r.close()
    asyncio.run(body())


def test_stream_refuses_a_bad_recent(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("viewer", "read")

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.get("/v1/events/stream?recent=-1", headers={"Authorization": f"Bearer {tok}"})
            assert r.status == 400 and "recent" in (await r.json())["error"]["message"]
    asyncio.run(body())


def test_a_slow_client_is_dropped_and_the_others_keep_their_events(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)

    async def body() -> None:
        hub = StreamHub(d)  # type: ignore[arg-type]
        slow, fast = hub.add(), hub.add()
        for i in range(QUEUE + 1):
            d.events.emit("action", f"event {i}")
            await asyncio.sleep(0)  # let the loop hand the event over (call_soon_threadsafe)
            if not fast.queue.empty():
                fast.queue.get_nowait()  # the fast client reads as events come
        assert slow.dropped and not fast.dropped
        assert slow.queue.get_nowait() is None and slow.queue.empty()  # only the end marker is left
        assert hub.clients == {fast}
        hub.remove(fast)
        assert hub._unsubscribe is None and hub._status_task is None  # nobody listens: no work
        d.events.emit("action", "after")  # nobody subscribed: nothing queued anywhere
        await asyncio.sleep(0)
        assert fast.queue.empty()
    asyncio.run(body())


def test_closing_the_hub_ends_every_stream(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("viewer", "read")

    async def body() -> None:
        from havm.api.events_stream import HUB

        async with api_client(d) as c:
            r = await c.get("/v1/events/stream", headers={"Authorization": f"Bearer {tok}"})
            await asyncio.wait_for(next_event(r, "status"), 10)
            c.server.app[HUB].close()
            end = await asyncio.wait_for(next_event(r, "dropped"), 10)
            assert "closed" in end["reason"]
            assert (await asyncio.wait_for(r.content.read(), 10)).strip() == b""  # then the stream ends
    asyncio.run(body())
