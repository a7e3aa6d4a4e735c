"""Operator commands: one object per operation, shared by CLI, REST API and daemon.

As Ganeti's opcodes: the CLI builds a command from its arguments, the client
sends ``to_json()`` to a daemon (``POST /v1/commands/<name>``, or the REST
route that names it), the API rebuilds the same object with ``from_json``
(validating every field, with precise errors) and the daemon executes it.
So every operation exists once, whichever door it comes through.

Command names are part of the API: ONLY APPEND to the registry.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from havm.errors import UsageError

REGISTRY: dict[str, type[Command]] = {}


@dataclass(frozen=True)
class Command:
    name: ClassVar[str] = ""
    #: True for commands that change the cluster (need admin rights, go to the controller)
    writes: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            if cls.name in REGISTRY:
                raise RuntimeError(f"command {cls.name} registered twice")
            REGISTRY[cls.name] = cls

    def to_json(self) -> dict[str, Any]:
        return {"command": self.name, "params": dataclasses.asdict(self)}

    @classmethod
    def from_params(cls, params: object) -> Command:
        if not isinstance(params, dict):
            raise UsageError(f"{cls.name}: params must be a JSON object")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise UsageError(f"{cls.name}: unknown parameter(s) {', '.join(unknown)}; expected {', '.join(known) or 'none'}")
        values: dict[str, Any] = {}
        for fname, f in known.items():
            if fname not in params:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise UsageError(f"{cls.name}: missing parameter {fname!r}")
                continue
            values[fname] = _check(cls.name, fname, hints[fname], params[fname])
        return cls(**values)


def _check(cmd: str, fname: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, type(int | None)):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check(cmd, fname, a, value)
            except UsageError:
                pass
        raise UsageError(f"{cmd}: parameter {fname!r} has the wrong type: {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise UsageError(f"{cmd}: parameter {fname!r} must be a list")
        return [_check(cmd, fname, args[0], v) for v in value] if args else value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise UsageError(f"{cmd}: parameter {fname!r} must be {hint.__name__}, got {value!r}")
        return value
    return value


def command_from_json(data: object) -> Command:
    if not isinstance(data, dict) or not isinstance(data.get("command"), str):
        raise UsageError("expected {\"command\": NAME, \"params\": {...}}")
    cls = REGISTRY.get(data["command"])
    if cls is None:
        raise UsageError(f"unknown command {data['command']!r}; known: {', '.join(sorted(REGISTRY))}")
    return cls.from_params(data.get("params", {}))
