"""The lab's watchdog: one process per lab node, the node's watchdog "hardware".

It resets (``havm.lab.control.kill_node``: every process of the node) a node
whose havmd armed it and then stopped feeding it, with Linux's semantics
(``havm.watchdog.backend.LabWatchdog`` is the client; protocol there): open
arms, a write feeds, 'V' then close disarms, a close without 'V' (havmd
crashed or was killed) leaves the countdown running.

Like hardware it lives outside the node: it runs in the root namespace,
without the lab's node marker, so ``havm lab freeze``/``kill`` of the node
leave it running (a frozen havmd stops feeding and is reset; a killed one,
too, with everything it started).

A power cut ends the countdown, as on a real machine: arming writes a token
to the node's run dir (``state_dir/run/watchdog.armed``), which a power cut
(``kill_node``) removes; an expiry whose token is gone is void. After a reset
the node stays off (as after a fence): ``havm lab start NODE`` powers it on.

Its log is ``nodes/NODE/watchdog.log``; ``nodes/NODE/watchdog.jsonl`` records
one JSON line per arm, disarm, expiry and reset, read by ``history()``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from havm.lab import process
from havm.lab.state import LabState, NodeRecord

log = logging.getLogger("havm.lab.watchdog")

SOCKET_NAME = "wd.sock"  # short: unix socket paths are limited to 107 bytes
PID_FILE = "watchdog.pid"
HISTORY = "watchdog.jsonl"
DEFAULT_TIMEOUT = 60.0  # until the client sets one (Linux drivers have a default too)
START_TIMEOUT = 10.0
LAB_CHECK = 1.0  # seconds between checks that the lab still exists
REALTIME_PRIORITY = 20  # SCHED_RR, above havmd's heartbeat thread (10)


def socket_path(rec: NodeRecord) -> str:
    return os.path.join(rec.dir, SOCKET_NAME)


def device_template(state: LabState) -> str:
    """``watchdog.device`` for the lab's cluster.yaml (``{node}`` per node)."""
    return os.path.join(state.dir, "nodes", "{node}", SOCKET_NAME)


def marker_path(rec: NodeRecord) -> str:
    return os.path.join(rec.state_dir, "run", "watchdog.armed")


@dataclass
class Countdown:
    """The watchdog's state machine, without sockets (unit-tested alone)."""

    timeout: float = DEFAULT_TIMEOUT
    armed: bool = False
    deadline: float = 0.0
    expect_close: bool = False
    token: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)

    def open(self, now: float) -> str:
        self.armed = True
        self.deadline = now + self.timeout
        self.expect_close = False
        self.token = secrets.token_hex(8)
        self._record(now, "armed", timeout=self.timeout)
        return self.token

    def message(self, now: float, data: bytes) -> bytes | None:
        """A write from the client; returns the reply, if the message gets one."""
        if data.startswith(b"T"):
            self.timeout = max(1.0, float(data[1:].decode() or DEFAULT_TIMEOUT))
            self.deadline = now + self.timeout
            self._record(now, "timeout", timeout=self.timeout)
            return b"T%d" % int(self.timeout)
        # Linux: every write pings; the magic character anywhere in it allows a disarming close
        self.deadline = now + self.timeout
        self.expect_close = b"V" in data
        return None

    def close(self, now: float) -> None:
        if self.armed and self.expect_close:
            self.armed = False
            self._record(now, "disarmed")
        elif self.armed:
            self._record(now, "closed-armed", reset_in=round(self.deadline - now, 3))

    def expired(self, now: float) -> bool:
        return self.armed and now >= self.deadline

    def _record(self, now: float, event: str, **fields: Any) -> None:
        self.records.append({"at": time.time(), "event": event, **fields})


