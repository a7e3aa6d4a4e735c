"""The small error hierarchy of havm, with machine codes.

Errors are raised deep inside and translated once, at the edge: the CLI maps
``code`` to an exit status and prints ``str(err)``; the API maps it to an HTTP
status. The daemon's loops catch ``HavmError`` per event and never die of one.

Codes and exit statuses are part of the CLI contract: ONLY APPEND.
"""

from __future__ import annotations

from dataclasses import dataclass


class HavmError(Exception):
    """Base of every error havm raises on purpose."""

    code = "error"
    exit_status = 1
    http_status = 500


class UsageError(HavmError):
    code = "usage"
    exit_status = 2
    http_status = 400


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file, located precisely."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ConfigError(HavmError):
    """A configuration file (or key file) is invalid; carries every issue found."""

    code = "config-invalid"
    exit_status = 3
    http_status = 422

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class UnsafeKeyError(ConfigError):
    code = "key-unsafe"


class NotReachable(HavmError):
    """No daemon answered at the given address or socket."""

    code = "unreachable"
    exit_status = 4
    http_status = 503


class NoQuorum(HavmError):
    code = "no-quorum"
    exit_status = 5
    http_status = 503


class Conflict(HavmError):
    """Optimistic concurrency failed: the caller's epoch is stale."""

    code = "conflict"
    exit_status = 6
    http_status = 409


class NotFound(HavmError):
    code = "not-found"
    exit_status = 7
    http_status = 404


class Timeout(HavmError):
    code = "timeout"
    exit_status = 8
    http_status = 504


class LabError(HavmError):
    code = "lab"
    exit_status = 9
    http_status = 500


class AuthError(HavmError):
    code = "unauthorized"
    exit_status = 10
    http_status = 401


def error_to_payload(e: HavmError) -> dict[str, object]:
    """The JSON body an API returns for ``e`` (the inverse of ``error_from_payload``)."""
    err: dict[str, object] = {"code": e.code, "message": str(e)}
    if isinstance(e, ConfigError):
        err["issues"] = [{"file": i.file, "line": i.line, "field": i.field, "message": i.message}
                         for i in e.issues]
    return {"error": err}


def error_from_payload(payload: object, status: int, where: str) -> HavmError:
    """Rebuild the error a daemon answered with, keeping its class and code."""
    err = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(err, dict):
        return HavmError(f"havmd at {where} answered HTTP {status}")
    code, message = str(err.get("code", "")), str(err.get("message", ""))
    if code in (ConfigError.code, UnsafeKeyError.code):
        issues = [ConfigIssue(str(i.get("file", "")), i.get("line"), str(i.get("field", "")),
                              str(i.get("message", "")))
                  for i in err.get("issues", []) if isinstance(i, dict)]
        return ConfigError(issues or [ConfigIssue("", None, "", message)])
    for cls in (UsageError, NotReachable, NoQuorum, Conflict, NotFound, Timeout, LabError, AuthError):
        if cls.code == code:
            return cls(message)
    return HavmError(message or f"havmd at {where} answered HTTP {status}")
