"""Delay packets in user space, for kernels without the netem qdisc.

``python -m havm.lab.delayer --queue N --delay-ms D`` binds netfilter queue N
(iptables ``-j NFQUEUE --queue-num N --queue-bypass``) and accepts each
packet D milliseconds after it was queued, in order. It speaks the
nfnetlink_queue protocol directly over a netlink socket (no C library).

Guarantees: a packet is never released before its delay has passed; packets
leave in the order they came (constant delay); if the delayer dies, the
``--queue-bypass`` rule lets packets through undelayed rather than dropping
them. Precision is that of a Python timer loop (about a millisecond when
the machine is idle).
"""

from __future__ import annotations

import argparse
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLA_TYPE_MASK = 0x3FFF


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _message(msg_type: int, queue: int, attrs: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, seq, 0) + body


def bind_queue(queue: int) -> socket.socket:
    """A netlink socket bound to netfilter queue ``queue``, copying packet metadata only."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    bind = _attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0))
    params = _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
    for seq, attrs in enumerate((bind, params), start=1):
        sock.send(_message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK, seq))
        reply = sock.recv(65536)
        _, kind, _, _, _ = struct.unpack_from("=IHHII", reply)
        if kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", reply, 16)
            if err != 0:
                raise OSError(-err, f"binding netfilter queue {queue}: {os.strerror(-err)}")
    return sock


def packet_ids(data: bytes) -> list[int]:
    """Packet ids of the NFQNL_MSG_PACKET messages in one netlink datagram."""
    ids = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _, _, _ = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            pos = offset + 20  # after nlmsghdr (16) and nfgenmsg (4)
            while pos + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, pos)
                if alen < 4:
                    break
                if atype & NLA_TYPE_MASK == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, pos + 4)[0])
                pos += (alen + 3) & ~3
        offset += (length + 3) & ~3
    return ids


def verdict(sock: socket.socket, queue: int, packet_id: int) -> None:
    sock.send(_message(NFQNL_MSG_VERDICT, queue, _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))))


def run(queue: int, delay: float) -> None:
    """Release every packet of ``queue`` ``delay`` seconds after it arrived, forever."""
    sock = bind_queue(queue)
    print(f"delayer: bound queue {queue}", flush=True)  # the lab waits for this line
    waiting: collections.deque[tuple[float, int]] = collections.deque()
    while True:
        now = time.monotonic()
        while waiting and waiting[0][0] <= now:
            verdict(sock, queue, waiting.popleft()[1])
        timeout = max(0.0, waiting[0][0] - now) if waiting else None
        ready, _, _ = select.select([sock], [], [], timeout)
        if ready:
            try:
                data = sock.recv(65536)
            except OSError:  # ENOBUFS: the kernel dropped some; go on with the rest
                continue
            arrived = time.monotonic()
            waiting.extend((arrived + delay, pid) for pid in packet_ids(data))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m havm.lab.delayer", description=__doc__.splitlines()[0])
    p.add_argument("--queue", type=int, required=True)
    p.add_argument("--delay-ms", type=float, required=True)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"delayer: queue {args.queue}, delay {args.delay_ms:g}ms, pid {os.getpid()}", flush=True)
    run(args.queue, args.delay_ms / 1000.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
