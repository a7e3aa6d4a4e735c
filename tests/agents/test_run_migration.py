"""run_migration's decisions against a scripted QMP (no QEMU, no sleeping)."""

from typing import Any

import pytest

from havm.agents.migrate import MigrationFailed, run_migration
from havm.clock import ManualClock


class ScriptedQmp:
    """Answers query-migrate from a script; records every command."""

    def __init__(self, clock: ManualClock, answers: list[dict[str, Any]]) -> None:
        self.clock, self.answers, self.commands = clock, list(answers), []

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        self.commands.append(command)
        if command == "query-migrate":
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if command == "migrate_cancel":
            self.answers = [{"status": "cancelled"}]
        return {}

    def next_event(self, names: set[str], timeout: float) -> None:
        self.clock.advance(timeout)  # no event: the wait times out


def run(qmp: ScriptedQmp, clock: ManualClock, timeout: float = 10.0) -> dict[str, Any]:
    lines: list[str] = []
    return run_migration(qmp, "tcp:10.0.0.2:4444", 300, 1 << 30, timeout, lines.append,
                         clock=clock.monotonic, sleep=clock.advance)  # type: ignore[arg-type]


ACTIVE = {"status": "active", "ram": {"total": 100, "remaining": 40}}


def test_completed_returns_qemu_figures_after_setting_limits():
    clock = ManualClock()
    done = {"status": "completed", "total-time": 512, "downtime": 9, "setup-time": 3,
            "ram": {"transferred": 64 << 20}}
    qmp = ScriptedQmp(clock, [ACTIVE, done])
    assert run(qmp, clock) == {"total_ms": 512, "downtime_ms": 9, "setup_ms": 3,
                               "transferred": 64 << 20}
    assert qmp.commands[:3] == ["migrate-set-parameters", "migrate-set-capabilities", "migrate"]


def test_figures_filled_in_late_are_read_again():
    clock = ManualClock()
    qmp = ScriptedQmp(clock, [{"status": "completed", "total-time": 0},
                              {"status": "completed", "total-time": 77, "downtime": 5}])
    assert run(qmp, clock)["total_ms"] == 77


def test_failure_is_raised_with_qemu_reason():
    clock = ManualClock()
    qmp = ScriptedQmp(clock, [{"status": "failed", "error-desc": "Connection refused"}])
    with pytest.raises(MigrationFailed, match="migration failed: Connection refused"):
        run(qmp, clock)


def test_timeout_cancels_the_migration():
    clock = ManualClock()
    qmp = ScriptedQmp(clock, [ACTIVE])
    with pytest.raises(MigrationFailed, match="timed out after 2s"):
        run(qmp, clock, timeout=2.0)
    assert "migrate_cancel" in qmp.commands
