"""The public REST API, /v1: every route maps to one command object (havm.commands).

Reads (status, nodes, resources, history, config) are answered by the node
asked; writes go through ``daemon.execute``, which forwards them to the
controller: one operation, many doors (CLI, REST, dashboard), no logic here
but translating HTTP to a command and back. The routes, their roles and their
OpenAPI entries come from one table (``routes``); ``schemas`` holds the JSON
schemas both this module and the description use.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from havm.api import schemas as S
from havm.api.auth import actor, principal, require
from havm.api.table import Param, Route, add_routes
from havm.commands.base import REGISTRY, Command, command_from_json
from havm.commands.cluster import ApplyConfig, GetConfig, GetStatus
from havm.commands.fence import FenceNode
from havm.commands.history import MAX_LIMIT, GetHistory, parse_since
from havm.commands.resource import (
    NODE_OPS,
    RESOURCE_OPS,
    ChangeNode,
    ChangeResource,
    CleanupResource,
)
from havm.config.schema import ClusterConfig
from havm.errors import NotFound, UsageError

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

RECENT_EVENTS = 50  # events shown with one resource
RESOURCE_ACTIONS = (*RESOURCE_OPS, "cleanup")
NODE_ACTIONS = (*NODE_OPS, "fence")
IF_MATCH_PATTERN = r'^(\*|(W/)?"?\d+\.\d+([.:][0-9a-fA-F]*)?"?)$'
_ETAG = re.compile(r'^(?:W/)?"?(\d+)\.(\d+)(?:[.:][0-9a-fA-F]*)?"?$')


async def read_json(request: web.Request) -> Any:
    """The request body as JSON ({} if empty); a 400 naming the problem otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except UnicodeDecodeError as e:
        raise UsageError(f"request body is not UTF-8: {e}") from None
    except ValueError as e:
        raise UsageError(f"request body is not valid JSON: {e}") from None


