"""Real UDP between lab nodes, each end run inside its node's namespace."""

from __future__ import annotations

import subprocess
import sys

from havm.lab import control

# Counts datagrams until its stdin closes and then no datagram came for 0.3 s
# (the last ones may still be crossing the bridge), then prints the count.
RECEIVER = """
import select, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # a starved reader must not overflow
s.bind((sys.argv[1], int(sys.argv[2])))
if len(sys.argv) > 3:  # join the multicast group sys.argv[1] on the interface of address sys.argv[3]
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 socket.inet_aton(sys.argv[1]) + socket.inet_aton(sys.argv[3]))
print("ready", flush=True)
n = 0
watch = [s, sys.stdin]
while True:
    r, _, _ = select.select(watch, [], [], 60 if sys.stdin in watch else 0.3)
    if s in r:
        s.recv(100)
        n += 1
    elif sys.stdin in r:
        watch = [s]
    else:
        break
print(n, flush=True)
"""

SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sent = 0
for i in range(int(sys.argv[3])):
    try:
        s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
        sent += 1
    except OSError:
        pass
    time.sleep(0.001)
print(sent)
"""


def udp_count(lab_dir: str, src: str, dst: str, dst_addr: str, count: int = 50, port: int = 5555,
              join: str | None = None) -> int:
    """Send ``count`` datagrams from node ``src`` to ``dst_addr``; return how many arrived on node
    ``dst`` (which, with ``join``, joins multicast group ``dst_addr`` on its address ``join``)."""
    recv = subprocess.Popen(
        control.exec_argv(lab_dir, dst, [sys.executable, "-c", RECEIVER, dst_addr, str(port)]
                          + ([join] if join else [])),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout is not None and recv.stdin is not None
        assert recv.stdout.readline().strip() == "ready"
        control.run_in(lab_dir, src, [sys.executable, "-c", SENDER, dst_addr, str(port), str(count)],
                       check=True, timeout=60, capture_output=True)
        out, _ = recv.communicate(input="", timeout=60)
        return int(out.strip())
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()


ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(100)
    s.sendto(data, peer)
"""

PINGER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for i in range(int(sys.argv[3])):
    t = time.monotonic()
    s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
    s.recv(100)
    print((time.monotonic() - t) * 1000, flush=True)
"""


def udp_rtts(lab_dir: str, src: str, dst: str, dst_addr: str, count: int = 10, port: int = 5556) -> list[float]:
    """Round-trip times (ms) of ``count`` datagrams from ``src`` to an echo on ``dst``."""
    echo = subprocess.Popen(
        control.exec_argv(lab_dir, dst, [sys.executable, "-c", ECHO, dst_addr, str(port)]),
        stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
        out = control.run_in(lab_dir, src, [sys.executable, "-c", PINGER, dst_addr, str(port), str(count)],
                             check=True, timeout=60, capture_output=True, text=True).stdout
        return [float(x) for x in out.split()]
    finally:
        echo.kill()
        echo.wait()
