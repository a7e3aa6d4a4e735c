"""Moving heartbeat datagrams: the Transport interface and its real UDP implementation.

One transport serves one node on every configured link. ``send(link, data)``
delivers the same bytes to every peer on that link: to each peer's address
(unicast), to the link's broadcast address, or to its multicast group.

Socket layout per link (node address A, port P):

- unicast: one socket bound to (A, P), sending to (peer address, P). Works on
  loopback aliases (127.0.0.X) without root as long as P >= 1024.
- broadcast: a receive socket bound to (broadcast address, P), or (0.0.0.0, P)
  for the limited broadcast; a send socket bound to (A, P) with SO_BROADCAST,
  so the kernel sends out of the interface owning A. Both SO_REUSEADDR, so
  several lab nodes sharing one network namespace can coexist. Two links using
  the limited broadcast on one port cannot tell their traffic apart: give them
  different ports (their packets would otherwise be dropped as wrong-link).
- multicast: a receive socket bound to (group, P) that joins the group on the
  interface owning A; a send socket bound to (A, P) with IP_MULTICAST_IF = A,
  IP_MULTICAST_TTL = link.ttl and loopback on (our own packets come back and
  are dropped as ``own``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from havm.config.cluster import Link
from havm.config.schema import ClusterConfig
from havm.membership.packet import MAX_PACKET_BYTES

log = logging.getLogger("havm.membership")

# data, index of the link it arrived on, source (address, port)
Receiver = Callable[[bytes, int, tuple[str, int]], None]

RECV_BUFFER = 1 << 20
MAX_READS_PER_WAKEUP = 256  # bound the work done per readable event
LINK_RETRY = 5.0  # seconds between attempts to open a link that failed
# Any datagram longer than a valid packet is refused as too-large; reading a
# little more than MAX_PACKET_BYTES (not 64 KiB) saves a large allocation per packet.
RECV_BYTES = MAX_PACKET_BYTES + 1


@dataclass(frozen=True)
class SendResult:
    datagrams: int  # handed to the kernel
    errors: int  # refused by the kernel (no route, buffer full, ...)


class TransportError(OSError):
    """A link could not be set up (address not on this host, port in use...)."""


class Transport(ABC):
    """Carries datagrams for one node.

    Guarantees: ``open`` opens every link it can and raises ``TransportError``
    (naming each link and address) only if it can open none; a link it could
    not open is the transport's to retry and to report in the log; ``send`` never blocks and never raises (failures are
    counted in the result: heartbeats are best effort); the receiver is called
    on the event loop that called ``open``, once per datagram, with the index
    of the link whose socket received it.
    """

    @abstractmethod
    async def open(self, receiver: Receiver) -> None: ...

    @abstractmethod
    def send(self, link: int, data: bytes) -> SendResult: ...

    @abstractmethod
    def close(self) -> None: ...

    def set_config(self, config: ClusterConfig) -> None:  # noqa: B027 - optional hook
        """Follow a new configuration with the same links (e.g. a peer added)."""


class UdpTransport(Transport):
    """Real UDP. A link whose sockets cannot be opened at start (its address not yet
    configured, its interface missing) does not stop the others: ``open`` fails
    only if no link at all can be opened, logs the failed ones, and retries them
    every LINK_RETRY seconds; meanwhile sends on them count as errors."""

    def __init__(self, config: ClusterConfig, node: str) -> None:
        self.node = node
        self._config = config
        n = len(config.links)
        self._send_socks: list[socket.socket | None] = [None] * n
        self._recv_socks: list[socket.socket | None] = [None] * n
        self._destinations: list[list[tuple[str, int]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receiver: Receiver | None = None
        self._retry: asyncio.TimerHandle | None = None
        self.set_config(config)

    def set_config(self, config: ClusterConfig) -> None:
        self._config = config
        dests: list[list[tuple[str, int]]] = []
        for link in config.links:
            if link.mode == "unicast":
                dests.append([(n.addresses[link.name], link.port) for n in config.nodes if n.name != self.node])
            elif link.mode == "broadcast":
                dests.append([(link.broadcast or "255.255.255.255", link.port)])
            else:
                assert link.group is not None
                dests.append([(link.group, link.port)])
        self._destinations = dests

    async def open(self, receiver: Receiver) -> None:
        self._loop = asyncio.get_running_loop()
        self._receiver = receiver
        errors = self._open_missing()
        if len(errors) == len(self._config.links):
            self.close()
            first = errors[0]
            raise TransportError(first.errno or errno.EIO, "; ".join(e.strerror or str(e) for e in errors))
        for e in errors:
            log.error("%s; the other links work, retrying this one every %gs", e.strerror, LINK_RETRY)
        if errors:
            self._retry = self._loop.call_later(LINK_RETRY, self._retry_links)

    def _open_missing(self) -> list[TransportError]:
        """Open every link not open yet; returns one error per link that failed."""
        assert self._loop is not None and self._receiver is not None
        me = self._config.node(self.node)
        errors = []
        for index, link in enumerate(self._config.links):
            if self._send_socks[index] is not None:
                continue
            addr = me.addresses[link.name]
            try:
                send, recv = self._open_link(link.mode, addr, link.port, link)
            except OSError as e:
                errors.append(TransportError(
                    e.errno or errno.EIO, f"link {link.name} ({link.mode}, {addr}:{link.port}): {e.strerror or e}"))
                continue
            self._send_socks[index] = send
            self._recv_socks[index] = recv
            self._loop.add_reader(recv.fileno(), self._readable, recv, index, self._receiver)
        return errors

    def _retry_links(self) -> None:
        self._retry = None
        if self._loop is None or self._receiver is None:
            return
        before = {i for i, s in enumerate(self._send_socks) if s is None}
        errors = self._open_missing()
        for i in before:
            if self._send_socks[i] is not None:
                log.info("link %s opened", self._config.links[i].name)
        if errors:
            self._retry = self._loop.call_later(LINK_RETRY, self._retry_links)

    @property
    def open_links(self) -> list[bool]:
        """Which links have their sockets open."""
        return [s is not None for s in self._send_socks]

    @staticmethod
    def _socket(reuse: bool = True) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        except OSError:
            pass
        return s

    def _open_link(self, mode: str, addr: str, port: int, link: Link) -> tuple[socket.socket, socket.socket]:
        if mode == "unicast":
            # No SO_REUSEADDR: a second havmd for the same node must fail with
            # "address in use", not silently share (and split) its heartbeats.
            s = self._socket(reuse=False)
            try:
                s.bind((addr, port))
            except OSError:
                s.close()
                raise
            return s, s
        send = self._socket()
        recv = self._socket()
        try:
            if mode == "broadcast":
                send.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                recv.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                recv.bind((link.broadcast or "0.0.0.0", port))
            else:
                assert link.group is not None
                mreq = socket.inet_aton(link.group) + socket.inet_aton(addr)
                recv.bind((link.group, port))
                recv.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
                send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, link.ttl)
                send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            send.bind((addr, port))
        except OSError:
            send.close()
            recv.close()
            raise
        return send, recv

    def _readable(self, sock: socket.socket, index: int, receiver: Receiver) -> None:
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                data, source = sock.recvfrom(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. ECONNREFUSED reported from an earlier send
                log.debug("link %d: receive error %s", index, e)
                continue
            try:
                receiver(data, index, source)
            except Exception:  # the loop must not die of one packet
                log.exception("link %d: error handling a datagram from %s", index, source)

    def send(self, link: int, data: bytes) -> SendResult:
        sock = self._send_socks[link] if link < len(self._send_socks) else None
        if sock is None:
            return SendResult(0, len(self._destinations[link]))
        ok = failed = 0
        for dest in self._destinations[link]:
            try:
                sock.sendto(data, dest)
                ok += 1
            except OSError as e:
                failed += 1
                log.debug("link %d: send to %s failed: %s", link, dest, e)
        return SendResult(ok, failed)

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        seen: set[int] = set()
        for i in range(len(self._send_socks)):
            recv, send = self._recv_socks[i], self._send_socks[i]
            if recv is not None and self._loop is not None and recv.fileno() >= 0:
                try:
                    self._loop.remove_reader(recv.fileno())
                except (RuntimeError, ValueError):
                    pass
            for sock in (recv, send):
                if sock is not None and id(sock) not in seen:
                    seen.add(id(sock))
                    sock.close()
            self._recv_socks[i] = self._send_socks[i] = None
