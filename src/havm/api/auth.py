"""Who is calling, and may they? Authentication and roles for the API.

Callers, and what they are:

- the unix socket (mode 0600): trusted, ``admin`` (``make_app(trusted=True)``);
- a peer, or a CLI holding the cluster key, signing each request with it
  (``X-Havm-Auth``, ``havm.daemon.peerauth``): ``peer``, which may do
  everything including the ``/internal/*`` routes;
- a token from the token file (``tokens``): ``Authorization: Bearer <token>``,
  or a session cookie from ``POST /v1/login`` (the dashboard: a browser's
  EventSource cannot send headers). Its role is ``read`` (GET routes) or
  ``admin`` (everything under /v1).

Anything else gets 401 (with a JSON error saying what is expected) except the
few ``public`` routes (login, logout, the OpenAPI description); a read token
on a write gets 403. Sessions live in this daemon's memory (12 h, at most
``MAX_SESSIONS``) and end as soon as their token is revoked. The cookie is
HttpOnly and SameSite=Strict, so another site's page cannot use it (no CSRF);
it is not marked Secure because the API speaks plain HTTP (put a TLS proxy in
front to expose it beyond the cluster network).
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from havm.api import table
from havm.api.table import Handler, Param, Route
from havm.api.tokens import TokenEntry, TokenFile
from havm.config.load import resolve_relative
from havm.daemon import peerauth
from havm.errors import AuthError, UsageError

if TYPE_CHECKING:
    from havm.daemon.node import NodeDaemon

COOKIE = "havm_session"
SESSION_TTL = 12 * 3600.0
MAX_SESSIONS = 1000


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # "admin" | "read" | "peer"
    via: str  # "socket" | "peer" | "token" | "session"

    def may(self, needed: str) -> bool:
        if needed == "public" or self.role == "peer":
            return True
        if needed == "peer":
            return False
        return needed == "read" or self.role == "admin"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "role": "admin" if self.role == "peer" else self.role, "via": self.via}


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("havm_principal", Principal)
SOCKET_ADMIN = Principal("local", "admin", "socket")


@dataclass
class _Session:
    name: str
    hash: str
    expires: float


class Sessions:
    """Login sessions of one daemon: random ids, bounded, expiring."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, _Session] = OrderedDict()

    def create(self, entry: TokenEntry, now: float) -> str:
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = _Session(entry.name, entry.hash, now + SESSION_TTL)
        while len(self._by_id) > MAX_SESSIONS:
            self._by_id.popitem(last=False)
        return sid

    def get(self, sid: str, now: float) -> _Session | None:
        s = self._by_id.get(sid)
        if s is not None and s.expires < now:
            del self._by_id[sid]
            return None
        return s

    def end(self, sid: str) -> None:
        self._by_id.pop(sid, None)


@dataclass
class AuthState:
    tokens: TokenFile
    sessions: Sessions


AUTH: web.AppKey[AuthState] = web.AppKey("havm_auth", AuthState)


def tokens_path(daemon: Any) -> str:
    return resolve_relative(daemon.config_file, daemon.config.daemon.api.tokens_file)


def _state(request: web.Request, daemon: NodeDaemon) -> AuthState:
    st = request.app[AUTH]
    path = tokens_path(daemon)
    if st.tokens.path != path:  # daemon.api.tokens_file changed with the configuration
        st.tokens = TokenFile(path)
    return st


def _unauthorized(message: str) -> web.Response:
    from havm.api.app import http_error

    r = http_error(401, message, AuthError.code)
    r.headers["WWW-Authenticate"] = 'Bearer realm="havm"'
    return r


async def _identify(request: web.Request, daemon: NodeDaemon) -> Principal | str:
    """The caller, or why it is not identified (a message for the 401)."""
    signed = request.headers.get(peerauth.HEADER)
    if signed:
        body = await request.read()
        sender = peerauth.verify(daemon.key, signed, request.method, request.path_qs, body, time.time())
        return Principal(sender, "peer", "peer")
    st = _state(request, daemon)
    authz = request.headers.get("Authorization")
    if authz:
        scheme, _, token = authz.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed Authorization header: expected 'Bearer <token>'"
        entry = st.tokens.lookup(token.strip())
        if entry is None:
            return "invalid or revoked token" + (f" ({st.tokens.problem})" if st.tokens.problem else "")
        return Principal(entry.name, entry.role, "token")
    sid = request.cookies.get(COOKIE)
    if sid:
        s = st.sessions.get(sid, time.time())
        entry = st.tokens.current(s.name, s.hash) if s is not None else None
        if entry is None:
            return "session expired or its token was revoked: log in again (POST /v1/login)"
        return Principal(entry.name, entry.role, "session")
    return ("authentication required: send 'Authorization: Bearer <token>' (create one with "
            "'havm token create NAME --role read|admin'), or log in with POST /v1/login")


