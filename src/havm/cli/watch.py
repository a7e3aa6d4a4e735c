"""``havm status --watch``: a live full-screen view, in the spirit of ``crm_mon``.

Split like the rest of havm: the screen is a pure function of the last status
document, the changes seen so far and the terminal size (``screen``), and the
changes are a pure function of two successive documents (``changes``), so both
are tested without a terminal. The edges are two small drivers: ``run_curses``
(a poller thread fetches, the UI thread draws and reads keys, so ``q`` answers
at once even while a daemon is slow) and ``run_plain`` for a pipe or a file
(one full status per interval, no escape sequences).

Guarantees: the terminal is restored however the view ends (``q``, Ctrl-C, an
error: ``curses.wrapper``); the poller never raises (a failed fetch is shown on
screen and retried); every loop is bounded by a stop flag or ``count``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

Status = dict[str, Any]
#: fetch() -> the status document; raises HavmError when no daemon answers
Fetch = Callable[[], Status]

RECENT_MAX = 50  # changes kept in memory; the screen shows what fits


@dataclass(frozen=True)
class Change:
    """Something that changed between two refreshes, as an operator would say it."""

    at: float  # wall clock, seconds since the epoch
    text: str
    bad: bool = False  # a failure, a lost node, lost quorum: drawn in red


@dataclass(frozen=True)
class Line:
    text: str
    style: str = ""  # "", "title", "bad", "good", "dim"


def _nodes(st: Status) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in st.get("nodes", [])}


def _resources(st: Status) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in st.get("resources") or []}


def changes(old: Status | None, new: Status, at: float) -> list[Change]:
    """What differs from ``old`` to ``new`` (nothing for the first document)."""
    if old is None:
        return []
    out: list[Change] = []
    q0, q1 = old["quorum"]["quorate"], new["quorum"]["quorate"]
    if q0 != q1:
        out.append(Change(at, "quorum gained" if q1 else f"quorum LOST ({new['quorum'].get('reason', '')})",
                          bad=not q1))
    if old.get("controller") != new.get("controller"):
        out.append(Change(at, f"controller {old.get('controller') or '-'} -> {new.get('controller') or '-'}"))
    if old["config"]["version"] != new["config"]["version"]:
        out.append(Change(at, f"configuration {new['config']['version']} "
                              f"(by {new['config'].get('changed_by') or '?'})"))
    n0, n1 = _nodes(old), _nodes(new)
    for name, n in n1.items():
        before = n0.get(name)
        if before is None:
            continue
        if before["state"] != n["state"]:
            out.append(Change(at, f"node {name} {before['state']} -> {n['state']}",
                              bad=n["state"] not in ("online",)))
        for link, state in n.get("links", {}).items():
            was = before.get("links", {}).get(link)
            if was is not None and was != state:
                out.append(Change(at, f"link {link} to {name} {was} -> {state}", bad=state == "down"))
        for flag in ("standby", "maintenance"):
            if bool(before.get(flag)) != bool(n.get(flag)):
                out.append(Change(at, f"node {name} {'in' if n.get(flag) else 'out of'} {flag}"))
    r0, r1 = _resources(old), _resources(new)
    for rid, r in r1.items():
        before = r0.get(rid)
        if before is None:
            out.append(Change(at, f"resource {rid} added"))
            continue
        was, now = before.get("nodes") or [], r.get("nodes") or []
        if was != now:
            out.append(Change(at, f"{rid} {','.join(was) or 'stopped'} -> {','.join(now) or 'stopped'}",
                              bad=not now and r.get("state") != "stopped"))
        elif before.get("state") != r.get("state"):
            out.append(Change(at, f"{rid} {before.get('state')} -> {r.get('state')}",
                              bad=r.get("state") in ("failed", "MULTIPLE")))
        for node in sorted(set(r.get("failed_on") or []) - set(before.get("failed_on") or [])):
            out.append(Change(at, f"{rid} FAILED on {node}", bad=True))
        for node, count in (r.get("failcounts") or {}).items():
            if count > (before.get("failcounts") or {}).get(node, 0):
                out.append(Change(at, f"{rid} failure #{count if count < 1000000 else 'INFINITY'} on {node}",
                                  bad=True))
    for rid in sorted(set(r0) - set(r1)):
        out.append(Change(at, f"resource {rid} removed"))
    return out


_BAD_WORDS = ("OFFLINE", "UNKNOWN", "FAILED", "FAILING", "MULTIPLE", "LATE", "DOWN", "DEGRADED",
              "Quorum: NO", "views not yet agreed", "catching up")


def _style(text: str) -> str:
    if any(w in text for w in _BAD_WORDS):
        return "bad"
    if text.startswith(("Nodes:", "Links:", "Resources:", "Recent changes", "Fencing history", "Cluster ")):
        return "title"
    return ""


def screen(st: Status | None, error: str | None, recent: Sequence[Change], width: int, height: int,
           now: float, interval: float, render: Callable[[Status], str]) -> list[Line]:
    """The whole screen, at most ``height`` lines of at most ``width - 1`` characters.

    ``render`` is the one-shot text view (``havm status``): the live view is that
    view, coloured, plus the header, the changes seen since it started, and the
    last error if the latest refresh failed."""
    head = Line(f"havm status --watch   {time.strftime('%H:%M:%S', time.localtime(now))}   "
                f"every {interval:g}s   q: quit", "dim")
    body: list[Line] = []
    if error:
        body.append(Line(f"refresh failed: {error}" + ("  (showing the last status)" if st else ""), "bad"))
    if st is not None:
        body += [Line(t, _style(t)) for t in render(st).splitlines()]
    elif not error:
        body.append(Line("waiting for the first status...", "dim"))
    tail = [Line("")]
    tail.append(Line("Recent changes (since this view started):", "title"))
    shown = list(reversed(recent))
    if not shown:
        tail.append(Line("  none", "dim"))
    room = max(0, height - 1 - len(body) - len(tail))
    # the changes get what the status leaves, but at least 3 lines when there are any
    want = min(len(shown), max(room, 3))
    tail += [Line(f"  {time.strftime('%H:%M:%S', time.localtime(c.at))}  {c.text}", "bad" if c.bad else "")
             for c in shown[:want]]
    lines = [head, *body]
    budget = height - len(tail)
    if len(lines) > budget:
        hidden = len(lines) - (budget - 1)
        lines = lines[:max(1, budget - 1)] + [Line(f"... {hidden} more lines: enlarge the terminal", "dim")]
    lines += tail
    return [Line(ln.text[:max(1, width - 1)], ln.style) for ln in lines[:height]]


class Poller:
    """Fetches in its own thread every ``interval`` seconds and queues each result."""

    def __init__(self, fetch: Fetch, interval: float) -> None:
        self.fetch = fetch
        self.interval = interval
        self.results: queue.Queue[tuple[Status | None, str | None]] = queue.Queue()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="havm-watch", daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.results.put((self.fetch(), None))
            except Exception as e:  # noqa: BLE001 - shown on screen, retried next interval
                self.results.put((None, str(e).splitlines()[0] if str(e) else type(e).__name__))
            self.stopped.wait(self.interval)

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()


class View:
    """The state of the live view: the last status, the last error, the changes seen."""

    def __init__(self) -> None:
        self.status: Status | None = None
        self.error: str | None = None
        self.recent: list[Change] = []

    def update(self, st: Status | None, error: str | None, at: float) -> list[Change]:
        """Take a refresh's result; returns what changed since the previous status."""
        self.error = error
        if st is None:
            return []
        new = changes(self.status, st, at)
        self.recent = (self.recent + new)[-RECENT_MAX:]
        self.status = st
        return new


