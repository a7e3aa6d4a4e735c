"""Watchdog backends: something that resets this node unless it is fed.

The guarantees every backend gives (those of Linux's watchdog API):

- ``arm(timeout)`` starts the countdown; once armed, the node is reset
  ``timeout`` seconds after the last feed, whatever happens to havmd: a
  crash, SIGKILL, SIGSTOP, a hung control loop. Only the hardware (or the
  lab's watchdog process, outside the node) can stop that.
- ``feed()`` restarts the countdown.
- ``disarm()`` writes the magic character 'V' and closes: the only way to
  stop the countdown. Only a clean stop uses it, once nothing runs here.
- ``abandon()`` closes without the magic character: the countdown goes on
  (what a crash does; used when havmd exits while something may still run).

Backends: ``DevWatchdog`` (``/dev/watchdog``: softdog or a hardware
watchdog) and ``LabWatchdog`` (the lab's watchdog process of this node,
``havm.lab.watchdog``, reached through a unix socket).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import struct
import subprocess
from abc import ABC, abstractmethod
from typing import Protocol

from havm.config.watchdog import Watchdog
from havm.errors import HavmError

log = logging.getLogger("havm.watchdog")

# <linux/watchdog.h>: _IOWR('W', 6, int) and _IOR('W', 7, int)
WDIOC_SETTIMEOUT = 0xC0045706
WDIOC_GETTIMEOUT = 0x80045707
MAGIC_CLOSE = b"V"
FEED = b"\0"  # any byte but 'V' feeds
MODPROBE_TIMEOUT = 10.0
LAB_REPLY_TIMEOUT = 2.0


class WatchdogError(HavmError):
    """The watchdog cannot be armed (no device, busy, refused timeout)."""

    code = "watchdog"
    exit_status = 1


class WatchdogBackend(ABC):
    """See the module doc for the guarantees."""

    armed: bool = False

    @abstractmethod
    def probe(self) -> None:
        """Check the watchdog is there and usable, without arming it (nor
        disarming one left counting by a havmd that crashed). Raises WatchdogError."""

    @abstractmethod
    def arm(self, timeout: float) -> float:
        """Start (or restart) the countdown; return the timeout in force. Raises WatchdogError."""

    @abstractmethod
    def feed(self) -> None:
        """Restart the countdown. Raises WatchdogError if the watchdog is gone."""

    @abstractmethod
    def disarm(self) -> None:
        """Magic close: stop the countdown. Only for a node with nothing running."""

    @abstractmethod
    def abandon(self) -> None:
        """Close without the magic character: the countdown continues."""

    @abstractmethod
    def describe(self) -> str: ...


class FileOps(Protocol):
    """The system calls DevWatchdog makes (a fake fd records them in unit tests)."""

    def open(self, path: str, flags: int) -> int: ...

    def write(self, fd: int, data: bytes) -> int: ...

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes: ...

    def close(self, fd: int) -> None: ...

    def exists(self, path: str) -> bool: ...

    def writable(self, path: str) -> bool: ...


class OsFileOps:
    def open(self, path: str, flags: int) -> int:
        return os.open(path, flags)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes:
        return bytes(fcntl.ioctl(fd, request, arg))

    def close(self, fd: int) -> None:
        os.close(fd)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def writable(self, path: str) -> bool:
        return os.access(path, os.W_OK)


class DevWatchdog(WatchdogBackend):
    """A Linux watchdog device. Opening it arms it; WDIOC_SETTIMEOUT sets the
    timeout (whole seconds; the driver may round it, the value in force is
    returned); a write feeds it; 'V' then close disarms it (unless the driver
    was loaded with nowayout, in which case only a reset ends it).

    If the device is missing and ``module`` is set, ``modprobe module`` is run
    once (softdog: a kernel timer; it resets the machine even if user space
    hangs, but not if the kernel itself hangs, where a hardware one would)."""

    def __init__(self, path: str = "/dev/watchdog", module: str | None = "softdog",
                 ops: FileOps | None = None) -> None:
        self.path = path
        self.module = module
        self.ops: FileOps = ops or OsFileOps()
        self.fd: int | None = None

    def describe(self) -> str:
        return f"{self.path} ({self.module or 'hardware'})"

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_CLOEXEC
        try:
            return self.ops.open(self.path, flags)
        except FileNotFoundError:
            if not self.module:
                raise WatchdogError(f"watchdog device {self.path} does not exist") from None
        self._modprobe()
        try:
            return self.ops.open(self.path, flags)
        except OSError as e:
            raise WatchdogError(f"watchdog device {self.path}: {e.strerror} (after modprobe {self.module})") from None

    def _modprobe(self) -> None:
        assert self.module
        try:
            r = subprocess.run(["modprobe", self.module], capture_output=True, text=True, timeout=MODPROBE_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise WatchdogError(f"cannot load watchdog module {self.module}: {e}") from None
        if r.returncode != 0:
            raise WatchdogError(f"modprobe {self.module} failed: {r.stderr.strip() or r.returncode}")

    def probe(self) -> None:
        if not self.ops.exists(self.path):
            if not self.module:
                raise WatchdogError(f"watchdog device {self.path} does not exist")
            self._modprobe()
            if not self.ops.exists(self.path):
                raise WatchdogError(f"watchdog device {self.path} does not exist even after modprobe {self.module}")
        if not self.ops.writable(self.path):
            raise WatchdogError(f"watchdog device {self.path} is not writable by havmd")

    def arm(self, timeout: float) -> float:
        if self.fd is None:
            try:
                self.fd = self._open()
            except OSError as e:
                if e.errno == errno.EBUSY:
                    raise WatchdogError(f"watchdog device {self.path} is busy (another program holds it open; "
                                        "wdmd, sbd or watchdog(8)?)") from None
                raise WatchdogError(f"watchdog device {self.path}: {e.strerror}") from None
        self.armed = True
        want = max(1, int(timeout))
        try:
            got = struct.unpack("i", self.ops.ioctl(self.fd, WDIOC_SETTIMEOUT, struct.pack("i", want)))[0]
        except OSError as e:
            # armed with the driver's own timeout: keep feeding, but say it
            log.error("watchdog %s refused timeout %ds (%s); it runs with its own", self.path, want, e.strerror)
            got = struct.unpack("i", self.ops.ioctl(self.fd, WDIOC_GETTIMEOUT, struct.pack("i", 0)))[0]
        return float(got)

    def feed(self) -> None:
        if self.fd is None:
            raise WatchdogError(f"watchdog {self.path} is not open")
        try:
            self.ops.write(self.fd, FEED)
        except OSError as e:
            raise WatchdogError(f"feeding watchdog {self.path} failed: {e.strerror}") from None

    def disarm(self) -> None:
        if self.fd is None:
            return
        try:
            self.ops.write(self.fd, MAGIC_CLOSE)
        finally:
            self._close()

    def abandon(self) -> None:
        if self.fd is not None:
            self._close()

    def _close(self) -> None:
        fd, self.fd = self.fd, None
        self.armed = False
        if fd is not None:
            self.ops.close(fd)


class LabWatchdog(WatchdogBackend):
    """The lab's watchdog process of this node (``havm.lab.watchdog``), with
    Linux's semantics over a unix SOCK_SEQPACKET socket: ``O`` as the first
    message opens, i.e. arms (answered ``OK``, or ``EBUSY`` if another client
    holds it; ``P`` instead asks the state without arming), ``T<seconds>``
    sets the timeout (answered ``T<seconds>``), any other message feeds, a
    message holding 'V' followed by end-of-stream disarms, end-of-stream
    without it leaves the countdown running. The process runs outside the
    node: freezing or killing the node's processes does not stop it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock: socket.socket | None = None

    def describe(self) -> str:
        return f"lab watchdog {self.path}"

    def _request(self, sock: socket.socket, data: bytes) -> bytes:
        sock.send(data)
        return sock.recv(64)

    def _connect(self, first: bytes) -> tuple[socket.socket, bytes]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(LAB_REPLY_TIMEOUT)
        try:
            s.connect(self.path)
            return s, self._request(s, first)
        except OSError as e:
            s.close()
            raise WatchdogError(f"lab watchdog {self.path}: {e.strerror or e}") from None

    def probe(self) -> None:
        s, reply = self._connect(b"P")
        s.close()
        if not reply.startswith(b"STATE "):
            raise WatchdogError(f"lab watchdog {self.path} answers {reply!r}, not a state")

    def arm(self, timeout: float) -> float:
        if self.sock is None:
            s, reply = self._connect(b"O")
            if reply != b"OK":
                s.close()
                raise WatchdogError(f"lab watchdog {self.path} refused to arm: {reply.decode(errors='replace')}")
            self.sock = s
        self.armed = True
        try:
            reply = self._request(self.sock, b"T%d" % max(1, int(timeout)))
        except OSError as e:
            raise WatchdogError(f"lab watchdog {self.path}: {e.strerror or e}") from None
        return float(reply[1:].decode() or 0)

    def feed(self) -> None:
        if self.sock is None:
            raise WatchdogError(f"lab watchdog {self.path} is not armed")
        try:
            self.sock.send(FEED, socket.MSG_DONTWAIT)
        except OSError as e:
            raise WatchdogError(f"feeding lab watchdog {self.path} failed: {e.strerror or e}") from None

    def disarm(self) -> None:
        if self.sock is None:
            return
        try:
            self.sock.send(MAGIC_CLOSE)
            # shutdown, not only close: a forked child holding the socket must not keep it "open"
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError as e:
            log.error("disarming lab watchdog %s failed: %s", self.path, e)
        finally:
            self._close()

    def abandon(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._close()

    def _close(self) -> None:
        s, self.sock = self.sock, None
        self.armed = False
        if s is not None:
            s.close()


def make_backend(cfg: Watchdog, node: str) -> WatchdogBackend | None:
    """The backend the configuration names for ``node``; None without a watchdog."""
    if cfg.backend == "dev":
        return DevWatchdog(cfg.device_for(node), cfg.module)
    if cfg.backend == "lab":
        return LabWatchdog(cfg.device_for(node))
    return None