async def read_object(request: web.Request, fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """The body as a JSON object with only ``fields`` (name -> accepted types)."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise UsageError(f"request body must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UsageError(f"unknown field(s) {', '.join(unknown)} in the request body; "
                         f"expected {', '.join(fields) or 'none'}")
    for k, v in data.items():
        want = fields[k]
        types: tuple[type, ...] = want if isinstance(want, tuple) else (want,)
        if v is not None and (not isinstance(v, types) or (isinstance(v, bool) and bool not in types)):
            raise UsageError(f"field {k!r} must be {' or '.join(t.__name__ for t in types)}, got {v!r}")
    return data


def credited(request: web.Request, cmd: Command) -> Command:
    """A token's change is credited to the token, whatever ``by`` the body claims."""
    p = principal(request)
    if p is not None and p.via in ("token", "session") and "by" in {f.name for f in dataclasses.fields(cmd)}:
        return dataclasses.replace(cmd, by=actor(request))  # type: ignore[call-arg]
    return cmd


async def execute(request: web.Request, daemon: NodeDaemon, cmd: Command, forwarded: bool = False) -> Any:
    if cmd.writes:
        require(request, "admin")
    p = principal(request)
    return await daemon.execute(credited(request, cmd), forwarded=forwarded, sender=p.name if p else "local")


async def run_command(request: web.Request, daemon: NodeDaemon, forwarded: bool = False) -> web.Response:
    """``POST /v1/commands/{name}`` (the CLI's door) and its forwarded twin."""
    name = request.match_info["name"]
    data = await read_json(request)
    if isinstance(data, dict):
        if data.get("command", name) != name:
            raise UsageError("the command in the body does not match the URL")
        data.setdefault("command", name)
    return web.json_response(await execute(request, daemon, command_from_json(data), forwarded))


def _find(items: list[dict[str, Any]], key: str, value: str, what: str) -> dict[str, Any]:
    for item in items:
        if item.get(key) == value:
            return item
    raise NotFound(f"no {what} {value!r} (known: {', '.join(str(i.get(key)) for i in items) or 'none'})")


def resource_config(config: ClusterConfig, rid: str) -> tuple[str, dict[str, Any], list[str]]:
    """(kind, configuration, primitive ids) of the resource, group or clone ``rid``."""
    def prims(item: Any) -> list[str]:
        if hasattr(item, "resources"):
            return [p.id for p in item.resources]
        if hasattr(item, "resource"):
            return prims(item.resource)
        return [item.id]

    def walk(items: list[Any]) -> tuple[str, dict[str, Any], list[str]] | None:
        for item in items:
            for kind in ("id", "group", "clone"):
                if getattr(item, kind, None) == rid:
                    kind_name = {"id": "primitive"}.get(kind, kind)
                    return kind_name, item.model_dump(mode="json", exclude_none=True), prims(item)
            inner = list(getattr(item, "resources", None) or []) + (
                [item.resource] if getattr(item, "resource", None) is not None else [])
            found = walk(inner)
            if found:
                return found
        return None

    found = walk(list(config.resources))
    if found is None:
        raise NotFound(f"no resource {rid!r} in the configuration")
    return found


def etag(stored_json: dict[str, Any]) -> str:
    return f'"{stored_json["admin_epoch"]}.{stored_json["epoch"]}.{stored_json["digest"]}"'


def base_from_if_match(value: str) -> list[int] | None:
    """``If-Match: "<admin_epoch>.<epoch>[.<digest>]"`` (an ETag of GET /v1/config); ``*`` means any."""
    v = value.strip()
    if v == "*":
        return None
    m = _ETAG.match(v)
    if not m:
        raise UsageError(f"If-Match {value!r}: expected the ETag of GET /v1/config, e.g. \"3.12.<digest>\"")
    return [int(m.group(1)), int(m.group(2))]


def _query(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise UsageError(f"query parameter {name!r} given {len(values)} times")
    return values[0] if values else None


def history_query(request: web.Request, now: float, resource: str | None = None) -> GetHistory:
    since = _query(request, "since")
    limit = _query(request, "limit")
    if limit is not None and not limit.strip().isdigit():
        raise UsageError(f"limit {limit!r}: expected a whole number from 1 to {MAX_LIMIT}")
    kinds = [k for v in request.query.getall("kind", []) for k in v.split(",") if k.strip()]
    q = GetHistory(since=parse_since(since, now) if since is not None else None,
                   resource=resource if resource is not None else _query(request, "resource"),
                   kinds=[k.strip() for k in kinds] or None, node=_query(request, "node"),
                   limit=int(limit) if limit is not None else 1000)
    return q


def _node_command(action: str, node: str) -> Command:
    if action in NODE_OPS:
        return ChangeNode(action, node)
    if action == "fence":
        return FenceNode(node)
    raise NotFound(f"no node action {action!r}; expected one of {', '.join(NODE_ACTIONS)}")


def setup(app: web.Application, daemon: NodeDaemon) -> None:
    async def status(request: web.Request) -> web.Response:
        return web.json_response(await execute(request, daemon, GetStatus()))

    async def nodes(request: web.Request) -> web.Response:
        return web.json_response((await execute(request, daemon, GetStatus()))["nodes"])

    async def node(request: web.Request) -> web.Response:
        st = await execute(request, daemon, GetStatus())
        return web.json_response(_find(st["nodes"], "name", request.match_info["name"], "node"))

    async def node_action(request: web.Request) -> web.Response:
        name, action = request.match_info["name"], request.match_info["action"]
        await read_object(request, {})
        cmd = _node_command(action, name)
        return web.json_response(await execute(request, daemon, cmd))

    async def resources(request: web.Request) -> web.Response:
        return web.json_response((await execute(request, daemon, GetStatus()))["resources"])

    async def resource(request: web.Request) -> web.Response:
        rid = request.match_info["id"]
        kind, cfg, prims = resource_config(daemon.config, rid)
        st = await execute(request, daemon, GetStatus())
        states = [r for r in st["resources"] if r.get("id") in prims]
        hist = await execute(request, daemon, GetHistory(resource=rid if kind == "primitive" else None))
        events = [e for e in hist["events"] if e.get("fields", {}).get("rsc") in prims][-RECENT_EVENTS:]
        return web.json_response({"id": rid, "kind": kind, "config": cfg,
                                  "status": states[0] if kind == "primitive" and states else None,
                                  "members": states if kind != "primitive" else [],
                                  "events": events})

    async def resource_action(request: web.Request) -> web.Response:
        rid, action = request.match_info["id"], request.match_info["action"]
        body = await read_object(request, {"node": str})
        node = body.get("node")
        cmd: Command
        if action == "cleanup":
            cmd = CleanupResource(rid, node)
        elif action in RESOURCE_OPS:
            cmd = ChangeResource(action, rid, node)
        else:
            raise NotFound(f"no resource action {action!r}; expected one of {', '.join(RESOURCE_ACTIONS)}")
        return web.json_response(await execute(request, daemon, cmd))

    async def history(request: web.Request) -> web.Response:
        return web.json_response(await execute(request, daemon, history_query(request, daemon.clock.wall())))

    async def config_get(request: web.Request) -> web.Response:
        stored = await execute(request, daemon, GetConfig())
        tag = etag(stored)
        if request.headers.get("If-None-Match") == tag:
            return web.Response(status=304, headers={"ETag": tag})
        return web.json_response(stored, headers={"ETag": tag})

    async def config_put(request: web.Request) -> web.Response:
        body = await read_object(request, {"text": str, "base_epoch": list, "force": bool, "comment": str})
        if not isinstance(body.get("text"), str):
            raise UsageError("field 'text' (the configuration YAML) is required")
        base = body.get("base_epoch")
        if base is not None and (len(base) != 2 or not all(type(x) is int and x >= 0 for x in base)):
            raise UsageError(f"base_epoch must be [admin_epoch, epoch] (two whole numbers), got {base!r}")
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            from_header = base_from_if_match(if_match)
            if base is not None and from_header is not None and from_header != base:
                raise UsageError(f"If-Match names {from_header}, base_epoch {base}: give one, or the same")
            base = base if base is not None else from_header
        elif base is None:
            raise web.HTTPPreconditionRequired(text=json.dumps({"error": {
                "code": "precondition-required",
                "message": "name the configuration this change is based on: base_epoch [admin_epoch, epoch] in "
                           "the body or If-Match: <ETag of GET /v1/config>; a stale one gets 409"}}),
                content_type="application/json")
        cmd = ApplyConfig(text=body["text"], base_epoch=base, force=bool(body.get("force")),
                          comment=body.get("comment") or "")
        result = await execute(request, daemon, cmd)
        v = result.get("version") or [0, 0, ""]
        return web.json_response(result, headers={"ETag": f'"{v[0]}.{v[1]}.{v[2]}"'})

    async def command(request: web.Request) -> web.Response:
        return await run_command(request, daemon)

    name_p = Param("name", "path", {"type": "string"}, "node name", True, "node")
    id_p = Param("id", "path", {"type": "string"}, "resource, group or clone id", True, "resource")
    hist_params = (
        Param("since", "query", {"type": "string", "pattern": r"^\d+(\.\d+)?[smhdw]?$"},
              "unix time, or an age: 90s, 10m, 2h, 1d, 1w"),
        Param("resource", "query", {"type": "string"}, "only events of this resource"),
        Param("kind", "query", {"type": "string"}, "comma-separated kinds or prefixes (node, action, fence...)"),
        Param("node", "query", {"type": "string"}, "only events recorded on or about this node"),
        Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "newest N (default 1000)"),
    )
    add_routes(app, [
        Route("GET", "/v1/status", status, "Cluster status (docs/status.md)", "read", response=S.STATUS),
        Route("GET", "/v1/nodes", nodes, "Every configured node's state", "read", tag="nodes",
              response={"type": "array", "items": S.NODE}),
        Route("GET", "/v1/nodes/{name}", node, "One node's state", "read", tag="nodes", params=(name_p,),
              response=S.NODE, responses={404: "no such node"}),
        Route("POST", "/v1/nodes/{name}/{action}", node_action, "Run a node action: standby, online, "
              "maintenance, unmaintenance (configuration changes), fence (power it off now)", "admin", tag="nodes",
              params=(name_p, Param("action", "path", {"type": "string", "enum": list(NODE_ACTIONS)},
                                    "what to do", True)),
              body={"type": "object", "additionalProperties": False},
              response={"anyOf": [S.COMMIT, {"type": "object"}]},
              responses={404: "no such node or action", 503: "no quorum"}),
        Route("GET", "/v1/resources", resources, "Every configured primitive: where it runs, failures, "
              "actions in flight", "read", tag="resources", response={"type": "array", "items": S.RESOURCE}),
        Route("GET", "/v1/resources/{id}", resource, "One resource: status, configuration, recent events",
              "read", tag="resources", params=(id_p,), response=S.RESOURCE_DETAIL,
              responses={404: "no such resource"}),
        Route("POST", "/v1/resources/{id}/{action}", resource_action, "Run a resource action: start, stop, "
              "move/migrate/ban (need node), clear, manage, unmanage, cleanup (node optional)", "admin",
              tag="resources",
              params=(id_p, Param("action", "path", {"type": "string", "enum": list(RESOURCE_ACTIONS)},
                                  "what to do", True)),
              body={"type": "object", "additionalProperties": False,
                    "properties": {"node": {"type": ["string", "null"]}}},
              response={"type": "object"}, responses={404: "no such resource, node or action",
                                                      422: "the change makes the configuration invalid",
                                                      503: "no quorum"}),
        Route("GET", "/v1/history", history, "Every member's events merged by time", "read", tag="history",
              params=hist_params, response=S.HISTORY),
        Route("GET", "/v1/config", config_get, "The current configuration and its version (ETag)", "read",
              tag="config", response=S.STORED_CONFIG, responses={304: "not modified (If-None-Match)"},
              params=(Param("If-None-Match", "header", {"type": "string"}, "an ETag you hold"),)),
        Route("PUT", "/v1/config", config_put, "Replace the configuration, based on a version: a stale base "
              "gets 409 and nothing changes", "admin", tag="config",
              params=(Param("If-Match", "header", {"type": "string", "pattern": IF_MATCH_PATTERN},
                            "ETag of the version the change is based on (instead of base_epoch in the body)"),),
              body=S.CONFIG_PUT, response=S.COMMIT,
              responses={409: "the configuration changed since base_epoch", 422: "invalid configuration",
                         428: "no base version given", 503: "no quorum"}),
        Route("POST", "/v1/commands/{name}", command, "Run any operator command object (the CLI's door); "
              "writes need admin", "read", tag="commands",
              params=(Param("name", "path", {"type": "string", "enum": sorted(REGISTRY)},
                            "command name (havm.commands)", True),),
              body={"type": "object", "properties": {"params": {"type": "object"}}}, response={},
              responses={404: "not found", 409: "conflict", 422: "invalid configuration", 503: "no quorum"}),
    ])