class Server:
    """The watchdog process's loop: one listening socket, one client at a time."""

    def __init__(self, path: str, marker: str, history: str, reset: Callable[[], dict[str, Any]],
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.path = path
        self.marker = marker
        self.history = history
        self.reset = reset
        self.alive = alive
        self.countdown = Countdown()
        self.client: socket.socket | None = None
        self.sel = selectors.DefaultSelector()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(path)
        self.listener.listen(8)
        self.sel.register(self.listener, selectors.EVENT_READ)

    def serve(self, stop: Callable[[], bool] = lambda: False) -> None:
        next_check = time.monotonic() + LAB_CHECK
        while not stop():
            now = time.monotonic()
            wait = LAB_CHECK
            if self.countdown.armed:
                wait = max(0.0, min(wait, self.countdown.deadline - now))
            for key, _ in self.sel.select(wait):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self.listener:
                    self._accept()
                else:
                    self._read(sock)
            now = time.monotonic()
            if self.countdown.expired(now):
                self._expire(now)
            if now >= next_check:
                next_check = now + LAB_CHECK
                if not self.alive():
                    log.info("the lab is gone: exiting")
                    return
            self._flush()

    def close(self) -> None:
        self.sel.close()
        self.listener.close()
        if self.client is not None:
            self.client.close()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(1.0)
        try:
            first = conn.recv(64)
            if first == b"P":
                state = f"armed {self.countdown.deadline - time.monotonic():.3f}" if self.countdown.armed else "idle"
                conn.send(b"STATE " + state.encode())
                conn.close()
            elif first == b"O" and self.client is None:
                token = self.countdown.open(time.monotonic())
                self._write_marker(token)
                conn.send(b"OK")
                self.client = conn
                self.sel.register(conn, selectors.EVENT_READ)
                log.info("armed (timeout %gs)", self.countdown.timeout)
            else:
                conn.send(b"EBUSY" if first == b"O" else b"EINVAL")
                conn.close()
        except OSError as e:
            log.warning("client failed while opening: %s", e)
            conn.close()

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(64)
        except OSError:
            data = b""
        now = time.monotonic()
        if data:
            reply = self.countdown.message(now, data)
            if reply is not None:
                try:
                    conn.send(reply)
                except OSError:
                    pass
            return
        self.sel.unregister(conn)
        conn.close()
        self.client = None
        self.countdown.close(now)
        if self.countdown.armed:
            log.warning("closed without the magic character: still armed, reset in %.1fs",
                        self.countdown.deadline - now)
        else:
            self._remove_marker()
            log.info("disarmed")

    def _expire(self, now: float) -> None:
        self.countdown.armed = False
        if self.client is not None:
            self.sel.unregister(self.client)
            self.client.close()
            self.client = None
        if self._read_marker() != self.countdown.token:
            log.info("countdown ended, but the node was power-cycled since it was armed: void")
            self.countdown._record(now, "void")
            return
        log.warning("NOT FED FOR %gs: resetting the node", self.countdown.timeout)
        self.countdown._record(now, "expired", timeout=self.countdown.timeout)
        self._flush()
        try:
            result = self.reset()
            self.countdown._record(now, "reset", killed=len(result.get("killed", [])), at=result.get("at"))
            log.warning("node reset: %d process(es) killed", len(result.get("killed", [])))
        except Exception as e:  # noqa: BLE001 - the watchdog outlives a failed reset and says so
            self.countdown._record(now, "reset-failed", error=str(e))
            log.error("reset failed: %s", e)
        self._remove_marker()

    def _write_marker(self, token: str) -> None:
        os.makedirs(os.path.dirname(self.marker), exist_ok=True)
        with open(self.marker, "w", encoding="utf-8") as f:
            f.write(token)

    def _read_marker(self) -> str | None:
        try:
            with open(self.marker, encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return None

    def _remove_marker(self) -> None:
        try:
            os.unlink(self.marker)
        except FileNotFoundError:
            pass

    def _flush(self) -> None:
        if not self.countdown.records:
            return
        with open(self.history, "a", encoding="utf-8") as f:
            for r in self.countdown.records:
                f.write(json.dumps(r) + "\n")
        self.countdown.records.clear()


# -- the lab's side: configure, start, stop, read --------------------------------

# The lab's watchdog settings (``havm lab up --fencing watchdog``): short, so a test
# or a campaign sees a reset within seconds; fencing_watchdog_timeout is derived.
LAB_TIMEOUT = 3.0
LAB_INTERVAL = 0.5
LAB_MARGIN = 1.0  # seconds above the validated bound


def cluster_settings(state: LabState, deadtime: float, timeout: float = LAB_TIMEOUT,
                     interval: float = LAB_INTERVAL) -> dict[str, Any]:
    """What a watchdog-fenced lab adds to its cluster.yaml: the ``watchdog``
    section and ``properties.fencing_watchdog_timeout`` (bound + LAB_MARGIN)."""
    return {"watchdog": {"backend": "lab", "device": device_template(state), "timeout": timeout,
                         "interval": interval},
            "properties": {"fencing_watchdog_timeout": timeout + interval + deadtime + LAB_MARGIN}}


def _pid_file(rec: NodeRecord) -> str:
    return os.path.join(rec.dir, PID_FILE)


def _recorded(rec: NodeRecord) -> tuple[int, int] | None:
    try:
        with open(_pid_file(rec), encoding="utf-8") as f:
            d = json.load(f)
        return int(d["pid"]), int(d["start"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(rec: NodeRecord) -> bool:
    got = _recorded(rec)
    return got is not None and process.is_alive(*got)


def start(state: LabState, rec: NodeRecord) -> None:
    """Start ``rec``'s watchdog (root namespace, outside the node) and wait for its socket."""
    if running(rec):
        return
    os.makedirs(rec.dir, exist_ok=True)
    path = socket_path(rec)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    env = {k: v for k, v in os.environ.items() if k != "HAVM_LAB_NODE"}  # not one of the node's processes
    argv = [sys.executable, "-m", "havm.lab.watchdog", "--lab-dir", state.dir, "--node", rec.name]
    pid, started = process.spawn_detached(argv, os.path.join(rec.dir, "watchdog.log"), cwd=state.dir, env=env)
    with open(_pid_file(rec), "w", encoding="utf-8") as f:
        json.dump({"pid": pid, "start": started}, f)
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(path):
        if not process.is_alive(pid, started) or time.monotonic() >= deadline:
            from havm.errors import LabError

            raise LabError(f"the lab watchdog of {rec.name} did not start; "
                           f"{os.path.join(rec.dir, 'watchdog.log')}:\n"
                           f"{process.log_tail(os.path.join(rec.dir, 'watchdog.log'))}")
        time.sleep(process.POLL)


def start_all(state: LabState) -> None:
    for rec in state.nodes.values():
        start(state, rec)


def stop_all(state: LabState) -> list[int]:
    """Kill every node's watchdog (lab down); returns the pids killed."""
    killed = []
    for rec in state.nodes.values():
        got = _recorded(rec)
        if got is not None and process.signal_pid(got[0], signal.SIGKILL, got[1]):
            killed.append(got[0])
        for path in (_pid_file(rec), socket_path(rec)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    process.wait_gone(killed, 5.0)
    return killed


def history(lab_dir: str, node: str) -> list[dict[str, Any]]:
    """The node's watchdog records (armed, disarmed, expired, reset, void...), oldest first."""
    state = LabState.load(lab_dir)
    path = os.path.join(state.node(node).dir, HISTORY)
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def _realtime() -> None:
    """Hardware is not slowed down by a busy CPU: a watchdog that fires late would let the
    survivors start a resource before the node is reset. SCHED_RR, as havmd's heartbeats."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(REALTIME_PRIORITY))
    except (OSError, AttributeError) as e:
        log.warning("cannot run at real-time priority (%s): resets may come late on a busy machine", e)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m havm.lab.watchdog", description=__doc__.split("\n\n")[0])
    p.add_argument("--lab-dir", required=True)
    p.add_argument("--node", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s watchdog {args.node}: %(message)s")
    state = LabState.load(args.lab_dir)
    rec = state.node(args.node)
    _realtime()

    def reset() -> dict[str, Any]:
        from havm.lab.control import kill_node

        return kill_node(args.lab_dir, args.node)

    def lab_up() -> bool:
        """False once the lab is down or its lab.json is gone (written atomically: never half-read)."""
        try:
            return LabState.load(args.lab_dir).status != "down"
        except Exception:  # noqa: BLE001 - lab.json gone or unreadable: the lab is gone
            return False

    server = Server(socket_path(rec), marker_path(rec), os.path.join(rec.dir, HISTORY), reset, lab_up)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
