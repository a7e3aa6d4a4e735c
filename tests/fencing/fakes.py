"""Fakes for the fencing unit tests: scripted devices, a sleep that moves a ManualClock."""

from __future__ import annotations

from collections.abc import Sequence

from havm.clock import ManualClock
from havm.config.fencing import FenceDevice as DeviceConfig
from havm.config.fencing import Fencing
from havm.fencing.device import FenceDevice
from havm.fencing.history import FenceHistory
from havm.fencing.policy import Fencer
from havm.fencing.records import DeviceResult
from havm.fencing.runner import AgentRunner, RunResult


class ScriptedDevices:
    """Makes devices whose off() answers come from a script per device id (the last
    answer repeats); records every call as (device, node, clock time)."""

    def __init__(self, clock: ManualClock, script: dict[str, Sequence[DeviceResult]],
                 takes: float = 0.5) -> None:
        self.clock = clock
        self.script = {k: list(v) for k, v in script.items()}
        self.takes = takes
        self.calls: list[tuple[str, str, float]] = []

    def make(self, cfg: DeviceConfig) -> FenceDevice:
        outer = self

        class Scripted(FenceDevice):
            async def off(self, node: str, timeout: float) -> DeviceResult:
                outer.calls.append((cfg.id, node, outer.clock.monotonic()))
                outer.clock.advance(outer.takes)
                answers = outer.script[cfg.id]
                return answers.pop(0) if len(answers) > 1 else answers[0]

        return Scripted(cfg)


class Sleeps:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)


def fencer(fencing: Fencing, devices: ScriptedDevices, sleeps: Sleeps,
           history: FenceHistory | None = None) -> Fencer:
    return Fencer("n2", lambda: fencing, history or FenceHistory(None), devices.clock, sleep=sleeps,
                  make=devices.make)


class ScriptedRunner(AgentRunner):
    """Answers agent runs by the action= line of their stdin."""

    def __init__(self, answers: dict[str, RunResult]) -> None:
        self.answers = answers
        self.stdins: list[str] = []

    async def run(self, argv: Sequence[str], stdin: str, timeout: float) -> RunResult:
        self.stdins.append(stdin)
        action = [ln for ln in stdin.splitlines() if ln.startswith("action=")][-1].split("=", 1)[1]
        return self.answers[action]


OK = DeviceResult(True, rc=0, output="Success: Powered OFF")
FAIL = DeviceResult(False, rc=1, output="Failed: Unable to obtain correct plug status", error="exited 1")
