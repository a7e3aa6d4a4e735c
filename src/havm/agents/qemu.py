"""``qemu``: a VM run by a daemonized qemu-system process, driven over QMP.

Layout per VM on a node: ``<run_dir>/<name>/{qmp.sock,qemu.pid,serial.log}``.
QEMU is started with ``-daemonize`` so it outlives the caller and its process
group (an executor killing a timed-out action's group does not kill the VM);
``stop`` always finds it again by pidfile. Disks live on shared storage, so the
same VM can run on any node, which is what makes cold failover and live
migration possible; the cluster guarantees a single copy, this agent helps by
refusing to receive a migration while a running copy exists locally. ``start``
removes an incoming copy (state ``inmigrate``: it never ran the guest) that a
migration left when its controller died between the phases, and refuses any
other non-running copy.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from havm.agents.base import OCF, ActionLog, Agent, AgentResult, Progress
from havm.agents.migrate import (
    MigrationFailed,
    resume_source,
    run_migration,
    start_incoming,
    wait_status,
)
from havm.agents.process import find_vm_process, kill_and_wait, scan_for, wait_exit
from havm.agents.qmp import Qmp, QmpError
from havm.agents.vmspec import VmSpec, VmSpecError, qemu_argv, spec_from_params
from havm.errors import ConfigError, HavmError

LAUNCH_TIMEOUT = 60.0
QMP_TIMEOUT = 15.0  # generous: QEMU's monitor answers late on an overloaded host
QUIT_TIMEOUT = 5.0
TARGET_RUNNING_TIMEOUT = 30.0
HEALTH_TIMEOUT = 15.0  # migrate_from: how long the guest may take to answer
HEALTH_REQUEST_TIMEOUT = 5.0
SERIAL_LOG_MAX = 4 << 20


class QemuError(HavmError):
    """QEMU could not be launched or wired up (the message says which step)."""

    code = "qemu"


class QemuAgent(Agent):
    kind = "qemu"

    def __init__(
        self, resource_id: str, params: Mapping[str, Any], spec: VmSpec | None = None
    ) -> None:
        """Build from ``params`` (see qemu_meta), or pass a ready ``spec`` (params ignored)."""
        super().__init__(resource_id, params)
        self._spec_error: HavmError | None = None
        self._spec: VmSpec | None = spec
        if spec is None:
            try:
                self._spec = spec_from_params(self.params, default_name=resource_id)
            except (VmSpecError, ConfigError) as exc:  # ConfigError: from xen_config
                self._spec_error = exc

    @classmethod
    def from_spec(cls, spec: VmSpec, resource_id: str | None = None) -> QemuAgent:
        return cls(resource_id or spec.name, {}, spec=spec)

    @property
    def spec(self) -> VmSpec:
        if self._spec is None:
            raise self._spec_error or VmSpecError("params", "invalid")
        return self._spec

    # ------------------------------------------------------------------ checks
    def _config_failure(self) -> AgentResult | None:
        if self._spec_error is not None:
            return AgentResult(OCF.ERR_CONFIGURED, str(self._spec_error))
        return None

    def _missing_here(self) -> str | None:
        spec = self.spec
        if shutil.which(spec.qemu_binary) is None:
            return f"{spec.qemu_binary} not found (install qemu-system-x86)"
        for what, path in (("kernel", spec.kernel), ("initrd", spec.initrd)):
            if path and not Path(path).exists():
                return f"{what} {path} does not exist on this node"
        for i, disk in enumerate(spec.disks):
            if not Path(disk.path).exists():
                return f"disks[{i}] {disk.path} does not exist on this node"
        for i, nic in enumerate(spec.nics):
            if nic.bridge and not Path(f"/sys/class/net/{nic.bridge}/bridge").exists():
                return f"nics[{i}]: bridge {nic.bridge} does not exist on this node"
        return None

    def _not_ready(self, log: ActionLog) -> AgentResult | None:
        """Why this VM cannot run here at all (bad parameters, or something missing on
        this node), or None: the shared first check of validate, start and migrate_prepare."""
        failure = self._config_failure()
        if failure:
            return failure
        missing = self._missing_here()
        if missing:
            log(missing)
            return log.result(OCF.ERR_INSTALLED)
        return None

    def validate(self) -> AgentResult:
        not_ready = self._not_ready(ActionLog())
        if not_ready:
            return not_ready
        return AgentResult(OCF.SUCCESS, f"{self.spec.name}: valid")

    def meta_data(self) -> str:
        from havm.agents.qemu_meta import META_DATA

        return META_DATA

    # --------------------------------------------------------------- process
    def _pid(self) -> int | None:
        return find_vm_process(self.spec.pidfile)

    def _status(self) -> str:
        with Qmp(self.spec.qmp_socket, QMP_TIMEOUT) as qmp:
            return qmp.status()

    def _launch(self, log: ActionLog, incoming: bool) -> None:
        spec = self.spec
        try:
            spec.vm_dir.mkdir(parents=True, exist_ok=True)
            self._cleanup_files()
            # The serial log is appended to across restarts; keep one old generation.
            if spec.serial_log.exists() and spec.serial_log.stat().st_size > SERIAL_LOG_MAX:
                spec.serial_log.replace(spec.serial_log.with_suffix(".log.1"))
        except OSError as exc:
            raise QemuError(f"cannot prepare {spec.vm_dir}: {exc.strerror}") from exc
        argv = qemu_argv(spec, incoming=incoming)
        log("launching: " + " ".join(argv[:1] + ["..."] + (["-incoming defer"] if incoming else [])))
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        except subprocess.TimeoutExpired:
            self._kill_all(log)
            raise QemuError(f"QEMU did not daemonize within {LAUNCH_TIMEOUT:.0f}s") from None
        if proc.returncode != 0:
            self._kill_all(log)
            raise QemuError(f"QEMU exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
        if self._pid() is None:
            raise QemuError("QEMU daemonized but its process is gone (see serial log)")
        for nic in spec.nics:
            if nic.bridge and nic.tap:
                self._ip("link", "set", nic.tap, "master", nic.bridge)
                self._ip("link", "set", nic.tap, "up")

    @staticmethod
    def _ip(*args: str) -> None:
        proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise QemuError(f"ip {' '.join(args)}: {proc.stderr.strip()}")

    def _kill_all(self, log: ActionLog) -> bool:
        """SIGKILL every QEMU of this VM here; True if none is left."""
        for pid in scan_for(self.spec.pidfile):
            log(f"killing QEMU pid {pid}")
            if not kill_and_wait(pid):
                log(f"QEMU pid {pid} survived SIGKILL")
                return False
        return True

    def _cleanup_files(self) -> None:
        self.spec.qmp_socket.unlink(missing_ok=True)
        self.spec.observe_socket.unlink(missing_ok=True)
        self.spec.pidfile.unlink(missing_ok=True)

    # ---------------------------------------------------------------- actions
    def start(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        not_ready = self._not_ready(log)
        if not_ready:
            return not_ready
        pid = self._pid()
        if pid is not None:
            try:
                status = self._status()
            except QmpError as exc:
                log(f"a QEMU (pid {pid}) exists but QMP fails: {exc}; stop it first")
                return log.result(OCF.ERR_GENERIC)
            if status == "running":
                log(f"already running (pid {pid})")
                return log.result(OCF.SUCCESS)
            if status != "inmigrate":
                log(f"a QEMU (pid {pid}) exists here in state {status}; stop it first")
                return log.result(OCF.ERR_GENERIC)
            # an incoming copy prepared for a migration that nobody drives any more (its
            # controller died between the phases): it never ran the guest, the source's copy
            # was always the one that counts, so it goes, as migrate_prepare removes one
            log(f"removing an incoming QEMU left by an unfinished migration (pid {pid})")
            if not self._kill_all(log):
                return log.result(OCF.ERR_GENERIC)
            self._cleanup_files()
        try:
            self._launch(log, incoming=False)
            with Qmp(self.spec.qmp_socket, QMP_TIMEOUT) as qmp:
                status = qmp.status()
                if status != "running":
                    raise QemuError(f"QEMU started in state {status}")
                qmp.execute("announce-self", _ANNOUNCE)
        except (QemuError, QmpError) as exc:
            log(f"start failed: {exc}")
            self._kill_all(log)
            self._cleanup_files()
            return log.result(OCF.ERR_GENERIC)
        log(f"started (pid {self._pid()})")
        return log.result(OCF.SUCCESS, {"pid": self._pid()})

    def stop(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        failure = self._config_failure()
        if failure:
            return failure
        pid = self._pid()
        if pid is None:
            self._cleanup_files()
            log("not running")
            return log.result(OCF.SUCCESS, {"how": "already-stopped"})
        how = self._end(pid, log, graceful=True)
        if how is None:
            log(f"QEMU pid {pid} is still alive: the node must be fenced")
            return log.result(OCF.ERR_GENERIC)
        self._cleanup_files()
        return log.result(OCF.SUCCESS, {"how": how})

    def _end(self, pid: int, log: ActionLog, graceful: bool) -> str | None:
        """Powerdown (if graceful and running), then quit, then SIGKILL; how it ended."""
        spec = self.spec
        try:
            with Qmp(spec.qmp_socket, timeout=3.0) as qmp:
                status = qmp.status()
                if graceful and status == "running":
                    log(f"ACPI powerdown, waiting up to {spec.stop_timeout:.0f}s")
                    qmp.execute("system_powerdown")
                    if wait_exit(pid, spec.stop_timeout):
                        log("guest powered off")
                        return "powerdown"
                    log("guest ignored the powerdown")
                log(f"QMP quit (state {status})" if status != "running" else "QMP quit")
                try:
                    qmp.execute("quit")
                except QmpError:
                    pass  # QEMU may close the socket before answering
            if wait_exit(pid, QUIT_TIMEOUT):
                log("QEMU quit")
                return "quit"
        except QmpError as exc:
            log(f"QMP unusable: {exc}")
        log(f"SIGKILL pid {pid}")
        if kill_and_wait(pid) and self._kill_all(log):
            return "kill"
        return None

    def monitor(self) -> AgentResult:
        log = ActionLog()
        failure = self._config_failure()
        if failure:
            return failure
        pid = self._pid()
        if pid is None:
            if self.spec.pidfile.exists():
                log("QEMU died (stale pidfile): failed")
                return log.result(OCF.ERR_GENERIC)
            return log.result(OCF.NOT_RUNNING)
        try:
            status = self._status()
        except QmpError as exc:
            log(f"QEMU pid {pid} alive but QMP fails: {exc}")
            return log.result(OCF.ERR_GENERIC)
        if status != "running":
            log(f"QEMU pid {pid} in state {status}")
            return log.result(OCF.ERR_GENERIC, {"status": status})
        if self.spec.health_url and not self._healthy(timeout=HEALTH_REQUEST_TIMEOUT):
            log(f"guest does not answer at {self.spec.health_url}")
            return log.result(OCF.ERR_GENERIC, {"status": status})
        return log.result(OCF.SUCCESS, {"status": status, "pid": pid})

    def _healthy(self, timeout: float) -> bool:
        url = self.spec.health_url
        assert url is not None
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
                return bool(200 <= resp.status < 300)
        except OSError:
            return False

    # -------------------------------------------------------------- migration
    def migrate_check(self, target: str) -> AgentResult:
        log = ActionLog()
        failure = self._config_failure()
        if failure:
            return failure
        pid = self._pid()
        if pid is None:
            log("not running here: nothing to migrate")
            return log.result(OCF.NOT_RUNNING)
        try:
            status = self._status()
        except QmpError as exc:
            log(f"QMP fails: {exc}")
            return log.result(OCF.ERR_GENERIC)
        if status != "running":
            log(f"source in state {status}, not running")
            return log.result(OCF.ERR_GENERIC)
        log(f"can migrate to {target}")
        return log.result(OCF.SUCCESS)

    def migrate_prepare(self, source: str, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        not_ready = self._not_ready(log)
        if not_ready:
            return not_ready
        spec = self.spec
        pid = self._pid()
        if pid is not None:
            try:
                status = self._status()
            except QmpError:
                status = "unknown"
            if status == "running":
                log(f"refusing: {spec.name} already runs here (pid {pid})")
                return log.result(OCF.ERR_GENERIC)
            log(f"removing a leftover QEMU (pid {pid}, state {status})")
            if not self._kill_all(log):
                return log.result(OCF.ERR_GENERIC)
        host = spec.migration_host or spec.migration_address
        if host in ("0.0.0.0", "::"):
            log("migration_address is a wildcard: set migration_host to this node's address")
            return log.result(OCF.ERR_CONFIGURED)
        try:
            self._launch(log, incoming=True)
            with Qmp(spec.qmp_socket, QMP_TIMEOUT) as qmp:
                port = start_incoming(qmp, spec.migration_address, spec.migration_port)
        except (QemuError, MigrationFailed, QmpError) as exc:
            log(f"cannot prepare the target: {exc}")
            self._kill_all(log)
            self._cleanup_files()
            return log.result(OCF.ERR_GENERIC)
        uri = f"tcp:{host}:{port}"
        log(f"listening for {spec.name} from {source} on {uri}")
        return log.result(OCF.SUCCESS, {"uri": uri, "host": host, "port": port})

    def migrate_to(
        self, target: str, prepared: Mapping[str, Any], progress: Progress | None = None
    ) -> AgentResult:
        log = ActionLog(progress)
        failure = self._config_failure()
        if failure:
            return failure
        uri = prepared.get("uri")
        if not isinstance(uri, str) or not uri.startswith("tcp:"):
            log(f"no tcp: URI from the target's migrate_prepare: {dict(prepared)}")
            return log.result(OCF.ERR_ARGS)
        if self._pid() is None:
            log("not running here: nothing to migrate")
            return log.result(OCF.NOT_RUNNING)
        spec = self.spec
        try:
            with Qmp(spec.qmp_socket, QMP_TIMEOUT) as qmp:
                try:
                    figures = run_migration(qmp, uri, spec.downtime_limit_ms, spec.max_bandwidth,
                                            spec.migration_timeout, log)
                except MigrationFailed as exc:
                    log(str(exc))
                    status = resume_source(qmp)
                    log(f"source kept running (state {status})")
                    return log.result(OCF.ERR_GENERIC, {"source_status": status})
        except (QmpError, MigrationFailed) as exc:
            log(f"migration to {target} failed: {exc}")
            return log.result(OCF.ERR_GENERIC)
        log(f"sent to {target}: QEMU total {figures['total_ms']} ms, "
            f"downtime {figures['downtime_ms']} ms")
        return log.result(OCF.SUCCESS, figures)

    def migrate_from(self, source: str, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        failure = self._config_failure()
        if failure:
            return failure
        if self._pid() is None:
            log("no incoming QEMU here")
            return log.result(OCF.ERR_GENERIC)
        started = time.monotonic()
        try:
            with Qmp(self.spec.qmp_socket, QMP_TIMEOUT) as qmp:
                if qmp.attempts > 1:
                    log(f"QMP session needed {qmp.attempts} attempts")
                status = wait_status(qmp, "running", TARGET_RUNNING_TIMEOUT)
                if status != "running":
                    log(f"target in state {status} after migration from {source}")
                    return log.result(OCF.ERR_GENERIC, {"status": status})
                if self.spec.health_url:
                    deadline = time.monotonic() + HEALTH_TIMEOUT
                    while not self._healthy(timeout=HEALTH_REQUEST_TIMEOUT):
                        if time.monotonic() >= deadline:
                            log(f"guest does not answer at {self.spec.health_url}")
                            return log.result(OCF.ERR_GENERIC, {"status": status})
                        time.sleep(0.2)
                qmp.execute("announce-self", _ANNOUNCE)
        except QmpError as exc:
            log(f"cannot confirm the target: {exc}")
            return log.result(OCF.ERR_GENERIC)
        log(f"running here after migration from {source}")
        return log.result(OCF.SUCCESS, {"confirm_s": time.monotonic() - started})

    def migrate_abort(self, progress: Progress | None = None) -> AgentResult:
        """Target side: kill this node's copy at once (the source's copy is authoritative)."""
        log = ActionLog(progress)
        failure = self._config_failure()
        if failure:
            return failure
        pid = self._pid()
        if pid is not None and self._end(pid, log, graceful=False) is None:
            return log.result(OCF.ERR_GENERIC)
        self._cleanup_files()
        log("no copy left here")
        return log.result(OCF.SUCCESS)

    def migrate_recover(self, progress: Progress | None = None) -> AgentResult:
        """Source side, after the target's copy is gone: make sure the guest runs here."""
        log = ActionLog(progress)
        failure = self._config_failure()
        if failure:
            return failure
        if self._pid() is None:
            log("the source QEMU is gone: the VM must be started again")
            return log.result(OCF.NOT_RUNNING)
        try:
            with Qmp(self.spec.qmp_socket, QMP_TIMEOUT) as qmp:
                status = resume_source(qmp)
        except (QmpError, MigrationFailed) as exc:
            log(str(exc))
            return log.result(OCF.ERR_GENERIC)
        log(f"source in state {status}")
        return log.result(OCF.SUCCESS if status == "running" else OCF.ERR_GENERIC)


# Gratuitous announcements after a start or a migration so switches learn the MAC's port.
_ANNOUNCE = {"initial": 50, "max": 550, "rounds": 5, "step": 100}
