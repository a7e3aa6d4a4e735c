"""Build havmd's aiohttp application: middlewares, then every route module.

The same application serves the unix socket (``trusted``: whoever can open the
0600 socket is root or the daemon's user, so admin) and each TCP address
(peers sign with the cluster key, operators and the dashboard bring a token;
see ``auth``). Errors are translated here, once: ``HavmError`` -> its HTTP
status and ``{"error": {"code", "message"[, "issues"]}}``; an aiohttp HTTP
error (404, 405, 413...) -> the same JSON shape; anything else -> 500 with the
message logged, and the daemon goes on.

The seam for other parts: ``ROUTE_MODULES`` names modules that each define
``setup(app: web.Application, daemon) -> None`` and add their routes there
(``app.router.add_get(...)``, or ``havm.api.table.add_routes`` to give a route
a role and an OpenAPI entry). Append one line; the list is the only place.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from havm.api import auth
from havm.errors import HavmError, error_to_payload

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

log = logging.getLogger("havm.api")

MAX_BODY = 4 * 1024 * 1024

#: Modules whose ``setup(app, daemon)`` adds routes, in this order. Append one line.
ROUTE_MODULES: list[str] = [
    "havm.api.auth",
    "havm.api.routes_internal",
    "havm.api.routes_v1",
    "havm.api.events_stream",
    "havm.api.openapi",
    "havm.metrics.routes",
    "havm.web.routes",
]

DAEMON: web.AppKey[Any] = web.AppKey("havm_daemon", object)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {400: "usage", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
               409: "conflict", 413: "too-large", 415: "unsupported-media-type", 428: "precondition-required"}


def http_error(status: int, message: str, code: str | None = None) -> web.Response:
    """A JSON error response in the API's one error shape."""
    return web.json_response({"error": {"code": code or _HTTP_CODES.get(status, "error"), "message": message}},
                             status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        r = http_error(e.status, e.reason if e.text in (None, "", f"{e.status}: {e.reason}") else str(e.text))
        for h in ("Allow", "WWW-Authenticate", "Retry-After"):  # what the status promises, kept
            if h in e.headers:
                r.headers[h] = e.headers[h]
        return r
    except HavmError as e:
        return web.json_response(error_to_payload(e), status=e.http_status)
    except Exception as e:  # the daemon never dies of one bad request
        log.exception("internal error serving %s %s", request.method, request.path)
        return web.json_response({"error": {"code": "internal", "message": f"internal error: {e}"}}, status=500)


def make_app(daemon: NodeDaemon, trusted: bool, route_modules: list[str] | None = None) -> web.Application:
    """The API application; ``trusted`` for the unix socket (everything is admin there)."""
    app = web.Application(middlewares=[errors, auth.middleware(daemon, trusted)], client_max_size=MAX_BODY)
    app[DAEMON] = daemon
    for name in ROUTE_MODULES if route_modules is None else route_modules:
        importlib.import_module(name).setup(app, daemon)
    return app
