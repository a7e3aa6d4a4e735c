"""havm status --watch: the pure screen and change detection, the plain (pipe) loop,
and the real full-screen view in a pseudo-terminal against a real havmd."""

from __future__ import annotations

import copy
import fcntl
import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from havm.cli.status_cmd import render
from havm.cli.watch import Change, View, changes, failures, notable, run_plain, screen
from havm.errors import NotReachable
from tests.daemon.cluster_proc import loopback_cluster

STATUS = json.loads((Path(__file__).parent / "data" / "status.json").read_text())


def status(**edits: Any) -> dict[str, Any]:
    st = copy.deepcopy(STATUS)
    for path, value in edits.items():
        *keys, last = path.split("__")
        target: Any = st
        for k in keys:
            target = target[int(k)] if k.isdigit() else target[k]
        target[int(last) if last.isdigit() else last] = value
    return st


def texts(chs: list[Change]) -> list[str]:
    return [c.text for c in chs]


def test_first_document_is_no_change_and_same_document_neither() -> None:
    assert changes(None, STATUS, 1.0) == []
    assert changes(STATUS, copy.deepcopy(STATUS), 1.0) == []


def test_node_lost_quorum_lost_and_controller_change_are_reported() -> None:
    new = status(nodes__1__state="offline", quorum__quorate=False, quorum__reason="1 of 2 votes",
                 controller=None, nodes__1__links={"ring0": "down"})
    chs = changes(STATUS, new, 5.0)
    assert texts(chs) == ["quorum LOST (1 of 2 votes)", "controller n1 -> -", "node n2 online -> offline",
                          "link ring0 to n2 up -> down"]
    assert [c.bad for c in chs] == [True, False, True, True]
    assert all(c.at == 5.0 for c in chs)


def test_resource_moves_failures_and_config_versions() -> None:
    new = status(resources__1__nodes=["n1"], resources__1__node="n1",
                 resources__0__failed_on=["n2"], resources__0__failcounts={"n2": 1000000},
                 config__version="0.1:abcdef12", config__changed_by="alice@cli", nodes__1__standby=True)
    got = texts(changes(STATUS, new, 0))
    assert got == ["configuration 0.1:abcdef12 (by alice@cli)", "node n2 in standby", "vm1 FAILED on n2",
                   "vm1 failure #INFINITY on n2", "ip1 n2 -> n1"]
    stopped = status(resources__2__nodes=[], resources__2__state="failed")
    (c,) = changes(STATUS, stopped, 0)
    assert c.text == "fs1 n2 -> stopped" and c.bad


def test_screen_holds_everything_and_marks_problems() -> None:
    st = status(nodes__1__state="offline")
    lines = screen(st, None, changes(STATUS, st, 0), width=100, height=40, now=0, interval=1, render=render)
    text = "\n".join(ln.text for ln in lines)
    for part in ("q: quit", "Cluster demo", "Quorum: yes", "Controller: n1", "Nodes:", "Links:", "Resources:",
                 "vm1", "Recent changes", "node n2 online -> offline"):
        assert part in text
    styles = {ln.text.split()[0]: ln.style for ln in lines if ln.text.strip()}
    assert styles["n2"] == "bad" and styles["n1"] == "" and styles["Nodes:"] == "title"


def test_screen_fits_a_small_terminal_and_says_what_it_hides() -> None:
    recent = [Change(float(i), f"change {i}") for i in range(20)]
    lines = screen(STATUS, None, recent, width=30, height=15, now=0, interval=1, render=render)
    assert len(lines) == 15 and all(len(ln.text) <= 29 for ln in lines)
    text = [ln.text for ln in lines]
    assert any(t.startswith("... ") and "more lines" in t for t in text)
    shown = [t for t in text if "  change " in t]
    assert len(shown) >= 3 and shown[0].endswith("change 19") and shown[1].endswith("change 18")


def test_screen_shows_a_failed_refresh_over_the_last_status() -> None:
    lines = screen(STATUS, "no havmd answered", [], 100, 40, 0, 1, render)
    assert lines[1].text == "refresh failed: no havmd answered  (showing the last status)"
    assert lines[1].style == "bad" and any("Cluster demo" in ln.text for ln in lines)
    lines = screen(None, None, [], 100, 40, 0, 1, render)
    assert "waiting for the first status" in lines[1].text


def test_view_keeps_the_last_status_through_errors() -> None:
    v = View()
    assert v.update(STATUS, None, 0) == []
    assert v.update(None, "timeout", 1) == [] and v.status is STATUS and v.error == "timeout"
    new = status(nodes__1__state="offline")
    assert texts(v.update(new, None, 2)) == ["node n2 online -> offline"] and v.error is None


def test_plain_loop_for_pipes_prints_each_refresh_and_the_changes() -> None:
    docs: list[Any] = [STATUS, NotReachable("no havmd answers at /x"), status(nodes__1__state="offline")]
    slept: list[float] = []

    def fetch() -> dict[str, Any]:
        d = docs.pop(0)
        if isinstance(d, Exception):
            raise d
        return d  # type: ignore[no-any-return]

    out = io.StringIO()
    assert run_plain(fetch, 2.5, render, out, count=3, sleep=slept.append) == 0
    text = out.getvalue()
    assert text.count("--- ") == 3 and text.count("Cluster demo") == 2
    assert "refresh failed: no havmd answers at /x" in text
    assert text.rstrip().endswith("changed: node n2 online -> offline")
    assert "\x1b" not in text and slept == [2.5, 2.5]


def ev(t: float, node: str, kind: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"seq": 1, "time": t, "node": node, "kind": kind, "text": text, "fields": fields}


