"""The OpenAPI 3 description, produced from the route table (``table.ROUTES``).

Served at ``GET /v1/openapi.json`` (public). Because the same table registers
the routes, the description cannot drift from the router; a test enumerates
the application's /v1 routes and checks each is described.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from havm import __version__
from havm.api import schemas as S
from havm.api.table import ROUTES, Route, add_routes
from havm.config.resources import walk_primitives

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

_COMMON = {400: "bad request (the message names the problem)", 401: "no valid credentials",
           403: "the token's role does not allow this"}


def _operation(r: Route, examples: dict[str, str]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": r.summary, "tags": [r.tag],
                          "operationId": f"{r.method.lower()}_{r.path.strip('/').replace('/', '_')}"
                          .replace("{", "").replace("}", "")}
    if r.params:
        op["parameters"] = []
        for p in r.params:
            param = {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                     "description": p.description, "schema": dict(p.schema)}
            if p.example_of in examples:
                param["example"] = examples[p.example_of]
            op["parameters"].append(param)
    if r.body is not None:
        op["requestBody"] = {"required": bool(r.body.get("required")), "content": {"application/json": {"schema": dict(r.body)}}}
    ok: dict[str, Any] = {"description": "success"}
    if r.content_type == "application/json":
        ok["content"] = {"application/json": {"schema": dict(r.response or {})}}
    else:
        ok["content"] = {r.content_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {"200": ok}
    errors = {**({} if r.role == "public" else _COMMON), **r.responses}
    if r.role == "public":
        errors.setdefault(400, _COMMON[400])
    for status, text in sorted(errors.items()):
        if status == 304:
            responses[str(status)] = {"description": text}
            continue
        responses[str(status)] = {"description": text,
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = responses
    if r.role == "public":
        op["security"] = []
    elif r.role == "admin":
        op["description"] = "Needs an admin token."
    return op


def spec(routes: list[Route], examples: dict[str, str] | None = None) -> dict[str, Any]:
    """The description of ``routes``; ``examples`` ({"node": ..., "resource": ...}) fill in
    path parameters with names of this cluster (for people and fuzzers alike)."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        if r.in_spec:
            paths.setdefault(r.path, {})[r.method.lower()] = _operation(r, examples or {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "havm REST API", "version": __version__,
                 "description": "Every node serves it on daemon.api.port; writes are forwarded to the "
                                "controller. See docs/api.md."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": S.ERROR},
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "havm token create NAME --role ..."},
                "session": {"type": "apiKey", "in": "cookie", "name": "havm_session",
                            "description": "set by POST /v1/login"},
            },
        },
        "security": [{"token": []}, {"session": []}],
    }


def setup(app: web.Application, daemon: NodeDaemon) -> None:
    async def openapi(request: web.Request) -> web.Response:
        cfg = daemon.config
        examples = {"node": cfg.nodes[0].name} if cfg.nodes else {}
        prims = walk_primitives(list(cfg.resources))
        if prims:
            examples["resource"] = prims[0][0].id
        return web.json_response(spec(request.app.get(ROUTES, []), examples))

    add_routes(app, [Route("GET", "/v1/openapi.json", openapi, "This description (OpenAPI 3)", "public",
                           tag="meta", response={"type": "object"})])
