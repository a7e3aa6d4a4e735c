"""One route table: it registers the routes and produces their OpenAPI entries.

Each ``Route`` says who may call it (``role``), what it takes (path and query
parameters, a JSON body schema) and what it answers; ``add_routes`` adds the
routes to the application and remembers them for ``openapi.spec`` and for the
auth middleware. A route added with plain ``app.router.add_*`` still works:
it gets the default role of its method (GET/HEAD: read, others: admin;
``/internal/*``: peer) and no OpenAPI entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Role = Literal["public", "read", "admin", "peer"]

#: Ordered from least to most privileged (``peer`` is separate: the cluster key).
ROLES = ("read", "admin")


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False
    example_of: str | None = None  # "node" | "resource": the spec shows one of this cluster's


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    role: Role
    tag: str = "cluster"
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # JSON schema of the request body
    response: Mapping[str, Any] | None = None  # JSON schema of the 200 answer
    responses: Mapping[int, str] = field(default_factory=dict)  # other documented statuses
    content_type: str = "application/json"  # of the 200 answer
    in_spec: bool = True


ROUTES: web.AppKey[list[Route]] = web.AppKey("havm_routes", list)


def add_routes(app: web.Application, routes: list[Route]) -> None:
    """Register ``routes`` on ``app`` (and for its OpenAPI description and role checks)."""
    table = app.get(ROUTES)
    if table is None:
        table = app[ROUTES] = []
    for r in routes:
        app.router.add_route(r.method, r.path, r.handler)
        table.append(r)


def default_role(method: str, path: str) -> Role:
    if path.startswith("/internal/"):
        return "peer"
    return "read" if method in ("GET", "HEAD") else "admin"


def role_of(request: web.Request) -> Role | None:
    """The role the matched route needs; None when no route matched (404/405 follow)."""
    info = request.match_info
    if info.http_exception is not None:
        return None
    resource = info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    method = "GET" if request.method == "HEAD" else request.method
    for r in request.app.get(ROUTES, []):
        if r.path == canonical and r.method == method:
            return r.role
    return default_role(request.method, canonical)
