"""The daemon's HTTP API (aiohttp): one app served on a unix socket and on TCP.

Routes:
  GET  /v1/status                 cluster status (docs/status.md)
  GET  /v1/config                 the current configuration and its version
  POST /v1/commands/{name}        run an operator command (havm.commands)
  GET  /internal/config           the stored configuration (peers, signed)
  POST /internal/config           offer a newer stored configuration (peers, signed)
  POST /internal/commands/{name}  a command forwarded to the controller (peers, signed)
  GET  /internal/resources        this node's resource report (controller, signed)
  POST /internal/execute          run one agent action here (controller, signed)
  POST /internal/poke             ask the controller to re-plan now (peers, signed)

The unix socket (mode 0600) is trusted; on TCP every request must be signed
with the cluster key (``peerauth``). Errors are translated here, once:
``HavmError`` -> its HTTP status and ``{"error": {"code", "message"[, "issues"]}}``;
anything else -> 500 with the message logged, and the daemon goes on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from havm.commands.base import command_from_json
from havm.daemon import peerauth
from havm.errors import HavmError, UsageError, error_to_payload
from havm.executor.records import ActionRequest

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

log = logging.getLogger("havm.api")

MAX_BODY = 4 * 1024 * 1024

TRUSTED = "trusted"  # request attribute: came through the unix socket


def make_app(daemon: NodeDaemon, trusted: bool) -> web.Application:
    @web.middleware
    async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        try:
            if not trusted:
                body = await request.read()
                request["sender"] = peerauth.verify(daemon.key, request.headers.get(peerauth.HEADER),
                                                    request.method, request.path_qs, body, time.time())
            return await handler(request)
        except web.HTTPException:
            raise
        except HavmError as e:
            return web.json_response(error_to_payload(e), status=e.http_status)
        except Exception as e:  # the daemon never dies of one bad request
            log.exception("internal error serving %s %s", request.method, request.path)
            return web.json_response({"error": {"code": "internal", "message": f"internal error: {e}"}},
                                     status=500)

    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)

    async def read_json(request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as e:
            raise UsageError(f"request body is not valid JSON: {e}") from None

    async def status(request: web.Request) -> web.Response:
        return web.json_response(await daemon.status_async())

    async def config(request: web.Request) -> web.Response:
        return web.json_response(daemon.replica.current.to_json())

    async def command(request: web.Request) -> web.Response:
        data = await read_json(request)
        if isinstance(data, dict) and data.get("command", request.match_info["name"]) != request.match_info["name"]:
            raise UsageError("the command in the body does not match the URL")
        if isinstance(data, dict):
            data.setdefault("command", request.match_info["name"])
        cmd = command_from_json(data)
        result = await daemon.execute(cmd, forwarded=request.path.startswith("/internal/"),
                                      sender=request.get("sender", "local"))
        return web.json_response(result)

    async def internal_offer(request: web.Request) -> web.Response:
        data = await read_json(request)
        return web.json_response(daemon.offer_config(data, sender=request.get("sender", "local")))

    async def internal_resources(request: web.Request) -> web.Response:
        return web.json_response(daemon.local.report())

    async def internal_execute(request: web.Request) -> web.Response:
        data = await read_json(request)
        try:
            req = ActionRequest(**data)
        except TypeError as e:
            raise UsageError(f"bad action request: {e}") from None
        rec = await daemon.local.execute(req)
        return web.json_response(asdict(rec))

    async def internal_poke(request: web.Request) -> web.Response:
        data = await read_json(request)
        daemon.controller.poke(str(data.get("reason", "")) if isinstance(data, dict) else "")
        return web.json_response({"ok": True})

    app.router.add_get("/internal/resources", internal_resources)
    app.router.add_post("/internal/execute", internal_execute)
    app.router.add_post("/internal/poke", internal_poke)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/config", config)
    app.router.add_post("/v1/commands/{name}", command)
    app.router.add_get("/internal/config", config)
    app.router.add_post("/internal/config", internal_offer)
    app.router.add_post("/internal/commands/{name}", command)
    return app