HISTORY = [
    ev(10, "n1", "action", "start vm1 on n2: ok (0.10s)", ok=True),
    ev(11, "n1", "action", "monitor vm1 on n2: failed rc=7 (0.01s)", ok=False, rc=7),
    ev(12, "n2", "resource.changed", "vm1 is failed on n2", role="failed"),
    ev(13, "n2", "resource.changed", "vm1 is started on n2", role="started"),
    ev(20, "n1", "node.leave", "n3 left or was lost", target="n3"),
    ev(21, "n2", "node.leave", "n3 left or was lost", target="n3"),  # every survivor logs it
    ev(25, "n1", "fence", "fencing n3 through power: FAILED: timeout", ok=False),
    ev(30, "n1", "fence", "fencing n3 through power: confirmed off", ok=True),
    ev(40, "n1", "quorum.lost", "no quorum: minority"),
]


def test_failures_keep_failed_actions_fencing_and_losses_once() -> None:
    assert [notable(e) for e in HISTORY] == [False, True, True, False, True, True, True, True, True]
    got = failures(list(reversed(HISTORY)))  # any order in, oldest first out
    assert [e["text"] for e in got] == [
        "monitor vm1 on n2: failed rc=7 (0.01s)", "vm1 is failed on n2", "n3 left or was lost",
        "fencing n3 through power: FAILED: timeout", "fencing n3 through power: confirmed off",
        "no quorum: minority"]
    later = [*HISTORY, ev(90, "n1", "node.leave", "n3 left or was lost")]  # a new loss, later: kept
    assert [e["time"] for e in failures(later) if e["kind"] == "node.leave"] == [20, 90]


def test_screen_shows_the_history_newest_first_with_a_successful_fence_dimmed() -> None:
    lines = screen(STATUS, None, [], 120, 60, 0, 1, render, history=failures(HISTORY))
    text = [ln.text for ln in lines]
    start = text.index("Failures and fencing (cluster history, last 1h):")
    shown = text[start + 1:start + 7]
    assert "no quorum: minority" in shown[0] and "monitor vm1 on n2: failed" in shown[-1]
    styles = {ln.text.split(None, 2)[-1]: ln.style for ln in lines[start + 1:start + 7]}
    assert styles["fencing n3 through power: confirmed off"] == "dim"
    assert styles["fencing n3 through power: FAILED: timeout"] == "bad"
    assert text.index("Recent changes (since this view started):") > start
    small = screen(STATUS, None, [Change(1.0, "x")], 100, 20, 0, 1, render, history=failures(HISTORY))
    assert len(small) == 20 and sum(1 for ln in small if "fencing n3" in ln.text or "quorum" in ln.text) >= 1
    assert "  00:00:01  x" in [ln.text for ln in small]  # each list keeps its lines at the bottom


def test_view_takes_poller_results() -> None:
    v = View()
    v.take("history", None, "unknown command history", 5.0)
    assert v.history is not None and "history unavailable: unknown command history" in v.history[0]["text"]
    v.take("history", failures(HISTORY), None, 6.0)
    assert v.history is not None and len(v.history) == 6
    v.take("history", None, "timeout", 7.0)  # a failed refresh keeps what was known
    assert v.history is not None and len(v.history) == 6
    v.take("status", STATUS, None, 8.0)
    assert v.status is STATUS


# --- the real thing: a pseudo-terminal, a real daemon --------------------------------

def _read_until(fd: int, want: bytes, deadline: float) -> bytes:
    got = b""
    while want not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{want!r} not seen; got {got[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            got += chunk
    return got


def _controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty
    (so the terminal's ^C reaches it as SIGINT, as at a real console), and SIGINT's
    default action, as a shell gives a foreground command: a test run started in the
    background (`cmd &` in a script) ignores SIGINT, and Python keeps an inherited
    SIG_IGN, so the view would never see the ^C."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _watch_in_pty(sock: str) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "havm.cli.main", "--socket", sock, "status", "--watch",
                             "--interval", "0.3"], stdin=slave, stdout=slave, stderr=slave, env=env,
                            preexec_fn=_controlling_terminal)
    os.close(slave)
    return proc, master


@pytest.mark.slow
def test_live_view_in_a_terminal_starts_shows_the_cluster_and_quits(tmp_path: Path) -> None:
    with loopback_cluster(tmp_path / "c", n=1) as c:
        c.start_all()
        c.wait(lambda: c.status("n1")["quorum"]["quorate"], what="n1 up")
        proc, master = _watch_in_pty(c.sock("n1"))
        try:
            screen_bytes = _read_until(master, b"Controller: n1", time.monotonic() + 30)
            assert b"\x1b[?1049h" in screen_bytes  # switched to the alternate screen
            assert b"Cluster " + c.config_text.split()[1].encode() in screen_bytes
            if b"Failures and fencing" not in screen_bytes:  # once the history has answered
                screen_bytes += _read_until(master, b"Failures and fencing", time.monotonic() + 30)
            os.write(master, b"q")
            rest = _read_until(master, b"\x1b[?1049l", time.monotonic() + 10)  # and back
            assert proc.wait(timeout=10) == 0, rest
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            os.close(master)


@pytest.mark.slow
def test_live_view_ctrl_c_restores_the_terminal_and_exits_130(tmp_path: Path) -> None:
    # no daemon at all: the view still starts and says so
    proc, master = _watch_in_pty(str(tmp_path / "nobody.sock"))
    try:
        _read_until(master, b"refresh failed", time.monotonic() + 30)
        os.write(master, b"\x03")  # the terminal's intr character: SIGINT to the view
        _read_until(master, b"\x1b[?1049l", time.monotonic() + 10)
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
