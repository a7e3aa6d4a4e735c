"""``service``: a system service, as a systemd unit or an LSB init script.

The executor runs ``systemd:UNIT`` and ``lsb:NAME`` resources with this agent,
passing the full name as parameter ``unit``; ``havm:service`` takes ``unit``
directly (``systemd:nginx``, ``lsb:apache2``, or a bare name: systemd when it
runs on this node, else LSB).

systemd: ``systemctl start|stop UNIT`` and ``systemctl is-active UNIT``
(``active``/``reloading`` = running, ``inactive`` = stopped, ``failed`` and the
transitional states = failed). On a node where systemd is not running (no
/run/systemd/system, as in containers), start and validate return
ERR_INSTALLED; monitor returns NOT_RUNNING and stop SUCCESS, because no unit of
a systemd that is not running can be running.

LSB: ``<init_dir>/NAME start|stop|status`` (init_dir default /etc/init.d). The
LSB status codes map to OCF: 0 running, 3 stopped, 1/2 (dead with a pid or
lock file) and 4 (unknown) failed. Because many init scripts return 0 for
anything, start and stop are confirmed by ``status`` afterwards (polled for
``settle_timeout`` seconds, default 10, for scripts that daemonize late).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from havm.agents.base import OCF, ActionLog, Agent, AgentResult, Progress

CMD_TIMEOUT = 600.0  # the executor's per-action timeout is the real bound

#: LSB init-script exit codes of start/stop (LSB core 20.2) -> OCF.
LSB_ACTION_RC = {0: OCF.SUCCESS, 1: OCF.ERR_GENERIC, 2: OCF.ERR_ARGS, 3: OCF.ERR_UNIMPLEMENTED,
                 4: OCF.ERR_PERM, 5: OCF.ERR_INSTALLED, 6: OCF.ERR_CONFIGURED, 7: OCF.NOT_RUNNING}
#: LSB status codes -> OCF monitor codes.
LSB_STATUS_RC = {0: OCF.SUCCESS, 1: OCF.ERR_GENERIC, 2: OCF.ERR_GENERIC, 3: OCF.NOT_RUNNING,
                 4: OCF.ERR_GENERIC}
LSB_STATUS_TEXT = {0: "running", 1: "dead, pid file exists", 2: "dead, lock file exists",
                   3: "not running", 4: "unknown"}

_META = """<?xml version="1.0"?>
<resource-agent name="service" version="1.0">
  <version>1.0</version>
  <shortdesc lang="en">A systemd unit or an LSB init script</shortdesc>
  <longdesc lang="en">Starts, stops and watches a system service: systemd:UNIT through systemctl,
lsb:NAME through its init script's start/stop/status.</longdesc>
  <parameters>
    <parameter name="unit" required="1" unique="1"><content type="string"/>
      <shortdesc lang="en">systemd:UNIT, lsb:NAME or a bare name</shortdesc></parameter>
    <parameter name="init_dir"><content type="string" default="/etc/init.d"/>
      <shortdesc lang="en">Directory of LSB init scripts</shortdesc></parameter>
    <parameter name="settle_timeout"><content type="string" default="10"/>
      <shortdesc lang="en">Seconds start/stop wait for status to confirm them</shortdesc></parameter>
  </parameters>
  <actions>
    <action name="start" timeout="100s"/>
    <action name="stop" timeout="100s"/>
    <action name="monitor" timeout="100s" interval="60s"/>
    <action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="20s"/>
  </actions>
