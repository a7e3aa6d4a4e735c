"""``dummy``: the simplest real agent, a resource that is a state file.

Like Pacemaker's ocf:heartbeat:Dummy: start creates the file, stop removes it,
monitor looks at it. It supports live migration (the file moves) and
promote/demote (the file says ``promoted``), so executor and controller tests
can exercise every action path on real files.

Parameters: ``state`` (path of the state file; default
``<state_dir>/<resource_id>.state``), ``state_dir`` (default /run/havm/dummy),
``op_sleep`` (seconds every action waits first, to exercise timeouts; default 0),
``start_sleep`` (seconds a start waits on top of that: a slow start; default 0).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from havm.agents.base import OCF, ActionLog, Agent, AgentResult, Progress

DEFAULT_STATE_DIR = "/run/havm/dummy"

_META = """<?xml version="1.0"?>
<resource-agent name="dummy" version="1.0">
  <version>1.0</version>
  <shortdesc lang="en">A state file (for tests)</shortdesc>
  <longdesc lang="en">start creates the state file, stop removes it, monitor checks it.</longdesc>
  <parameters>
    <parameter name="state" unique="1"><content type="string"/>
      <shortdesc lang="en">State file path</shortdesc></parameter>
    <parameter name="state_dir"><content type="string" default="/run/havm/dummy"/>
      <shortdesc lang="en">Directory of the default state file</shortdesc></parameter>
    <parameter name="op_sleep"><content type="string" default="0"/>
      <shortdesc lang="en">Seconds each action waits before acting</shortdesc></parameter>
    <parameter name="start_sleep"><content type="string" default="0"/>
      <shortdesc lang="en">Seconds a start waits on top of op_sleep</shortdesc></parameter>
  </parameters>
  <actions>
    <action name="start" timeout="20s"/>
    <action name="stop" timeout="20s"/>
    <action name="monitor" timeout="20s" interval="10s"/>
    <action name="migrate_to" timeout="20s"/>
    <action name="migrate_from" timeout="20s"/>
    <action name="promote" timeout="20s"/>
    <action name="demote" timeout="20s"/>
    <action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="20s"/>
  </actions>
</resource-agent>
"""


class DummyAgent(Agent):
    kind = "dummy"

    def __init__(self, resource_id: str, params: Mapping[str, Any]) -> None:
        super().__init__(resource_id, params)
        state_dir = Path(str(self.params.get("state_dir", DEFAULT_STATE_DIR)))
        self.state = Path(str(self.params.get("state", state_dir / f"{resource_id}.state")))

    def _sleep(self, extra: str | None = None) -> None:
        delay = float(self.params.get("op_sleep", 0) or 0)
        if extra is not None:
            delay += float(self.params.get(extra, 0) or 0)
        if delay > 0:
            time.sleep(min(delay, 3600.0))

    def _read(self) -> str | None:
        try:
            return self.state.read_text().strip()
        except FileNotFoundError:
            return None

    def _write(self, role: str) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_name(self.state.name + ".tmp")
        tmp.write_text(role + "\n")
        os.replace(tmp, self.state)

    def validate(self) -> AgentResult:
        for name in ("op_sleep", "start_sleep"):
            try:
                delay = float(self.params.get(name, 0) or 0)
            except (TypeError, ValueError):
                return AgentResult(OCF.ERR_CONFIGURED, f"{name} must be a number of seconds, "
                                   f"got {self.params.get(name)!r}")
            if delay < 0:
                return AgentResult(OCF.ERR_CONFIGURED, f"{name} must be >= 0")
        return AgentResult(OCF.SUCCESS)

    def meta_data(self) -> str:
        return _META

    def start(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        self._sleep("start_sleep")
        if self._read() is None:
            self._write("started")
            log(f"created {self.state}")
        return log.result(OCF.SUCCESS)

    def stop(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        self._sleep()
        self.state.unlink(missing_ok=True)
        log(f"removed {self.state}")
        return log.result(OCF.SUCCESS)

    def monitor(self) -> AgentResult:
        log = ActionLog()
        self._sleep()
        role = self._read()
        if role is None:
            return log.result(OCF.NOT_RUNNING)
        if role == "promoted":
            return log.result(OCF.RUNNING_PROMOTED)
        return log.result(OCF.SUCCESS)

    def promote(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        self._sleep()
        if self._read() is None:
            log("cannot promote: not running")
            return log.result(OCF.NOT_RUNNING)
        self._write("promoted")
        return log.result(OCF.SUCCESS)

    def demote(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        self._sleep()
        if self._read() is None:
            log("cannot demote: not running")
            return log.result(OCF.NOT_RUNNING)
        self._write("started")
        return log.result(OCF.SUCCESS)

    # Migration: the file "moves"; the source copy is removed by the later stop.
    def migrate_check(self, target: str) -> AgentResult:
        if self._read() is None:
            return AgentResult(OCF.NOT_RUNNING, "not running here, nothing to migrate")
        return AgentResult(OCF.SUCCESS)

    def migrate_prepare(self, source: str, progress: Progress | None = None) -> AgentResult:
        return AgentResult(OCF.SUCCESS, data={"source": source})

    def migrate_to(
        self, target: str, prepared: Mapping[str, Any], progress: Progress | None = None
    ) -> AgentResult:
        log = ActionLog(progress)
        self._sleep()
        if self._read() is None:
            log("not running here, nothing to migrate")
            return log.result(OCF.ERR_GENERIC)
        log(f"migrated to {target}")
        return log.result(OCF.SUCCESS)

    def migrate_from(self, source: str, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        self._sleep()
        self._write("started")
        log(f"received from {source}")
        return log.result(OCF.SUCCESS)

    def migrate_abort(self, progress: Progress | None = None) -> AgentResult:
        return self.stop(progress)

    def migrate_recover(self, progress: Progress | None = None) -> AgentResult:
        return self.start(progress)
