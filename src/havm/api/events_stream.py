"""``GET /v1/events/stream``: server-sent events for the dashboard.

Each client gets, in order: ``status`` (the status document) at once, the
``recent`` last events if asked (``?recent=N``), then every event of this
node's EventLog as it happens (``event: event``, ``id: <node>:<seq>``) and a
``status`` once a second; a comment line (``: keepalive``) when nothing was
sent for ``HEARTBEAT`` seconds.

Never blocking the daemon: the EventLog subscriber only queues (thread-safe
hand-over to the loop); each client has a bounded queue, and a client whose
queue is full (it does not read fast enough), or whose write does not finish
within ``WRITE_TIMEOUT``, is dropped: it gets ``event: dropped`` if possible
and reconnects (EventSource does by itself). The status is computed once per
second for all clients together, and only while someone listens.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from havm.api.table import Param, Route, add_routes
from havm.commands.cluster import GetStatus
from havm.errors import UsageError
from havm.events.log import Event

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

log = logging.getLogger("havm.api")

QUEUE = 256  # messages a client may lag behind before it is dropped
STATUS_INTERVAL = 1.0
HEARTBEAT = 15.0
WRITE_TIMEOUT = 10.0
MAX_RECENT = 1000
DROPPED = "dropped"


@dataclass(eq=False)
class StreamClient:
    queue: asyncio.Queue[tuple[str, str, str] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE))
    dropped: bool = False


def sse(kind: str, data: str, event_id: str = "") -> bytes:
    """One server-sent event (data is one line of JSON)."""
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id else "")
    return (head + f"data: {data}\n\n").encode()


class StreamHub:
    """Fans this node's events and a periodic status out to every stream client."""

    def __init__(self, daemon: NodeDaemon) -> None:
        self.daemon = daemon
        self.clients: set[StreamClient] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._status_task: asyncio.Task[None] | None = None
        self.closing = False

    def add(self) -> StreamClient:
        c = StreamClient()
        self.clients.add(c)
        if self._unsubscribe is None:
            loop = asyncio.get_running_loop()

            def on_event(ev: Event) -> None:  # any thread: hand over to the loop, nothing more
                try:
                    loop.call_soon_threadsafe(self.publish, "event", json.dumps(ev.to_json(), default=str),
                                              f"{ev.node}:{ev.seq}")
                except RuntimeError:  # the loop is closed: the daemon is going away
                    pass

            self._unsubscribe = self.daemon.events.subscribe(on_event)
            self._status_task = loop.create_task(self._status_loop())
        return c

    def remove(self, c: StreamClient) -> None:
        self.clients.discard(c)
        if not self.clients:
            self._stop_feeds()

    def _stop_feeds(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._status_task is not None:
            self._status_task.cancel()
            self._status_task = None

    def publish(self, kind: str, data: str, event_id: str = "") -> None:
        for c in list(self.clients):
            try:
                c.queue.put_nowait((kind, data, event_id))
            except asyncio.QueueFull:
                self.drop(c, "too slow: its queue is full")

    def drop(self, c: StreamClient, why: str) -> None:
        if c.dropped:
            return
        log.info("event stream client dropped: %s", why)
        c.dropped = True
        while not c.queue.empty():
            c.queue.get_nowait()
        c.queue.put_nowait(None)
        self.remove(c)

    def close(self) -> None:
        """The daemon stops: end every stream now (aiohttp would wait for them)."""
        self.closing = True
        for c in list(self.clients):
            self.drop(c, "daemon stopping")
        self._stop_feeds()

    async def status_json(self) -> str:
        return json.dumps(await self.daemon.execute(GetStatus()), default=str)

    async def _status_loop(self) -> None:
        while self.clients:
            await asyncio.sleep(STATUS_INTERVAL)
            try:
                self.publish("status", await self.status_json())
            except Exception as e:  # noqa: BLE001 - the stream goes on; the next second may work
                log.warning("event stream: status failed: %s", e)


HUB: web.AppKey[StreamHub] = web.AppKey("havm_stream_hub", StreamHub)


async def _write(resp: web.StreamResponse, data: bytes) -> None:
    await asyncio.wait_for(resp.write(data), WRITE_TIMEOUT)


def setup(app: web.Application, daemon: NodeDaemon) -> None:
    app[HUB] = StreamHub(daemon)

    async def on_shutdown(app: web.Application) -> None:
        app[HUB].close()

    app.on_shutdown.append(on_shutdown)

    async def stream(request: web.Request) -> web.StreamResponse:
        raw = request.query.get("recent", "0")
        if not raw.isdigit() or int(raw) > MAX_RECENT:
            raise UsageError(f"recent {raw!r}: expected a whole number from 0 to {MAX_RECENT}")
        hub = request.app[HUB]
        if hub.closing:
            raise web.HTTPServiceUnavailable(reason="daemon stopping")
        first = await hub.status_json()
        c = hub.add()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        try:
            await resp.prepare(request)
            await _write(resp, b"retry: 2000\n\n" + sse("status", first))
            for ev in daemon.events.recent(limit=int(raw)) if int(raw) else []:
                await _write(resp, sse("event", json.dumps(ev.to_json(), default=str), f"{ev.node}:{ev.seq}"))
            while not c.dropped:
                try:
                    item = await asyncio.wait_for(c.queue.get(), HEARTBEAT)
                except TimeoutError:
                    await _write(resp, b": keepalive\n\n")
                    continue
                if item is None:
                    await _write(resp, sse(DROPPED, json.dumps({"reason": "closed by the server"})))
                    break
                await _write(resp, sse(*item))
        except (ConnectionResetError, TimeoutError) as e:
            hub.drop(c, f"write failed: {e.__class__.__name__}")
        finally:
            hub.remove(c)
        return resp

    add_routes(app, [Route(
        "GET", "/v1/events/stream", stream, "Server-sent events: status each second, this node's events as "
        "they happen", "read", tag="events", content_type="text/event-stream", in_spec=True,
        params=(Param("recent", "query", {"type": "integer", "minimum": 0, "maximum": MAX_RECENT},
                      "send the last N events first"),))])
