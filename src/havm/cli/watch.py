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

#: fetch_history() -> the cluster's recent events (``GetHistory``), newest last
FetchHistory = Callable[[], list[dict[str, Any]]]

RECENT_MAX = 50  # changes kept in memory; the screen shows what fits
HISTORY_EVERY = 5  # the history (every member's log) is asked every 5th refresh only
#: event kinds the view asks the history for; ``notable`` keeps the failures among them
HISTORY_KINDS = ("fence", "action", "node.leave", "quorum.lost", "resource.changed")
HISTORY_WINDOW = 3600.0  # seconds of history shown


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


def notable(ev: dict[str, Any]) -> bool:
    """A failure or a fencing: what an operator looks for in the history."""
    kind, fields = ev.get("kind"), ev.get("fields") or {}
    if kind == "action":
        return fields.get("ok") is False
    if kind == "resource.changed":
        return fields.get("role") in ("failed", "stop-failed")
    return kind in ("fence", "node.leave", "quorum.lost")


def failures(events: Sequence[dict[str, Any]], window: float = 10.0) -> list[dict[str, Any]]:
    """The notable events, oldest first; the same text recorded by several members within
    ``window`` seconds (every survivor logs a lost node) is kept once."""
    out: list[dict[str, Any]] = []
    last_seen: dict[tuple[str, str], float] = {}
    for ev in sorted(events, key=lambda e: e.get("time", 0.0)):
        if not notable(ev):
            continue
        key = (str(ev.get("kind")), str(ev.get("text")))
        t = float(ev.get("time", 0.0))
        if key in last_seen and t - last_seen[key] <= window:
            continue
        last_seen[key] = t
        out.append(ev)
    return out


_BAD_WORDS = ("OFFLINE", "UNKNOWN", "FAILED", "FAILING", "MULTIPLE", "LATE", "DOWN", "DEGRADED",
              "Quorum: NO", "views not yet agreed", "catching up")


def _style(text: str) -> str:
    if any(w in text for w in _BAD_WORDS):
        return "bad"
    if text.startswith(("Nodes:", "Links:", "Resources:", "Recent changes", "Fencing history", "Cluster ")):
        return "title"
    return ""


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def screen(st: Status | None, error: str | None, recent: Sequence[Change], width: int, height: int,
           now: float, interval: float, render: Callable[[Status], str],
           history: Sequence[dict[str, Any]] | None = None) -> list[Line]:
    """The whole screen, at most ``height`` lines of at most ``width - 1`` characters.

    ``render`` is the one-shot text view (``havm status``): the live view is that
    view, coloured, plus the header, the last error if the latest refresh failed,
    the failures and fencing of the cluster's history (``history``: notable events,
    oldest first; None when the daemon could not give it) and the changes seen
    since the view started. The two lists at the bottom get at least 3 lines each
    when they have something; the status above gives way first."""
    head = Line(f"havm status --watch   {_clock(now)}   every {interval:g}s   q: quit", "dim")
    body: list[Line] = []
    if error:
        body.append(Line(f"refresh failed: {error}" + ("  (showing the last status)" if st else ""), "bad"))
    if st is not None:
        body += [Line(t, _style(t)) for t in render(st).splitlines()]
    elif not error:
        body.append(Line("waiting for the first status...", "dim"))
    sections: list[tuple[str, list[Line]]] = []
    if history is not None:
        sections.append((f"Failures and fencing (cluster history, last {HISTORY_WINDOW / 3600:g}h):",
                         [Line(f"  {_clock(ev.get('time', 0.0))}  {ev.get('node', '?'):<8} {ev.get('text', '')}",
                               "dim" if ev.get("kind") == "fence" and (ev.get("fields") or {}).get("ok")
                               else "bad") for ev in reversed(history)]))
    sections.append(("Recent changes (since this view started):",
                     [Line(f"  {_clock(c.at)}  {c.text}", "bad" if c.bad else "") for c in reversed(recent)]))
    fixed = sum(2 + max(1, min(3, len(items))) for _, items in sections)  # blank + title + 1..3 lines
    room = max(0, height - 1 - len(body) - fixed)
    tail: list[Line] = []
    for title, items in sections:
        extra = min(max(0, len(items) - 3), room)
        room -= extra
        shown = items[:min(len(items), 3) + extra]
        tail += [Line(""), Line(title, "title"), *(shown or [Line("  none", "dim")])]
    lines = [head, *body]
    budget = height - len(tail)
    if len(lines) > budget:
        hidden = len(lines) - (budget - 1)
        lines = lines[:max(1, budget - 1)] + [Line(f"... {hidden} more lines: enlarge the terminal", "dim")]
    lines += tail
    return [Line(ln.text[:max(1, width - 1)], ln.style) for ln in lines[:height]]


class Poller:
    """Fetches in its own thread every ``interval`` seconds and queues each result:
    ``("status", doc | None, error | None)``, and every ``HISTORY_EVERY`` refreshes
    ``("history", notable events | None, error | None)``."""

    def __init__(self, fetch: Fetch, interval: float, fetch_history: FetchHistory | None = None) -> None:
        self.fetch = fetch
        self.fetch_history = fetch_history
        self.interval = interval
        self.results: queue.Queue[tuple[str, Any, str | None]] = queue.Queue()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="havm-watch", daemon=True)

    @staticmethod
    def _why(e: Exception) -> str:
        return str(e).splitlines()[0] if str(e) else type(e).__name__

    def _run(self) -> None:
        rounds = 0
        while not self.stopped.is_set():
            try:
                self.results.put(("status", self.fetch(), None))
            except Exception as e:  # noqa: BLE001 - shown on screen, retried next interval
                self.results.put(("status", None, self._why(e)))
            if self.fetch_history is not None and rounds % HISTORY_EVERY == 0:
                try:
                    self.results.put(("history", failures(self.fetch_history()), None))
                except Exception as e:  # noqa: BLE001 - the history section says it is unavailable
                    self.results.put(("history", None, self._why(e)))
            rounds += 1
            self.stopped.wait(self.interval)

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()


class View:
    """The state of the live view: the last status, the last error, the changes seen,
    the history's failures (None until known)."""

    def __init__(self) -> None:
        self.status: Status | None = None
        self.error: str | None = None
        self.recent: list[Change] = []
        self.history: list[dict[str, Any]] | None = None

    def update(self, st: Status | None, error: str | None, at: float) -> list[Change]:
        """Take a refresh's result; returns what changed since the previous status."""
        self.error = error
        if st is None:
            return []
        new = changes(self.status, st, at)
        self.recent = (self.recent + new)[-RECENT_MAX:]
        self.status = st
        return new

    def take(self, kind: str, value: Any, error: str | None, at: float) -> None:
        """One result of the ``Poller``."""
        if kind == "status":
            self.update(value, error, at)
        elif value is not None:
            self.history = value
        elif self.history is None and error:
            self.history = [{"time": at, "node": "-", "kind": "error", "text": f"history unavailable: {error}"}]


def run_curses(fetch: Fetch, interval: float, render: Callable[[Status], str],
               fetch_history: FetchHistory | None = None) -> int:
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
        with Poller(fetch, interval, fetch_history) as poller:
            while True:
                while not poller.results.empty():
                    view.take(*poller.results.get_nowait(), time.time())
                    dirty = True
                if dirty:
                    height, width = win.getmaxyx()
                    win.erase()
                    for y, line in enumerate(screen(view.status, view.error, view.recent, width, height,
                                                    time.time(), interval, render, view.history)):
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
