"""havmd on a host: sd_notify readiness (READY/STATUS/STOPPING) and the log targets
(journald's native protocol, file, stderr, auto-detection), unit and with a real havmd."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from havm.daemon.client import Client
from havm.daemon.logtarget import JournalHandler, make_handler, parse_target, stderr_is_journal
from havm.daemon.sdnotify import notify
from havm.errors import UsageError
from tests.daemon.cluster_proc import loopback_cluster


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """Unix socket paths must stay under 108 bytes: pytest's tmp_path can be longer."""
    d = tempfile.mkdtemp(prefix="havm-t", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def listener(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(10)
    return s


def journal_fields(data: bytes) -> dict[str, str]:
    """Parse journald's native datagram: KEY=VALUE lines, or KEY\\n<u64 len><data>\\n."""
    out: dict[str, str] = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            out[k.decode()] = v.decode()
            i = nl + 1
        else:
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            out[line.decode()] = data[nl + 9:nl + 9 + n].decode()
            assert data[nl + 9 + n:nl + 10 + n] == b"\n"
            i = nl + 10 + n
    return out


@pytest.mark.parametrize("text,expected", [
    ("auto", ("auto", None)), ("stderr", ("stderr", None)), ("journal", ("journal", None)),
    ("file:/var/log/havm.log", ("file", "/var/log/havm.log")),
])
def test_parse_target(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["file:", "syslog", "FILE:/x", ""])
def test_parse_target_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="expected auto, stderr, journal or file:PATH"):
        parse_target(text)


def test_journal_records_carry_priority_node_and_tracebacks(short_dir: Path) -> None:
    sock = listener(short_dir / "journal")
    handler = JournalHandler("hv1", socket_path=str(short_dir / "journal"))
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("havm.test.journal")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.warning("link %s down", "ring1")
        f = journal_fields(sock.recv(65536))
        assert f["MESSAGE"] == "havm.test.journal: link ring1 down"
        assert (f["PRIORITY"], f["SYSLOG_IDENTIFIER"], f["HAVM_NODE"]) == ("4", "havmd", "hv1")
        assert f["HAVM_LOGGER"] == "havm.test.journal" and f["CODE_FUNC"].startswith("test_journal")
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            logger.exception("step failed")
        f = journal_fields(sock.recv(65536))
        assert f["PRIORITY"] == "3" and "Traceback" in f["MESSAGE"] and "ValueError: bad\nthing" in f["MESSAGE"]
        logger.debug("quiet")  # level 7
        assert journal_fields(sock.recv(65536))["PRIORITY"] == "7"
    finally:
        logger.removeHandler(handler)
        handler.close()
        sock.close()


def test_journal_record_too_large_is_cut_and_says_so() -> None:
    handler = JournalHandler("hv1", socket_path="/nonexistent")
    try:
        rec = logging.LogRecord("havm.x", logging.INFO, "f.py", 1, "x" * 50_000, None, None)
        data = handler.datagram(rec, limit=2000)
        assert len(data) <= 2000
        assert journal_fields(data)["MESSAGE"].endswith("[cut: 50000 characters]")
    finally:
        handler.close()


def test_journal_send_failure_does_not_raise(capsys: pytest.CaptureFixture[str]) -> None:
    handler = JournalHandler("hv1", socket_path="/nonexistent/journal")
    try:
        handler.handle(logging.LogRecord("havm.x", logging.INFO, "f.py", 1, "lost", None, None))
    finally:
        handler.close()
    assert "Logging error" in capsys.readouterr().err  # reported by logging, not raised


def test_auto_uses_the_journal_only_when_stderr_is_connected_to_it(short_dir: Path) -> None:
    fake_socket = short_dir / "socket"
    fake_socket.write_text("")
    with open(short_dir / "stderr", "w") as f:
        st = os.fstat(f.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stderr_is_journal(env, f.fileno(), str(fake_socket))
        assert not stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, f.fileno(),
                                     str(fake_socket))
        assert not stderr_is_journal(env, f.fileno(), str(short_dir / "no-socket"))
        assert not stderr_is_journal({}, f.fileno(), str(fake_socket))
    assert isinstance(make_handler("auto", "n1", env={}), logging.StreamHandler)
    h = make_handler(f"file:{short_dir / 'havmd.log'}", "n1")
    assert isinstance(h, logging.handlers.WatchedFileHandler)
    h.close()
    with pytest.raises(UsageError, match="file:/nonexistent/dir/x.log"):
        make_handler("file:/nonexistent/dir/x.log", "n1")


def test_notify_sends_one_datagram_path_or_abstract(short_dir: Path) -> None:
    sock = listener(short_dir / "notify")
    try:
        assert notify("READY=1", {"NOTIFY_SOCKET": str(short_dir / "notify")})
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()
    name = f"havm-test-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind("\0" + name)
    abstract.settimeout(10)
    try:
        assert notify("STATUS=x", {"NOTIFY_SOCKET": "@" + name})
        assert abstract.recv(4096) == b"STATUS=x"
    finally:
        abstract.close()
    assert not notify("READY=1", {})  # not under systemd: nothing to do
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(short_dir / "gone")})  # never raises


@pytest.mark.slow
def test_real_havmd_is_ready_when_it_says_so_and_says_stopping(short_dir: Path) -> None:
    with loopback_cluster(short_dir / "c", 2) as c:
        notify_sock = listener(short_dir / "notify")
        log_file = short_dir / "havmd.log"
        api = str(short_dir / "api.sock")
        env = {**os.environ, "NOTIFY_SOCKET": str(short_dir / "notify")}
        proc = subprocess.Popen([sys.executable, "-m", "havm.daemon.main", "--config", str(c.config_path),
                                 "--node", "n1", "--state-dir", str(short_dir / "state"), "--socket", api,
                                 "--log-target", f"file:{log_file}"], env=env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            first = notify_sock.recv(4096).decode()
            assert first.startswith("READY=1\nSTATUS=running as n1") and f"MAINPID={proc.pid}" in first
            # ready means ready: the API answers now, without retrying
            st = Client(socket_path=api).request("GET", "/v1/status", timeout=5)
            assert st["node"] == "n1" and not st["quorum"]["quorate"]  # alone of two
            c.start("n2")
            seen = [notify_sock.recv(4096).decode()]
            while seen[-1] != "STATUS=controller is n1":
                seen.append(notify_sock.recv(4096).decode())  # bounded by the socket's timeout
            assert "STATUS=quorum: majority" in seen, seen
            proc.send_signal(signal.SIGTERM)
            while (msg := notify_sock.recv(4096).decode()) != "STOPPING=1":
                assert msg.startswith("STATUS="), msg
            assert proc.wait(timeout=30) == 0
            text = log_file.read_text()
            assert " n1 havm.daemon INFO: havmd n1 started" in text and "havmd n1 stopped" in text
            assert proc.stdout is not None and proc.stdout.read() == b""  # all of it went to the file
        finally:
            notify_sock.close()
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
