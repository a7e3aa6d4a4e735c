"""Talking to other nodes' APIs: signed HTTP over the heartbeat links."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from havm.daemon import peerauth
from havm.errors import HavmError, NotReachable, error_from_payload

log = logging.getLogger("havm.peers")

CONNECT_TIMEOUT = 1.0  # a peer on a LAN connects in well under a second; else try its next link


class PeerClient:
    def __init__(self, key: bytes, me: str, timeout: float = 5.0) -> None:
        self.key = key
        self.me = me
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def request(self, addresses: Sequence[str], port: int, method: str, path: str,
                      body: Any = None, timeout: float | None = None) -> Any:
        """Try each address of the peer in turn (one per link); first answer wins."""
        data = b"" if body is None else json.dumps(body).encode()
        last: Exception | None = None
        for addr in addresses:
            headers = {"Content-Type": "application/json",
                       peerauth.HEADER: peerauth.sign(self.key, self.me, method, path, data, time.time())}
            try:
                async with self._sess().request(
                        method, f"http://{addr}:{port}{path}", data=data or None, headers=headers,
                        timeout=aiohttp.ClientTimeout(total=timeout or self.timeout,
                                                      sock_connect=CONNECT_TIMEOUT)) as resp:
                    payload = await resp.json(content_type=None)
                    if resp.status >= 400:
                        raise error_from_payload(payload, resp.status, f"{addr}:{port}")
                    return payload
            except HavmError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
                last = e
                continue
        raise NotReachable(f"no answer from {', '.join(addresses)}:{port}: {last}")
