"""Routes between cluster members (signed with the cluster key; role ``peer``).

  GET  /internal/config           the stored configuration
  POST /internal/config           offer a newer stored configuration (the controller's push)
  POST /internal/term             a controller claims a term (havm.daemon.term)
  POST /internal/commands/{name}  a command forwarded to the controller
  GET  /internal/resources        this node's resource report (for the controller)
  POST /internal/execute          run one agent action here (from the controller, in its term)
  POST /internal/poke             ask the controller to re-plan now
  POST /internal/events           this node's events matching a filter (for history)
  POST /internal/fence-self       fence yourself: stop feeding your watchdog for good (watchdog fencing)
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from aiohttp import web

from havm.api.auth import principal
from havm.api.routes_v1 import read_json, run_command
from havm.commands.history import GetHistory
from havm.daemon import fencing
from havm.errors import UsageError
from havm.executor.records import ActionRequest
from havm.store.version import whole

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon


def _sender(request: web.Request) -> str:
    p = principal(request)
    return p.name if p else "local"


def setup(app: web.Application, daemon: NodeDaemon) -> None:
    async def config(request: web.Request) -> web.Response:
        return web.json_response(daemon.replica.current.to_json())

    async def offer(request: web.Request) -> web.Response:
        data = await read_json(request)
        return web.json_response(daemon.offer_config(data, sender=_sender(request), push=True))

    async def term(request: web.Request) -> web.Response:
        data = await read_json(request)
        try:
            return web.json_response(daemon.term.answer_claim(data.get("term") if isinstance(data, dict) else None,
                                                              _sender(request)))
        except ValueError as e:
            raise UsageError(str(e)) from None

    async def command(request: web.Request) -> web.Response:
        return await run_command(request, daemon, forwarded=True)

    async def resources(request: web.Request) -> web.Response:
        return web.json_response(daemon.resource_report())

    async def execute(request: web.Request) -> web.Response:
        data = await read_json(request)
        if not isinstance(data, dict):
            raise UsageError(f"bad action request: expected a JSON object, got {type(data).__name__}")
        term = data.pop("term", None)
        if not whole(term):
            raise UsageError(f"bad action request: 'term' (the controller term it is asked in) must be a whole "
                             f"number >= 0, got {term!r}")
        try:
            req = ActionRequest(**data)
        except TypeError as e:
            raise UsageError(f"bad action request: {e}") from None
        rec = await daemon.run_request(req, term, _sender(request))
        return web.json_response(asdict(rec))

    async def poke(request: web.Request) -> web.Response:
        data = await read_json(request)
        daemon.controller.poke(str(data.get("reason", "")) if isinstance(data, dict) else "")
        return web.json_response({"ok": True})

    async def events(request: web.Request) -> web.Response:
        data = await read_json(request)
        q = GetHistory.from_params(data if isinstance(data, dict) else {})
        assert isinstance(q, GetHistory)
        found = daemon.events.recent(since=q.since, kinds=q.kinds or (), resource=q.resource, node=q.node,
                                     limit=q.limit)
        return web.json_response({"node": daemon.node, "events": [e.to_json() for e in found]})

    async def fence_self(request: web.Request) -> web.Response:
        data = await read_json(request)
        by = data.get("requested_by") if isinstance(data, dict) else None
        return web.json_response(fencing.fence_self(daemon, str(by or "?"), _sender(request)))

    r = app.router
    r.add_get("/internal/config", config)
    r.add_post("/internal/config", offer)
    r.add_post("/internal/term", term)
    r.add_post("/internal/commands/{name}", command)
    r.add_get("/internal/resources", resources)
    r.add_post("/internal/execute", execute)
    r.add_post("/internal/poke", poke)
    r.add_post("/internal/events", events)
    r.add_post("/internal/fence-self", fence_self)