def middleware(daemon: NodeDaemon, trusted: bool) -> Any:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        from havm.api.app import http_error

        if trusted:
            request[PRINCIPAL] = SOCKET_ADMIN
            return await handler(request)
        needed = table.role_of(request)
        who = await _identify(request, daemon)
        if isinstance(who, str):
            if needed == "public":
                return await handler(request)
            return _unauthorized(who)
        request[PRINCIPAL] = who
        if needed is not None and not who.may(needed):
            if needed == "peer":
                return http_error(403, f"{request.path} is for cluster members (signed with the cluster key)")
            return http_error(403, f"token {who.name!r} has role {who.role}: {request.method} {request.path} "
                                   f"needs {needed}")
        return await handler(request)

    return authenticate


def principal(request: web.Request) -> Principal | None:
    """Who made this request (None on a public route called anonymously)."""
    return request.get(PRINCIPAL)


def require(request: web.Request, role: str) -> Principal:
    """Raise 403 unless the caller has ``role`` (for routes whose need depends on the body)."""
    p = principal(request)
    if p is None:
        raise AuthError("authentication required")
    if not p.may(role):
        raise web.HTTPForbidden(text=json.dumps({"error": {
            "code": "forbidden", "message": f"token {p.name!r} has role {p.role}: this needs {role}"}}),
            content_type="application/json")
    return p


def actor(request: web.Request) -> str:
    """How a change made by this request is credited in the config and the events."""
    p = principal(request)
    if p is None:
        return "anonymous"
    return {"socket": "local", "peer": f"key:{p.name}"}.get(p.via, f"token:{p.name}")


# -- login routes (public) --

async def _read_object(request: web.Request) -> dict[str, Any]:
    from havm.api.routes_v1 import read_json

    data = await read_json(request)
    if not isinstance(data, dict):
        raise UsageError("expected a JSON object")
    return data


def setup(app: web.Application, daemon: NodeDaemon) -> None:
    app[AUTH] = AuthState(TokenFile(tokens_path(daemon)), Sessions())

    async def login(request: web.Request) -> web.Response:
        data = await _read_object(request)
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise UsageError('expected {"token": "<token>"}')
        st = _state(request, daemon)
        entry = st.tokens.lookup(token)
        if entry is None:
            return _unauthorized("invalid or revoked token")
        sid = st.sessions.create(entry, time.time())
        resp = web.json_response(Principal(entry.name, entry.role, "session").to_json())
        resp.set_cookie(COOKIE, sid, max_age=int(SESSION_TTL), path="/", httponly=True, samesite="Strict")
        return resp

    async def logout(request: web.Request) -> web.Response:
        sid = request.cookies.get(COOKIE)
        if sid:
            _state(request, daemon).sessions.end(sid)
        resp = web.json_response({"ok": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def whoami(request: web.Request) -> web.Response:
        p = principal(request)
        return web.json_response(p.to_json() if p else None)

    who = {"type": "object", "properties": {"name": {"type": "string"}, "role": {"enum": ["read", "admin"]},
                                            "via": {"type": "string"}}}
    table.add_routes(app, [
        Route("POST", "/v1/login", login, "Log in with a token: sets an HttpOnly session cookie", "public",
              tag="auth", body={"type": "object", "required": ["token"],
                                "properties": {"token": {"type": "string", "minLength": 1}}},
              response=who, responses={400: "bad request body", 401: "invalid or revoked token"}),
        Route("POST", "/v1/logout", logout, "End this browser's session", "public", tag="auth",
              response={"type": "object"}),
        Route("GET", "/v1/whoami", whoami, "Who the caller is and its role", "read", tag="auth", response=who),
    ])


__all__ = ["COOKIE", "Param", "Principal", "actor", "middleware", "principal", "require", "setup"]
