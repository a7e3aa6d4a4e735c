"""Backends: DevWatchdog's system calls against a fake fd (never the host's
/dev/watchdog: letting it expire would reboot this machine), LabWatchdog against
a real lab watchdog server (in a thread, with a fake reset)."""

from __future__ import annotations

import os
import struct
import threading
from typing import Any

import pytest

from havm.lab.watchdog import Countdown, Server
from havm.watchdog.backend import (
    WDIOC_GETTIMEOUT,
    WDIOC_SETTIMEOUT,
    DevWatchdog,
    LabWatchdog,
    WatchdogError,
)
from tests.daemon.waiting import wait_until


class FakeOps:
    """Records the calls; the 'driver' rounds timeouts to even seconds like some hardware."""

    def __init__(self, present: bool = True, refuse_timeout: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.present = present
        self.refuse_timeout = refuse_timeout

    def open(self, path: str, flags: int) -> int:
        self.calls.append(("open", path, flags & os.O_WRONLY, bool(flags & os.O_CLOEXEC)))
        if not self.present:
            raise FileNotFoundError(2, "No such file or directory")
        return 7

    def write(self, fd: int, data: bytes) -> int:
        self.calls.append(("write", fd, data))
        return len(data)

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes:
        self.calls.append(("ioctl", fd, request, struct.unpack("i", arg)[0]))
        if request == WDIOC_SETTIMEOUT:
            if self.refuse_timeout:
                raise OSError(22, "Invalid argument")
            return struct.pack("i", struct.unpack("i", arg)[0] + 1)
        return struct.pack("i", 60)

    def close(self, fd: int) -> None:
        self.calls.append(("close", fd))

    def exists(self, path: str) -> bool:
        return self.present

    def writable(self, path: str) -> bool:
        return True


def test_dev_watchdog_arms_sets_the_timeout_feeds_and_magic_closes():
    ops = FakeOps()
    wd = DevWatchdog("/dev/watchdog1", module=None, ops=ops)
    assert wd.arm(5) == 6.0  # the value in force, as the driver reports it
    wd.feed()
    wd.feed()
    wd.disarm()
    assert ops.calls == [
        ("open", "/dev/watchdog1", os.O_WRONLY, True),
        ("ioctl", 7, WDIOC_SETTIMEOUT, 5),
        ("write", 7, b"\0"), ("write", 7, b"\0"),
        ("write", 7, b"V"), ("close", 7),
    ]
    assert not wd.armed


def test_dev_watchdog_abandon_closes_without_the_magic_character():
    ops = FakeOps()
    wd = DevWatchdog("/dev/watchdog1", module=None, ops=ops)
    wd.arm(5)
    wd.abandon()
    assert ("write", 7, b"V") not in ops.calls and ops.calls[-1] == ("close", 7)


def test_dev_watchdog_keeps_the_drivers_timeout_if_it_refuses_ours():
    ops = FakeOps(refuse_timeout=True)
    wd = DevWatchdog("/dev/watchdog1", module=None, ops=ops)
    assert wd.arm(5) == 60.0 and wd.armed
    assert ops.calls[-1] == ("ioctl", 7, WDIOC_GETTIMEOUT, 0)


def test_dev_watchdog_missing_device_is_a_named_error():
    wd = DevWatchdog("/dev/nowatchdog", module=None, ops=FakeOps(present=False))
    with pytest.raises(WatchdogError, match="/dev/nowatchdog does not exist"):
        wd.probe()
    with pytest.raises(WatchdogError, match="/dev/nowatchdog"):
        wd.arm(5)
    with pytest.raises(WatchdogError):
        wd.feed()


# -- the lab's watchdog --

def test_countdown_follows_linux_semantics():
    c = Countdown()
    c.open(0.0)
    assert c.message(0.0, b"T5") == b"T5" and c.deadline == 5.0
    assert c.message(3.0, b"\0") is None and c.deadline == 8.0
    assert not c.expired(7.9) and c.expired(8.0)
    c.close(4.0)  # closed without 'V': still counting
    assert c.armed and c.expired(8.0)
    c.open(9.0)
    c.message(9.5, b"V")
    c.close(9.6)
    assert not c.armed and not c.expired(100.0)
    c.open(10.0)
    c.message(10.1, b"V")
    c.message(10.2, b"\0")  # a later write without 'V' cancels the magic
    c.close(10.3)
    assert c.armed


class LabServer:
    def __init__(self, tmp_path) -> None:  # noqa: ANN001
        self.resets: list[float] = []
        self.marker = str(tmp_path / "run" / "watchdog.armed")
        self.server = Server(str(tmp_path / "wd.sock"), self.marker, str(tmp_path / "wd.jsonl"), self.reset)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.server.serve, args=(self.stop.is_set,), daemon=True)

    def reset(self) -> dict[str, Any]:
        self.resets.append(1.0)
        return {"killed": [1, 2]}

    def __enter__(self) -> LabServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.server.close()


def test_lab_watchdog_resets_when_not_fed_and_not_after_a_clean_disarm(tmp_path):
    with LabServer(tmp_path) as lab:
        wd = LabWatchdog(str(tmp_path / "wd.sock"))
        wd.probe()  # asks the state: does not arm
        assert not lab.server.countdown.armed
        assert wd.arm(1) == 1.0 and lab.server.countdown.armed
        second = LabWatchdog(str(tmp_path / "wd.sock"))
        with pytest.raises(WatchdogError, match="EBUSY"):
            second.arm(1)  # one opener at a time, like /dev/watchdog
        wd.feed()
        wd.disarm()
        wait_until(lambda: not lab.server.countdown.armed, 10, "disarmed")
        assert not os.path.exists(lab.marker)

        wd.arm(1)
        wd.abandon()  # havmd died: the countdown goes on
        wait_until(lambda: lab.resets == [1.0], 10, "a reset")
    events = [line for line in (tmp_path / "wd.jsonl").read_text().splitlines()]
    assert any('"expired"' in e for e in events) and any('"reset"' in e for e in events)


def test_lab_watchdog_countdown_is_void_after_a_power_cut(tmp_path):
    with LabServer(tmp_path) as lab:
        wd = LabWatchdog(str(tmp_path / "wd.sock"))
        wd.arm(1)
        os.unlink(lab.marker)  # what kill_node does to the node's run dir
        wd.abandon()
        wait_until(lambda: any(r["event"] == "void" for r in _history(tmp_path)), 10, "a void countdown")
        assert lab.resets == []


def _history(tmp_path) -> list[dict[str, Any]]:  # noqa: ANN001
    import json

    path = tmp_path / "wd.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
