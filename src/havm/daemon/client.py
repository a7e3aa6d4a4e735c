"""A small synchronous client for a havmd API, over a unix socket or TCP.

Used by the CLI (and tests, benches, the lab). Requests over TCP are signed
with the cluster key (``peerauth``); the unix socket is trusted (mode 0600).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

from havm.commands.base import Command
from havm.daemon import peerauth
from havm.errors import HavmError, NotReachable, Timeout, UsageError, error_from_payload


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Client:
    def __init__(self, socket_path: str | None = None, host: str | None = None, port: int = 7694,
                 key: bytes | None = None, sender: str = "cli", timeout: float = 30.0) -> None:
        if not socket_path and not host:
            raise UsageError("no daemon address: give a socket path or a host")
        self.socket_path = socket_path
        self.host = host
        self.port = port
        self.key = key
        self.sender = sender
        self.timeout = timeout

    @property
    def where(self) -> str:
        return self.socket_path or f"{self.host}:{self.port}"

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        t = timeout or self.timeout
        conn: http.client.HTTPConnection
        if self.socket_path:
            conn = _UnixHTTPConnection(self.socket_path, t)
        else:
            conn = http.client.HTTPConnection(self.host or "", self.port, timeout=t)
            if self.key:
                headers[peerauth.HEADER] = peerauth.sign(self.key, self.sender, method, path, data, time.time())
        try:
            conn.request(method, path, body=data or None, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (ConnectionRefusedError, FileNotFoundError) as e:
            raise NotReachable(f"no havmd answers at {self.where} ({e.strerror or e})") from None
        except TimeoutError:
            raise Timeout(f"havmd at {self.where} did not answer within {t:g}s") from None
        except OSError as e:
            raise NotReachable(f"cannot talk to havmd at {self.where}: {e}") from None
        finally:
            conn.close()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            raise HavmError(f"havmd at {self.where} sent a non-JSON answer (HTTP {resp.status})") from None
        if resp.status >= 400:
            raise error_from_payload(payload, resp.status, self.where)
        return payload

    def run(self, command: Command, timeout: float | None = None) -> Any:
        return self.request("POST", f"/v1/commands/{command.name}", command.to_json(), timeout=timeout)
