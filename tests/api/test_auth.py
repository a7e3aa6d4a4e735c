"""Who may call what: anonymous 401, read token 403 on writes, admin ok, peers signed, sessions."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from havm.api.tokens import read_tokens, revoke_token
from havm.commands.resource import ChangeResource
from havm.daemon import peerauth
from tests.api.fake import FakeDaemon, api_client


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_anonymous_gets_401_with_a_json_error_on_reads_and_writes(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)

    async def body() -> None:
        async with api_client(d) as c:
            for method, path in [("GET", "/v1/status"), ("GET", "/v1/resources"), ("GET", "/v1/config"),
                                 ("POST", "/v1/resources/vm1/stop"), ("PUT", "/v1/config"),
                                 ("POST", "/v1/commands/resource"), ("GET", "/v1/events/stream"),
                                 ("GET", "/internal/config")]:
                r = await c.request(method, path, json={})
                assert r.status == 401, (method, path, r.status)
                err = (await r.json())["error"]
                assert err["code"] == "unauthorized" and "Bearer" in err["message"]
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
    run(body())
    assert not [c for c, _ in d.executed if c.writes]


def test_read_token_reads_but_gets_403_on_every_write(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("viewer", "read")

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.get("/v1/status", headers=bearer(tok))
            assert r.status == 200 and (await r.json())["cluster"] == "apitest"
            for method, path, data in [
                    ("POST", "/v1/resources/vm1/stop", {}), ("POST", "/v1/resources/vm1/move", {"node": "n2"}),
                    ("POST", "/v1/nodes/n2/standby", {}),
                    ("PUT", "/v1/config", {"text": "x", "base_epoch": [0, 0]}),
                    ("POST", "/v1/commands/resource", ChangeResource("stop", "vm1").to_json())]:
                r = await c.request(method, path, json=data, headers=bearer(tok))
                assert r.status == 403, (path, r.status, await r.text())
                assert (await r.json())["error"]["code"] == "forbidden"
            # a read through the generic command door is fine
            r = await c.post("/v1/commands/status", json={}, headers=bearer(tok))
            assert r.status == 200
    run(body())
    assert not [c for c, _ in d.executed if c.writes]
    assert d.replica.version.epoch == 0


def test_admin_token_writes_and_is_credited(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("alice", "admin")

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.post("/v1/resources/vm1/stop", headers=bearer(tok))
            assert r.status == 200, await r.text()
            assert (await r.json())["changed"] is True
            # a claimed 'by' in the generic door does not override the token's name
            cmd = ChangeResource("start", "vm1", by="mallory").to_json()
            r = await c.post("/v1/commands/resource", json=cmd, headers=bearer(tok))
            assert r.status == 200
    run(body())
    assert d.replica.version.epoch == 2
    assert d.replica.current.changed_by == "token:alice"


def test_internal_routes_are_for_signed_peers_only(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("alice", "admin")

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.get("/internal/config", headers=bearer(tok))
            assert r.status == 403 and "cluster members" in (await r.json())["error"]["message"]
            sig = peerauth.sign(d.key, "n2", "GET", "/internal/config", b"", time.time())
            r = await c.get("/internal/config", headers={peerauth.HEADER: sig})
            assert r.status == 200 and "text" in await r.json()
            bad = peerauth.sign(b"x" * 32, "n2", "GET", "/internal/config", b"", time.time())
            r = await c.get("/internal/config", headers={peerauth.HEADER: bad})
            assert r.status == 401 and "signature" in (await r.json())["error"]["message"]
            # a CLI holding the cluster key may use /v1 too
            sig = peerauth.sign(d.key, "cli", "GET", "/v1/status", b"", time.time())
            assert (await c.get("/v1/status", headers={peerauth.HEADER: sig})).status == 200
    run(body())


def test_unix_socket_is_trusted_admin(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)

    async def body() -> None:
        async with api_client(d, trusted=True) as c:
            assert (await c.post("/v1/resources/vm1/stop")).status == 200
            assert (await (await c.get("/v1/whoami")).json())["via"] == "socket"
    run(body())


def test_bad_and_revoked_tokens_and_malformed_headers(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("alice", "read")

    async def body() -> None:
        async with api_client(d) as c:
            assert (await c.get("/v1/status", headers=bearer(tok))).status == 200
            assert (await c.get("/v1/status", headers=bearer(tok + "x"))).status == 401
            r = await c.get("/v1/status", headers={"Authorization": "Basic Zm9vOmJhcg=="})
            assert r.status == 401 and "Bearer" in (await r.json())["error"]["message"]
            revoke_token(d.tokens_path, "alice")  # applies without restart (file re-read on change)
            r = await c.get("/v1/status", headers=bearer(tok))
            assert r.status == 401 and "revoked" in (await r.json())["error"]["message"]
            # a new token created while running works at once
            tok2 = d.token("bob", "admin")
            assert (await c.post("/v1/resources/vm1/stop", headers=bearer(tok2))).status == 200
    run(body())


def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("alice", "admin")
    os.chmod(d.tokens_path, 0o644)

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.get("/v1/status", headers=bearer(tok))
            assert r.status == 401
            assert "chmod 600" in (await r.json())["error"]["message"]
    run(body())


def test_token_file_keeps_hashes_never_tokens(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("alice", "admin")
    text = Path(d.tokens_path).read_text()
    assert tok not in text and tok[5:] not in text
    assert os.stat(d.tokens_path).st_mode & 0o777 == 0o600
    [e] = read_tokens(d.tokens_path)
    assert (e.name, e.role) == ("alice", "admin") and e.hash.startswith("sha256:")


def test_login_cookie_session_and_logout(tmp_path: Path) -> None:
    d = FakeDaemon(tmp_path)
    tok = d.token("viewer", "read")
    admin = d.token("alice", "admin")

    async def body() -> None:
        async with api_client(d) as c:
            r = await c.post("/v1/login", json={"token": "havm_wrong"})
            assert r.status == 401
            r = await c.post("/v1/login", json={"token": tok})
            assert r.status == 200 and (await r.json()) == {"name": "viewer", "role": "read", "via": "session"}
            cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "havm_session=" in cookie
            # the client's cookie jar now carries the session
            assert (await c.get("/v1/status")).status == 200
            assert (await c.post("/v1/resources/vm1/stop")).status == 403
            assert (await c.post("/v1/logout")).status == 200
            assert (await c.get("/v1/status")).status == 401
            # an admin session may write; revoking its token ends the session
            await c.post("/v1/login", json={"token": admin})
            assert (await c.post("/v1/resources/vm1/stop")).status == 200
            revoke_token(d.tokens_path, "alice")
            r = await c.get("/v1/status")
            assert r.status == 401 and "log in again" in (await r.json())["error"]["message"]
    run(body())
