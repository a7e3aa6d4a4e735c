"""HMAC signatures on HTTP requests between nodes (and CLIs holding the key).

Header ``X-Havm-Auth: <sender>:<unix-time>:<hex hmac-sha256>`` over
``method\\npath\\ntime\\nsha256(body)``. Requests older or newer than
``MAX_SKEW`` seconds are refused, so a captured request is useless soon after;
the operations signed this way are idempotent (offer a versioned config, read
state), so a replay inside the window changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac

from havm.errors import AuthError

HEADER = "X-Havm-Auth"
MAX_SKEW = 30.0


def sign(key: bytes, sender: str, method: str, path: str, body: bytes, now: float) -> str:
    ts = f"{now:.3f}"
    mac = _mac(key, method, path, ts, body)
    return f"{sender}:{ts}:{mac}"


def _mac(key: bytes, method: str, path: str, ts: str, body: bytes) -> str:
    msg = "\n".join([method.upper(), path, ts, hashlib.sha256(body).hexdigest()]).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def verify(key: bytes, header: str | None, method: str, path: str, body: bytes, now: float) -> str:
    """Return the sender named in a valid signature; raise AuthError otherwise."""
    if not header:
        raise AuthError(f"missing {HEADER} header: this endpoint needs the cluster key")
    parts = header.rsplit(":", 2)
    if len(parts) != 3:
        raise AuthError(f"malformed {HEADER} header")
    sender, ts, mac = parts
    try:
        t = float(ts)
    except ValueError:
        raise AuthError(f"malformed {HEADER} timestamp") from None
    if abs(now - t) > MAX_SKEW:
        raise AuthError(f"request time is {now - t:+.0f}s off (clocks out of sync, or a replay)")
    if not hmac.compare_digest(_mac(key, method, path, ts, body), mac):
        raise AuthError("bad request signature (wrong cluster key?)")
    return sender
