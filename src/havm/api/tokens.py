"""API tokens: a file of names, roles and token hashes (never the tokens).

Format (JSON, mode 0600 like the cluster key, written atomically)::

    {"version": 1, "tokens": [
        {"name": "alice", "role": "admin", "hash": "sha256:<hex>", "created": 1763790000.0}]}

A token is ``havm_`` + 43 url-safe characters (256 random bits), shown once by
``havm token create``. Because it is that random, a plain SHA-256 of it is as
good as a slow password hash: no dictionary helps. Lookups compare the hash of
the presented token with every entry in constant time.

``TokenFile`` re-reads the file when it changes (mtime, size, inode), so a
token created or revoked applies to a running daemon at its next request.
A file group or others may read is refused (no token is valid) with an error
naming the file, as the key file is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from typing import Any

from havm.durable import atomic_write
from havm.errors import ConfigError, ConfigIssue, NotFound, UnsafeKeyError, UsageError

log = logging.getLogger("havm.api")

PREFIX = "havm_"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TOKEN_ROLES = ("read", "admin")
FIELD = "daemon.api.tokens_file"


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: str
    hash: str
    created: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "hash": self.hash, "created": self.created}


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _issue(path: str, message: str) -> ConfigIssue:
    return ConfigIssue(path, None, FIELD, message)


def read_tokens(path: str) -> list[TokenEntry]:
    """The entries of the token file; [] if it does not exist. Raises ConfigError
    (UnsafeKeyError if group or others may read it) naming the file and the problem."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError([_issue(path, "token file is not a regular file")])
    if st.st_mode & 0o077:
        raise UnsafeKeyError([_issue(path, f"token file mode is {stat.S_IMODE(st.st_mode):04o}; it must not be "
                                           f"readable by group or others (chmod 600 {path})")])
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:
        raise ConfigError([_issue(path, f"token file is not valid JSON: {e}")]) from None
    if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
        raise ConfigError([_issue(path, 'expected {"version": 1, "tokens": [...]}')])
    out = []
    for i, t in enumerate(data["tokens"]):
        if (not isinstance(t, dict) or not isinstance(t.get("name"), str) or t.get("role") not in TOKEN_ROLES
                or not isinstance(t.get("hash"), str) or not t["hash"].startswith("sha256:")):
            raise ConfigError([_issue(path, f"tokens[{i}]: expected name, role (read|admin) and hash "
                                            f"(sha256:...), got {str(t)[:100]}")])
        created = t.get("created", 0.0)
        out.append(TokenEntry(t["name"], t["role"], t["hash"],
                              float(created) if isinstance(created, int | float) else 0.0))
    return out


def write_tokens(path: str, entries: list[TokenEntry]) -> None:
    """Replace the token file atomically, mode 0600 (temp file + fsync + rename)."""
    data = {"version": 1, "tokens": [e.to_json() for e in entries]}
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode(), 0o600)


def create_token(path: str, name: str, role: str, now: float | None = None) -> str:
    """Add a token named ``name``; returns the token itself (the only time it exists in clear)."""
    if not NAME_RE.match(name):
        raise UsageError(f"token name {name!r}: use letters, digits and . _ @ - (at most 64)")
    if role not in TOKEN_ROLES:
        raise UsageError(f"token role {role!r}: expected one of {', '.join(TOKEN_ROLES)}")
    entries = read_tokens(path)
    if any(e.name == name for e in entries):
        raise UsageError(f"a token named {name!r} exists already in {path}; revoke it first")
    token = PREFIX + secrets.token_urlsafe(32)
    entries.append(TokenEntry(name, role, hash_token(token), time.time() if now is None else now))
    write_tokens(path, entries)
    return token


def revoke_token(path: str, name: str) -> None:
    entries = read_tokens(path)
    keep = [e for e in entries if e.name != name]
    if len(keep) == len(entries):
        raise NotFound(f"no token named {name!r} in {path}")
    write_tokens(path, keep)


class TokenFile:
    """The token file as the daemon sees it, re-read whenever it changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._entries: list[TokenEntry] = []
        self.problem: str | None = None  # why no token is valid, if the file is refused

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp == self._stamp and (stamp is not None or not self._entries):
            return
        self._stamp = stamp
        try:
            self._entries = read_tokens(self.path)
            self.problem = None
        except ConfigError as e:
            self._entries = []
            self.problem = str(e)
            log.error("no API token is valid: %s", e)

    def entries(self) -> list[TokenEntry]:
        self._refresh()
        return list(self._entries)

    def lookup(self, token: str) -> TokenEntry | None:
        """The entry whose hash matches ``token`` (every entry compared, in constant time)."""
        want = hash_token(token)
        found = None
        for e in self.entries():
            if hmac.compare_digest(e.hash.encode(), want.encode()):
                found = e
        return found

    def current(self, name: str, hash_: str) -> TokenEntry | None:
        """The entry still holding ``name`` and ``hash_`` (a session ends when its token is revoked)."""
        for e in self.entries():
            if e.name == name and hmac.compare_digest(e.hash.encode(), hash_.encode()):
                return e
        return None