</resource-agent>
"""


class ServiceAgent(Agent):
    kind = "service"

    #: systemd's own "am I the init system" test (sd_booted); a class attribute so tests can move it.
    SYSTEMD_RUN_DIR = "/run/systemd/system"
    SYSTEMCTL = "systemctl"

    def __init__(self, resource_id: str, params: Mapping[str, Any]) -> None:
        super().__init__(resource_id, params)
        unit = str(self.params.get("unit") or "").strip()
        cls, sep, name = unit.partition(":")
        if sep and cls in ("systemd", "lsb"):
            self.style, self.name = cls, name
        elif sep and cls == "service":  # Pacemaker's service: class picks what the node has
            self.style, self.name = ("systemd" if self._systemd_running() else "lsb"), name
        else:
            self.style, self.name = ("systemd" if self._systemd_running() else "lsb"), unit
        self.init_dir = str(self.params.get("init_dir") or "/etc/init.d")

    def meta_data(self) -> str:
        return _META

    def _systemd_running(self) -> bool:
        return os.path.isdir(self.SYSTEMD_RUN_DIR)

    def _check_params(self) -> AgentResult | None:
        if not self.name or "/" in self.name or self.name in (".", ".."):
            return AgentResult(OCF.ERR_CONFIGURED, f"service {self.resource_id}: parameter 'unit' must "
                               f"be systemd:UNIT, lsb:NAME or a name, got {self.params.get('unit')!r}")
        try:
            settle = float(self.params.get("settle_timeout", 10))
        except (TypeError, ValueError):
            settle = -1.0
        if not 0 <= settle <= 3600:
            return AgentResult(OCF.ERR_CONFIGURED, "parameter 'settle_timeout' must be 0..3600 seconds, "
                               f"got {self.params.get('settle_timeout')!r}")
        return None

    @property
    def _settle(self) -> float:
        return float(self.params.get("settle_timeout", 10))

    def _no_systemd(self) -> str:
        return (f"systemd is not running on this node ({self.SYSTEMD_RUN_DIR} missing): "
                f"cannot manage systemd:{self.name}")

    # -- commands --
    def _run(self, argv: list[str]) -> tuple[int, str]:
        # Output goes to a file, not a pipe: a daemon an init script starts often keeps the
        # script's stdout open, and reading a pipe to EOF would then wait for the daemon to exit.
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=CMD_TIMEOUT,
                                      stdin=subprocess.DEVNULL)
            except FileNotFoundError:
                return 127, f"{argv[0]}: not found"
            except PermissionError:
                return 126, f"{argv[0]}: not executable"
            out.seek(0)
            return proc.returncode, out.read()[-64_000:].decode("utf-8", "replace").strip()

    def _script(self) -> str:
        return os.path.join(self.init_dir, self.name)

    def _script_problem(self) -> str | None:
        path = self._script()
        if not os.path.isfile(path):
            return f"LSB init script {path} does not exist on this node"
        if not os.access(path, os.X_OK):
            return f"LSB init script {path} is not executable"
        return None

    def _status(self) -> tuple[OCF, str]:
        rc, why, _ = self._state()
        return rc, why

    def _state(self) -> tuple[OCF, str, bool]:
        """The service's state here as an OCF monitor code, a reason, and whether nothing of it runs.

        LSB status 1/2 (dead, with a stale pid or lock file) are failures for
        monitor (it crashed) but mean "nothing runs" after a stop.
        """
        if self.style == "systemd":
            if not self._systemd_running():
                return OCF.NOT_RUNNING, self._no_systemd(), True
            rc, out = self._run([self.SYSTEMCTL, "is-active", self.name])
            state = out.splitlines()[0].strip() if out else f"exit {rc}"
            if state in ("active", "reloading"):
                return OCF.SUCCESS, f"systemd:{self.name} is {state}", False
            if state == "inactive":
                return OCF.NOT_RUNNING, f"systemd:{self.name} is inactive", True
            return OCF.ERR_GENERIC, f"systemd:{self.name} is {state}", state == "failed"
        problem = self._script_problem()
        if problem:
            return OCF.NOT_RUNNING, problem, True  # a service that is not installed cannot run here
        rc, out = self._run([self._script(), "status"])
        text = LSB_STATUS_TEXT.get(rc, f"unexpected status code {rc}")
        why = f"lsb:{self.name} status {rc} ({text})" + (f": {out.splitlines()[-1]}" if out else "")
        return LSB_STATUS_RC.get(rc, OCF.ERR_GENERIC), why, rc in (1, 2, 3)

    def _wait(self, stopped: bool) -> tuple[OCF, str, bool]:
        """Poll the state until it is running (or, with ``stopped``, until nothing runs)."""
        deadline = time.monotonic() + self._settle
        while True:
            rc, why, is_stopped = self._state()
            done = is_stopped if stopped else rc == OCF.SUCCESS
            if done or time.monotonic() >= deadline:
                return rc, why, done
            time.sleep(0.2)

    # -- actions --
    def validate(self) -> AgentResult:
        bad = self._check_params()
        if bad:
            return bad
        if self.style == "systemd":
            if not self._systemd_running():
                return AgentResult(OCF.ERR_INSTALLED, self._no_systemd())
            _, out = self._run([self.SYSTEMCTL, "show", "--property=LoadState", "--value", self.name])
            if out.strip() != "loaded":
                return AgentResult(OCF.ERR_INSTALLED, f"systemd unit {self.name} is not loadable here "
                                   f"(LoadState={out.strip() or '?'})")
            return AgentResult(OCF.SUCCESS, f"systemd:{self.name}")
        problem = self._script_problem()
        if problem:
            return AgentResult(OCF.ERR_INSTALLED, problem)
        return AgentResult(OCF.SUCCESS, f"lsb:{self.name} ({self._script()})")

    def monitor(self) -> AgentResult:
        bad = self._check_params()
        if bad:
            return bad
        rc, why = self._status()
        return AgentResult(rc, why)

    def start(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        bad = self.validate()
        if not bad.ok:
            log(bad.output)
            return log.result(bad.rc)
        rc, why = self._status()
        if rc == OCF.SUCCESS:
            log(f"already running: {why}")
            return log.result(OCF.SUCCESS)
        argv = ([self.SYSTEMCTL, "start", self.name] if self.style == "systemd"
                else [self._script(), "start"])
        code, out = self._run(argv)
        if out:
            log(out[-1000:])
        if code != 0:
            mapped = OCF.ERR_GENERIC if self.style == "systemd" else LSB_ACTION_RC.get(code, OCF.ERR_GENERIC)
            log(f"{' '.join(argv)} exited {code}")
            return log.result(mapped if mapped != OCF.NOT_RUNNING else OCF.ERR_GENERIC)
        rc, why, running = self._wait(stopped=False)
        log(why)
        if not running:
            log(f"{' '.join(argv)} returned 0 but the service is not running")
            return log.result(OCF.ERR_GENERIC)
        return log.result(OCF.SUCCESS)

    def stop(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        bad = self._check_params()
        if bad:
            return bad
        rc, why, stopped = self._state()
        if rc == OCF.NOT_RUNNING:
            log(f"already stopped: {why}")
            return log.result(OCF.SUCCESS)
        argv = ([self.SYSTEMCTL, "stop", self.name] if self.style == "systemd"
                else [self._script(), "stop"])
        code, out = self._run(argv)
        if out:
            log(out[-1000:])
        if code != 0:
            log(f"{' '.join(argv)} exited {code}")
        if self.style == "systemd":  # a failed unit stays 'failed' after stop; that is not running
            self._run([self.SYSTEMCTL, "reset-failed", self.name])
        rc, why, stopped = self._wait(stopped=True)
        if stopped:
            log(why)
            return log.result(OCF.SUCCESS)
        log(f"still running after {' '.join(argv)}: {why}")
        return log.result(OCF.ERR_GENERIC)
