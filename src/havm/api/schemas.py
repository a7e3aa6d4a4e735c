"""JSON schemas of the API's bodies and answers (used by the routes' OpenAPI entries).

The answers are the documents the daemon already produces (docs/status.md):
these schemas name their keys and types; keys may be added, never renamed.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NUM: Schema = {"type": "number"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}


def obj(required: list[str] | None = None, **props: Schema) -> Schema:
    s: Schema = {"type": "object", "properties": props}
    if required:
        s["required"] = required
    return s


def nullable(s: Schema) -> Schema:
    return {"anyOf": [s, {"type": "null"}]}


ERROR = obj(["error"], error=obj(["code", "message"], code=STR, message=STR, issues={
    "type": "array", "items": obj(file=STR, line=nullable(INT), field=STR, message=STR)}))

NODE = obj(["name", "state"], name=STR, state={"enum": ["online", "offline", "stopped", "unknown"]},
           member=BOOL, late=BOOL, last_heard_s=nullable(NUM), links={"type": "object"},
           generation=nullable(INT), restarts=INT, config_version=nullable(STR), standby=BOOL,
           maintenance=BOOL, self=BOOL)

RESOURCE = obj(["id", "state"], id=STR, agent=STR, state=STR,
               node={"anyOf": [STR, {"type": "array", "items": STR}, {"type": "null"}]},
               nodes={"type": "array", "items": STR}, promoted={"type": "array", "items": STR},
               failed_on={"type": "array", "items": STR}, failcounts={"type": "object"},
               in_flight={"type": "object"},
               migrating={"anyOf": [{"type": "null"}, obj(["from", "to"], **{"from": nullable(STR), "to": STR})]})

STATUS = obj(["schema", "cluster", "node", "quorum", "controller", "members", "config", "nodes", "resources"],
             schema=INT, cluster=STR, node=STR, time=NUM, uptime_s=NUM, quorum={"type": "object"},
             controller=nullable(STR), controller_term=INT, controller_waiting={"type": "array", "items": STR},
             view_agreed=BOOL,
             members={"type": "array", "items": STR},
             config={"type": "object"}, nodes={"type": "array", "items": NODE}, links={"type": "array"},
             resources={"type": "array", "items": RESOURCE})

EVENT = obj(["seq", "time", "node", "kind", "text"], seq=INT, time=NUM, node=STR, kind=STR, text=STR,
            fields={"type": "object"})

HISTORY = obj(["events", "nodes"], events={"type": "array", "items": EVENT},
              nodes={"type": "object", "additionalProperties": STR})

RESOURCE_DETAIL = obj(["id", "kind", "config", "events"], id=STR, kind={"enum": ["primitive", "group", "clone"]},
                      config={"type": "object"}, status=nullable(RESOURCE),
                      members={"type": "array", "items": RESOURCE}, events={"type": "array", "items": EVENT})

STORED_CONFIG = obj(["admin_epoch", "epoch", "digest", "text"], admin_epoch=INT, epoch=INT, digest=STR, term=INT,
                    text=STR,
                    changed_by=STR, changed_at=NUM, comment=STR)

CONFIG_PUT: Schema = {**obj(["text", "base_epoch"], text=STR, base_epoch={"type": "array", "items": {"type": "integer",
                                                                                        "minimum": 0},
                                                              "minItems": 2, "maxItems": 2},
                            force=BOOL, comment=STR), "additionalProperties": False}

COMMIT = obj(["changed", "version"], changed=BOOL, version={"type": "array"}, controller=STR,
             acked={"type": "array", "items": STR}, missing={"type": "array", "items": STR})
