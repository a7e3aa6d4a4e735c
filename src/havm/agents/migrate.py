"""Live migration: the QMP steps on each side, and the phase runner.

Phases (Ganeti hv_base style; each runs on one node, each safe to retry):

====  ======  ==================  ==============================================
 #    node    agent call          what happens
====  ======  ==================  ==============================================
 1    source  migrate_check       prerequisites only; changes nothing
 2    target  migrate_prepare     QEMU started with ``-incoming``; returns the URI
 3    source  migrate_to          set downtime/bandwidth, ``migrate``, poll
 4    target  migrate_from        confirm running (+ guest health), announce-self
 5    source  stop                the source copy (now ``postmigrate``) is quit
====  ======  ==================  ==============================================

On failure: before phase 3 completes, QEMU keeps the source running and
``migrate_abort`` on the target kills the incoming copy. If phase 4 fails, the
target is killed first and only then the paused source resumed
(``migrate_recover``): the source is never quit before the target is confirmed
running, and never resumed while a target may run, so one copy runs.
``live_migrate`` runs these phases for two agents reachable from one process
(tests, benchmarks, a single-host setup); the controller runs the same phases
on two nodes' executors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from havm.agents.base import OCF, Agent, AgentResult, Progress
from havm.agents.qmp import Qmp, QmpError
from havm.errors import HavmError

POLL_INTERVAL = 0.02  # query-status polls (target side, cheap)
PROGRESS_INTERVAL = 0.25  # between query-migrate calls while no MIGRATION event comes
_DONE = ("completed", "failed", "cancelled")


class MigrationFailed(HavmError):
    code = "migration-failed"


def start_incoming(qmp: Qmp, address: str, port: int) -> int:
    """Target: listen for the migration stream; returns the port actually bound."""
    qmp.execute("migrate-incoming", {"uri": f"tcp:{address}:{port}"})
    info = qmp.execute("query-migrate")
    for sock in info.get("socket-address", []):
        if sock.get("type") == "inet" and sock.get("port"):
            return int(sock["port"])
    if port:
        return port
    raise MigrationFailed(f"QEMU did not report the port it listens on: {info}")


def run_migration(
    qmp: Qmp,
    uri: str,
    downtime_limit_ms: int,
    max_bandwidth: int,
    timeout: float,
    log: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Source: migrate to ``uri`` and wait for the outcome.

    Returns QEMU's figures (``total_ms``, ``downtime_ms``, ``setup_ms``,
    ``transferred``). Raises MigrationFailed if QEMU reports failure or the
    timeout passes (the migration is then cancelled): in both cases QEMU has
    kept (or put back) the source running.
    """
    qmp.execute("migrate-set-parameters",
                {"downtime-limit": downtime_limit_ms, "max-bandwidth": max_bandwidth})
    # MIGRATION events tell the outcome at once; polling query-migrate often
    # instead competes with the migration thread for QEMU's big lock.
    qmp.execute("migrate-set-capabilities",
                {"capabilities": [{"capability": "events", "state": True}]})
    qmp.execute("migrate", {"uri": uri})
    deadline = clock() + timeout
    last_pct = -1
    while True:
        qmp.next_event({"MIGRATION"}, PROGRESS_INTERVAL)  # a state change, or time to look
        info = qmp.execute("query-migrate")
        status = info.get("status", "none")
        if status in _DONE:
            break
        ram = info.get("ram", {})
        total = ram.get("total") or 0
        if total:
            pct = int(100 * (total - ram.get("remaining", total)) / total)
            if pct // 25 != last_pct // 25:
                log(f"migrating: {pct}% of RAM sent ({status})")
                last_pct = pct
        if clock() >= deadline:
            log(f"migration not done after {timeout:.0f}s: cancelling")
            qmp.execute("migrate_cancel")
            _wait_until_done(qmp, 10.0, clock, sleep)
            raise MigrationFailed(f"migration timed out after {timeout:.0f}s (cancelled)")
    if status != "completed":
        raise MigrationFailed(f"migration {status}: {info.get('error-desc', 'no reason given')}")
    # QEMU announces "completed" a moment before it fills in total-time/downtime.
    for _ in range(50):
        if info.get("total-time"):
            break
        sleep(POLL_INTERVAL)
        info = qmp.execute("query-migrate")
    ram = info.get("ram", {})
    return {
        "total_ms": info.get("total-time"),
        "downtime_ms": info.get("downtime"),
        "setup_ms": info.get("setup-time"),
        "transferred": ram.get("transferred"),
    }