def run_curses(fetch: Fetch, interval: float, render: Callable[[Status], str]) -> int:
    """Full-screen view until ``q`` (or Ctrl-C, which the caller turns into exit 130)."""
    import curses

    def loop(win: Any) -> int:
        try:
            curses.curs_set(0)
        except curses.error:
            pass  # terminals without an invisible cursor
        styles = {"": curses.A_NORMAL, "title": curses.A_BOLD, "dim": curses.A_DIM,
                  "bad": curses.A_BOLD, "good": curses.A_NORMAL}
        if curses.has_colors():
            curses.use_default_colors()
            curses.init_pair(1, curses.COLOR_RED, -1)
            curses.init_pair(2, curses.COLOR_GREEN, -1)
            styles["bad"] = curses.color_pair(1) | curses.A_BOLD
            styles["good"] = curses.color_pair(2)
        win.timeout(100)  # getch waits at most 0.1 s: keys answer at once
        view = View()
        dirty = True
        with Poller(fetch, interval) as poller:
            while True:
                while not poller.results.empty():
                    st, err = poller.results.get_nowait()
                    view.update(st, err, time.time())
                    dirty = True
                if dirty:
                    height, width = win.getmaxyx()
                    win.erase()
                    for y, line in enumerate(screen(view.status, view.error, view.recent, width, height,
                                                    time.time(), interval, render)):
                        try:
                            win.addstr(y, 0, line.text, styles.get(line.style, curses.A_NORMAL))
                        except curses.error:
                            pass  # the bottom-right cell of a full screen
                    win.refresh()
                    dirty = False
                key = win.getch()
                if key in (ord("q"), ord("Q"), 27):
                    return 0
                if key == curses.KEY_RESIZE or key == 12:  # Ctrl-L redraws
                    dirty = True

    return int(curses.wrapper(loop))


def run_plain(fetch: Fetch, interval: float, render: Callable[[Status], str], out: TextIO,
              count: int | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """For a pipe or a file: the status every ``interval`` seconds, plain text,
    followed by the changes since the previous one; ``count`` refreshes, or forever."""
    view = View()
    done = 0
    while count is None or done < count:
        try:
            st: Status | None = fetch()
            err = None
        except Exception as e:  # noqa: BLE001 - printed, retried next interval
            st, err = None, str(e)
        new = view.update(st, err, time.time())
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
        out.write((render(st) if st is not None else f"refresh failed: {err}") + "\n")
        for c in new:
            out.write(f"changed: {c.text}\n")
        out.flush()
        done += 1
        if count is None or done < count:
            sleep(interval)
    return 0
