"""Run the configured alerts for this node's events, off the control loop's path.

``AlertDispatcher`` subscribes to the node's ``EventLog``. For each event it
picks the alerts whose filters match and puts one delivery per alert on a
bounded queue; ``WORKERS`` tasks take them off and run the script or POST the
webhook (``deliver``), each bounded by the alert's timeout. So:

- emitting an event costs a filter check and a ``put_nowait``: the control
  loop never waits for an alert (events emitted from another thread are
  handed to the loop with ``call_soon_threadsafe``);
- a full queue (alerts slower than events, for minutes) drops the new
  deliveries, counts them (``havm_alert_dropped_total``) and warns once a
  minute; it never blocks and never grows without bound;
- a failing, hanging or crashing alert is logged with its result and
  counted, and the next delivery runs: nothing in here can stop the daemon.

Every delivery result is logged (INFO when delivered, WARNING otherwise) and
the latest ``KEEP_RESULTS`` are kept for ``recent()``. Deliveries are not
retried and not ordered across workers: like Pacemaker's, a script gets the
event's sequence number (``CRM_alert_node_sequence``) to order them itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable

import aiohttp

from havm.alerts.deliver import Delivery, post_webhook, run_script, script_env
from havm.alerts.payload import document, environment, matches
from havm.clock import Clock, SystemClock
from havm.config.alerts import Alert, resource_members
from havm.config.schema import ClusterConfig
from havm.events import Event, EventLog
from havm.metrics.collect import AlertCounts

log = logging.getLogger("havm.alerts")

QUEUE_SIZE = 1000
WORKERS = 4
KEEP_RESULTS = 100
DROP_WARN_INTERVAL = 60.0
Item = tuple[Alert, Event, frozenset[str]]


class AlertDispatcher:
    def __init__(self, events: EventLog, clock: Clock | None = None, queue_size: int = QUEUE_SIZE,
                 workers: int = WORKERS) -> None:
        self.events = events
        self.clock = clock or SystemClock()
        self.workers = workers
        self._queue_size = queue_size
        self._alerts: list[tuple[Alert, frozenset[str]]] = []
        self._cluster = ""
        self._node_ids: dict[str, int] = {}
        self._queue: asyncio.Queue[Item] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        self._results: Counter[tuple[str, str]] = Counter()
        self._dropped = 0
        self._dropped_since_warning = 0
        self._last_drop_warning: float | None = None
        self._recent: deque[Delivery] = deque(maxlen=KEEP_RESULTS)

    def configure(self, config: ClusterConfig) -> None:
        """Follow a (new) configuration; queued deliveries keep the alert they were queued with."""
        members = resource_members(list(config.resources))
        alerts = list(config.alerts)
        self._alerts = [(a, frozenset(r for rid in a.resources for r in members.get(rid, {rid}))) for a in alerts]
        self._cluster = config.cluster
        self._node_ids = {n: i for i, n in enumerate(config.node_names, 1)}

    def start(self) -> None:
        """Subscribe and start the workers (on the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._queue = asyncio.Queue(self._queue_size)
        self._tasks = [self._loop.create_task(self._worker()) for _ in range(self.workers)]
        self._unsubscribe = self.events.subscribe(self._on_event)

    async def close(self, drain: float = 5.0) -> None:
        """Stop taking events; let queued deliveries finish for up to ``drain`` seconds
        (the ``daemon.stopped`` alert), then cancel the rest (killing running scripts)."""
        self._unsubscribe()
        if self._queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_idle(), drain)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def wait_idle(self) -> None:
        """Until the queue is empty and no delivery runs."""
        assert self._queue is not None
        await self._queue.join()

    # -- intake (the emitting thread) --
    def _on_event(self, ev: Event) -> None:
        if self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._enqueue(ev)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon is gone
                self._loop.call_soon_threadsafe(self._enqueue, ev)

    def _enqueue(self, ev: Event) -> None:
        assert self._queue is not None
        for alert, resources in self._alerts:
            if not matches(alert, ev, resources):
                continue
            try:
                self._queue.put_nowait((alert, ev, resources))
            except asyncio.QueueFull:
                self._dropped += 1
                self._dropped_since_warning += 1
                self._warn_dropped()

    def _warn_dropped(self) -> None:
        now = self.clock.monotonic()
        if self._last_drop_warning is not None and now - self._last_drop_warning < DROP_WARN_INTERVAL:
            return
        log.warning("alert queue full (%d deliveries waiting): %d delivery(ies) dropped since the last warning",
                    self._queue_size, self._dropped_since_warning)
        self._last_drop_warning = now
        self._dropped_since_warning = 0

    # -- delivery (worker tasks) --
    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            alert, ev, _resources = await self._queue.get()
            try:
                result = await self.deliver(alert, ev)
                self._record(result)
            except Exception:  # noqa: BLE001 - one bad delivery never stops the workers
                log.exception("alert %s on event %s#%d failed unexpectedly", alert.id, ev.kind, ev.seq)
                self._results[(alert.id, "failed")] += 1
            finally:
                self._queue.task_done()

    async def deliver(self, alert: Alert, ev: Event) -> Delivery:
        doc = document(alert, ev, self._cluster)
        if alert.kind == "script":
            assert alert.path is not None
            env = script_env(alert.env, environment(alert, ev, self._cluster, self._node_ids))
            return await run_script(alert.path, doc, env, alert.timeout, alert.id, ev.seq, ev.kind)
        assert alert.url is not None
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return await post_webhook(self._session, alert.url, doc, alert.headers, alert.timeout, alert.id, ev.seq,
                                  ev.kind)

    def _record(self, d: Delivery) -> None:
        self._results[(d.alert, "ok" if d.ok else "failed")] += 1
        self._recent.append(d)
        tail = f": {d.output[-300:]}" if d.output and not d.ok else ""
        log.log(logging.INFO if d.ok else logging.WARNING, "alert %s for %s#%d %s: %s in %.3fs%s", d.alert,
                d.kind, d.seq, "delivered" if d.ok else "FAILED", d.detail, d.duration, tail)

    # -- for metrics and tests --
    def counts(self) -> AlertCounts:
        return AlertCounts(dict(self._results), self._dropped, self._queue.qsize() if self._queue else 0)

    def recent(self) -> list[Delivery]:
        return list(self._recent)
