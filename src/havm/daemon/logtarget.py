"""Where havmd logs: ``--log-target auto|stderr|journal|file:PATH``.

- ``stderr``: one line per record, with time and node (as the lab and the
  tests read them).
- ``journal``: journald's native protocol, one datagram per record to
  ``/run/systemd/journal/socket``, no library needed. Each record carries
  ``MESSAGE``, ``PRIORITY`` (syslog levels), ``SYSLOG_IDENTIFIER=havmd``,
  ``HAVM_NODE``, ``HAVM_LOGGER`` and the code location, so ``journalctl -u havmd
  -p warning`` or ``journalctl HAVM_NODE=hv1`` filter on them.
- ``file:PATH``: the stderr format appended to PATH, reopened when logrotate
  moves it (``WatchedFileHandler``; no ``copytruncate`` needed).
- ``auto`` (the default): ``journal`` when stderr is already connected to the
  journal (systemd sets ``$JOURNAL_STREAM`` to stderr's device:inode) and the
  socket exists, else ``stderr``. So the stock unit logs structured records
  and a daemon started by hand logs to the terminal.

Guarantee: logging never takes the daemon down. A journal record too large
for one datagram is cut (and says so); any other send error goes to
``logging``'s own error path (a line on stderr), and the record is lost.
"""

from __future__ import annotations

import errno
import logging
import logging.handlers
import os
import socket
import struct
import sys
from collections.abc import Mapping

from havm.errors import UsageError

JOURNAL_SOCKET = "/run/systemd/journal/socket"
LINE_FORMAT = "%(asctime)s {node} %(name)s %(levelname)s: %(message)s"
# journald's datagrams are bounded by the socket's send buffer; stay well under
MAX_DATAGRAM = 200_000
# syslog priorities (RFC 5424) for Python's levels
PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def parse_target(text: str) -> tuple[str, str | None]:
    """``"file:/var/log/havm.log"`` -> ``("file", "/var/log/havm.log")``; errors name the option."""
    if text in ("auto", "stderr", "journal"):
        return text, None
    if text.startswith("file:") and text[5:]:
        return "file", text[5:]
    raise UsageError(f"--log-target {text!r}: expected auto, stderr, journal or file:PATH")


def stderr_is_journal(env: Mapping[str, str], fd: int = 2, socket_path: str = JOURNAL_SOCKET) -> bool:
    """systemd's documented test: $JOURNAL_STREAM names stderr's device and inode."""
    dev_ino = env.get("JOURNAL_STREAM", "")
    if not dev_ino or not os.path.exists(socket_path):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return dev_ino == f"{st.st_dev}:{st.st_ino}"


def _field(name: str, value: str) -> bytes:
    data = value.encode("utf-8", "replace")
    if b"\n" in data:  # the binary form: name, newline, little-endian 64-bit length, data
        return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return name.encode() + b"=" + data + b"\n"


class JournalHandler(logging.Handler):
    """Writes records to journald's native socket, one datagram each (see module doc)."""

    def __init__(self, node: str, socket_path: str = JOURNAL_SOCKET, identifier: str = "havmd") -> None:
        super().__init__()
        self.node = node
        self.socket_path = socket_path
        self.identifier = identifier
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def datagram(self, record: logging.LogRecord, limit: int = MAX_DATAGRAM) -> bytes:
        message = self.format(record)  # with the traceback, if any
        rest = b"".join(_field(k, str(v or "")) for k, v in (
            ("PRIORITY", str(PRIORITY.get(record.levelno, 6))),
            ("SYSLOG_IDENTIFIER", self.identifier),
            ("HAVM_NODE", self.node),
            ("HAVM_LOGGER", record.name),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", record.lineno),
            ("CODE_FUNC", record.funcName),
            ("THREAD_NAME", record.threadName),
        ))
        data = _field("MESSAGE", message)
        if len(data) + len(rest) > limit:
            keep = max(0, limit - len(rest) - 200)
            data = _field("MESSAGE", message.encode()[:keep].decode("utf-8", "ignore")
                          + f" [cut: {len(message)} characters]")
        return data + rest

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self.datagram(record)
            try:
                self.sock.sendto(data, self.socket_path)
            except OSError as e:
                if e.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                    raise
                self.sock.sendto(self.datagram(record, limit=len(data) // 4), self.socket_path)
        except Exception:  # noqa: BLE001 - logging must not kill the daemon
            self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


def make_handler(target: str, node: str, env: Mapping[str, str] | None = None) -> logging.Handler:
    """The handler for ``--log-target``, formatted; a file that cannot be opened is a UsageError."""
    kind, path = parse_target(target)
    if kind == "auto":
        kind = "journal" if stderr_is_journal(os.environ if env is None else env) else "stderr"
    handler: logging.Handler
    if kind == "journal":
        handler = JournalHandler(node)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        return handler
    if kind == "file":
        assert path is not None
        try:
            handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"--log-target file:{path}: {e.strerror}") from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LINE_FORMAT.format(node=node)))
    return handler
