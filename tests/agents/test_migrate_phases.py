"""The phase runner's failure handling, on recording fake agents (no QEMU)."""

from collections.abc import Mapping
from typing import Any

import pytest

from havm.agents.base import OCF, AgentResult
from havm.agents.dummy import DummyAgent
from havm.agents.migrate import live_migrate


class Recording(DummyAgent):
    """A dummy agent that logs calls and fails the phase it is told to."""

    def __init__(self, side: str, calls: list[str], state_dir: str, fail: str | None = None):
        super().__init__("r1", {"state_dir": state_dir})
        self.side, self.calls, self.fail = side, calls, fail

    def _record(self, action: str, result: AgentResult) -> AgentResult:
        self.calls.append(f"{self.side}.{action}")
        if action == self.fail:
            return AgentResult(OCF.ERR_GENERIC, f"{action} failed on purpose")
        return result

    def migrate_check(self, target: str) -> AgentResult:
        return self._record("migrate_check", super().migrate_check(target))

    def migrate_prepare(self, source: str, progress=None) -> AgentResult:
        return self._record("migrate_prepare", AgentResult(OCF.SUCCESS, data={"uri": "tcp:x:1"}))

    def migrate_to(self, target: str, prepared: Mapping[str, Any], progress=None) -> AgentResult:
        assert prepared == {"uri": "tcp:x:1"}
        return self._record("migrate_to", super().migrate_to(target, prepared))

    def migrate_from(self, source: str, progress=None) -> AgentResult:
        return self._record("migrate_from", super().migrate_from(source))

    def migrate_abort(self, progress=None) -> AgentResult:
        return self._record("migrate_abort", super().migrate_abort())

    def migrate_recover(self, progress=None) -> AgentResult:
        return self._record("migrate_recover", super().migrate_recover())

    def stop(self, progress=None) -> AgentResult:
        return self._record("stop", super().stop())


def pair(tmp_path, fail_source=None, fail_target=None):
    calls: list[str] = []
    src = Recording("src", calls, str(tmp_path / "a"), fail_source)
    dst = Recording("dst", calls, str(tmp_path / "b"), fail_target)
    src.start()
    return src, dst, calls


def test_success_runs_phases_in_order(tmp_path):
    src, dst, calls = pair(tmp_path)
    report = live_migrate(src, dst, "n1", "n2")
    assert report.ok and report.failed_phase is None
    assert calls == ["src.migrate_check", "dst.migrate_prepare", "src.migrate_to",
                     "dst.migrate_from", "src.stop"]
    assert src.monitor().rc == OCF.NOT_RUNNING and dst.monitor().rc == OCF.SUCCESS


def test_check_failure_changes_nothing(tmp_path):
    src, dst, calls = pair(tmp_path, fail_source="migrate_check")
    report = live_migrate(src, dst, "n1", "n2")
    assert report.failed_phase == "migrate_check" and calls == ["src.migrate_check"]
    assert src.monitor().rc == OCF.SUCCESS


@pytest.mark.parametrize(
    ("fail_source", "fail_target", "phase", "tail"),
    [
        (None, "migrate_prepare", "migrate_prepare", ["dst.migrate_abort"]),
        ("migrate_to", None, "migrate_to", ["dst.migrate_abort", "src.migrate_recover"]),
        (None, "migrate_from", "migrate_from", ["dst.migrate_abort", "src.migrate_recover"]),
    ],
)
def test_failures_leave_the_source_running(tmp_path, fail_source, fail_target, phase, tail):
    src, dst, calls = pair(tmp_path, fail_source, fail_target)
    report = live_migrate(src, dst, "n1", "n2")
    assert not report.ok and report.failed_phase == phase
    assert calls[-len(tail):] == tail
    assert "src.stop" not in calls
    assert src.monitor().rc == OCF.SUCCESS and dst.monitor().rc == OCF.NOT_RUNNING


def test_source_not_resumed_if_target_cannot_be_killed(tmp_path):
    calls: list[str] = []
    src = Recording("src", calls, str(tmp_path / "a"), None)
    dst = Recording("dst", calls, str(tmp_path / "b"), "migrate_from")
    dst.migrate_abort = lambda progress=None: AgentResult(OCF.ERR_GENERIC, "stuck")  # type: ignore[method-assign]
    src.start()
    report = live_migrate(src, dst, "n1", "n2")
    assert report.failed_phase == "migrate_from"
    assert "src.migrate_recover" not in calls