def _wait_until_done(qmp: Qmp, timeout: float, clock: Callable[[], float],
                     sleep: Callable[[float], None]) -> str:
    deadline = clock() + timeout
    status = "none"
    while clock() < deadline:
        status = qmp.execute("query-migrate").get("status", "none")
        if status in _DONE:
            break
        sleep(POLL_INTERVAL)
    return status


def wait_status(qmp: Qmp, wanted: str, timeout: float) -> str:
    """Poll ``query-status`` until ``wanted`` or the timeout; returns the last status."""
    deadline = time.monotonic() + timeout
    status = qmp.status()
    while status != wanted and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        status = qmp.status()
    return status


def resume_source(qmp: Qmp) -> str:
    """Source, after a failed migration (target already dead): run the guest again."""
    status = qmp.status()
    if status in ("postmigrate", "paused", "finish-migrate"):
        try:
            qmp.execute("cont")
        except QmpError as exc:
            raise MigrationFailed(f"cannot resume the source ({status}): {exc}") from exc
        status = wait_status(qmp, "running", 5.0)
    return status


@dataclass(frozen=True)
class MigrationReport:
    """Outcome of ``live_migrate``: ``failed_phase`` is None on success."""

    ok: bool
    failed_phase: str | None
    results: dict[str, AgentResult] = field(default_factory=dict)
    total_s: float = 0.0

    @property
    def qemu_figures(self) -> dict[str, Any]:
        result = self.results.get("migrate_to")
        return dict(result.data) if result is not None else {}

    def __str__(self) -> str:
        if self.ok:
            f = self.qemu_figures
            return (f"migrated in {self.total_s:.3f}s (QEMU total {f.get('total_ms')} ms, "
                    f"downtime {f.get('downtime_ms')} ms)")
        failed = self.results.get(self.failed_phase or "")
        return f"migration failed in {self.failed_phase}: {failed}"

    def details(self) -> str:
        """Every phase with its rc and full output tail (for logs and failed tests)."""
        return "\n".join(f"{phase}: {result}\n{result.output}"
                         for phase, result in self.results.items())


def live_migrate(
    source: Agent,
    target: Agent,
    source_node: str,
    target_node: str,
    progress: Progress | None = None,
) -> MigrationReport:
    """Run every phase for two agents of the same resource; one copy runs at the end."""
    started = time.monotonic()
    results: dict[str, AgentResult] = {}

    def report(ok: bool, phase: str | None) -> MigrationReport:
        return MigrationReport(ok, phase, results, time.monotonic() - started)

    def say(line: str) -> None:
        if progress is not None:
            progress(line)

    results["migrate_check"] = source.migrate_check(target_node)
    if not results["migrate_check"].ok:
        return report(False, "migrate_check")
    say(f"preparing {target_node} to receive")
    results["migrate_prepare"] = prepared = target.migrate_prepare(source_node, progress)
    if not prepared.ok:
        results["migrate_abort"] = target.migrate_abort(progress)
        return report(False, "migrate_prepare")
    results["migrate_to"] = source.migrate_to(target_node, prepared.data, progress)
    if not results["migrate_to"].ok:
        results["migrate_abort"] = target.migrate_abort(progress)
        results["migrate_recover"] = source.migrate_recover(progress)
        return report(False, "migrate_to")
    results["migrate_from"] = target.migrate_from(source_node, progress)
    if not results["migrate_from"].ok:
        # Kill the target before the source runs again: never two copies.
        results["migrate_abort"] = abort = target.migrate_abort(progress)
        if abort.ok:
            results["migrate_recover"] = source.migrate_recover(progress)
        return report(False, "migrate_from")
    results["stop_source"] = stopped = source.stop(progress)
    if stopped.rc != OCF.SUCCESS:
        # The target runs; a source that cannot be stopped must be fenced.
        return report(False, "stop_source")
    return report(True, None)
