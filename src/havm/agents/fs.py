"""``fs``: a filesystem mounted on a directory (Heartbeat's Filesystem).

Parameters:

* ``device`` (required): a block device path (``/dev/drbd1``), ``UUID=...`` or
  ``LABEL=...`` (resolved with blkid), or a non-block source (``tmpfs``,
  ``host:/export``) matched by name;
* ``directory`` (required): absolute mount point (created if missing);
* ``fstype`` (default: let mount detect it), ``options`` (mount -o);
* ``force_unmount`` (default true): on stop, kill the processes that hold
  files of the filesystem (SIGTERM for the first rounds, then SIGKILL);
* ``stop_rounds`` (default 6): unmount attempts before stop gives up.

monitor: SUCCESS when the directory's visible mount is this device (read from
/proc/self/mountinfo, matched by device number for block devices), NOT_RUNNING
when nothing is mounted there, ERR_GENERIC when something else is.

A stop that cannot unmount fails: a filesystem left mounted here while
another node mounts it would be corrupted, so the cluster must fence.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from havm.agents.base import OCF, ActionLog, Agent, AgentResult, Progress
from havm.agents.mounts import MountEntry, mounts_at, read_mounts, users_of

TERM_ROUNDS = 2  # rounds that send SIGTERM before SIGKILL
CMD_TIMEOUT = 120.0

_META = """<?xml version="1.0"?>
<resource-agent name="fs" version="1.0">
  <version>1.0</version>
  <shortdesc lang="en">A mounted filesystem</shortdesc>
  <longdesc lang="en">Mounts a device (path, UUID= or LABEL=) on a directory; stop kills the
filesystem's users and unmounts it, and fails (so the node is fenced) when it cannot.</longdesc>
  <parameters>
    <parameter name="device" required="1"><content type="string"/>
      <shortdesc lang="en">Device path, UUID=..., LABEL=... or a non-block source</shortdesc></parameter>
    <parameter name="directory" required="1" unique="1"><content type="string"/>
      <shortdesc lang="en">Absolute mount point</shortdesc></parameter>
    <parameter name="fstype"><content type="string"/>
      <shortdesc lang="en">Filesystem type (default: detected by mount)</shortdesc></parameter>
    <parameter name="options"><content type="string"/>
      <shortdesc lang="en">Mount options (mount -o)</shortdesc></parameter>
    <parameter name="force_unmount"><content type="boolean" default="true"/>
      <shortdesc lang="en">Kill processes using the filesystem on stop</shortdesc></parameter>
    <parameter name="stop_rounds"><content type="integer" default="6"/>
      <shortdesc lang="en">Unmount attempts before stop fails</shortdesc></parameter>
  </parameters>
  <actions>
    <action name="start" timeout="60s"/>
    <action name="stop" timeout="60s"/>
    <action name="monitor" timeout="40s" interval="20s"/>
    <action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="20s"/>
  </actions>
</resource-agent>
"""


class FsError(Exception):
    def __init__(self, rc: OCF, message: str) -> None:
        super().__init__(message)
        self.rc = rc


@dataclass(frozen=True)
class FsSpec:
    device: str
    directory: str
    fstype: str | None
    options: str | None
    force_unmount: bool
    stop_rounds: int

    @property
    def by_tag(self) -> bool:
        return self.device.startswith(("UUID=", "LABEL="))

    @property
    def is_path(self) -> bool:
        return self.device.startswith("/")


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise FsError(OCF.ERR_CONFIGURED, f"parameter {name!r} must be true or false, got {value!r}")


def parse_params(params: Mapping[str, Any]) -> FsSpec:
    device = str(params.get("device") or "").strip()
    if not device:
        raise FsError(OCF.ERR_CONFIGURED, "parameter 'device' is required (a device path, UUID=..., "
                      "LABEL=... or a source such as tmpfs)")
    if device in ("UUID=", "LABEL="):
        raise FsError(OCF.ERR_CONFIGURED, f"parameter 'device': {device!r} has an empty value")
    directory = str(params.get("directory") or "").strip()
    if not directory.startswith("/"):
        raise FsError(OCF.ERR_CONFIGURED, f"parameter 'directory' must be an absolute path, got {directory!r}")
    directory = os.path.normpath(directory)
    if directory == "/":
        raise FsError(OCF.ERR_CONFIGURED, "parameter 'directory' must not be /")
    try:
        rounds = int(params.get("stop_rounds", 6))
    except (TypeError, ValueError):
        raise FsError(OCF.ERR_CONFIGURED, "parameter 'stop_rounds' must be an integer") from None
    if not 1 <= rounds <= 100:
        raise FsError(OCF.ERR_CONFIGURED, f"parameter 'stop_rounds' must be 1..100, got {rounds}")
    return FsSpec(device, directory, str(params["fstype"]) if params.get("fstype") else None,
                  str(params["options"]) if params.get("options") else None,
                  _bool(params.get("force_unmount", True), "force_unmount"), rounds)


def resolve_device(spec: FsSpec) -> str:
    """The device path (UUID=/LABEL= through blkid); non-path sources are returned as they are."""
    if spec.by_tag:
        tag, _, value = spec.device.partition("=")
        try:
            out = subprocess.run(["blkid", "-U" if tag == "UUID" else "-L", value], capture_output=True,
                                 text=True, timeout=CMD_TIMEOUT)
        except FileNotFoundError:
            raise FsError(OCF.ERR_INSTALLED, "blkid (util-linux) is not installed: cannot resolve "
                          f"{spec.device}") from None
        path = out.stdout.strip()
        if out.returncode != 0 or not path:
            raise FsError(OCF.ERR_INSTALLED, f"no device with {spec.device} on this node (blkid)")
        return path
    if spec.is_path:
        try:
            st = os.stat(spec.device)
        except FileNotFoundError:
            raise FsError(OCF.ERR_INSTALLED, f"parameter 'device': {spec.device} does not exist "
                          "on this node") from None
        if not stat.S_ISBLK(st.st_mode):
            raise FsError(OCF.ERR_CONFIGURED, f"parameter 'device': {spec.device} is not a block device "
                          "(for an image file, attach it with losetup first)")
    return spec.device


def _is_ours(entry: MountEntry, spec: FsSpec, device: str) -> bool:
    if device.startswith("/"):
        try:
            st = os.stat(device)
        except OSError:
            return entry.source == device
        if stat.S_ISBLK(st.st_mode):
            return (entry.major, entry.minor) == (os.major(st.st_rdev), os.minor(st.st_rdev))
        return entry.source == device
    return entry.source == device and (spec.fstype is None or entry.fstype == spec.fstype)


def _describe(e: MountEntry) -> str:
    return f"{e.source} ({e.fstype}, {e.major}:{e.minor})"


def _run(cmd: list[str]) -> tuple[int, str]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT)
    except FileNotFoundError:
        raise FsError(OCF.ERR_INSTALLED, f"{cmd[0]} is not installed") from None
    return out.returncode, (out.stderr or out.stdout).strip()


class FsAgent(Agent):
    kind = "fs"

    def meta_data(self) -> str:
        return _META

    def _state(self) -> tuple[FsSpec, str | None, list[MountEntry]]:
        """Parameters, resolved device (None if unresolvable) and the mounts at the directory."""
        spec = parse_params(self.params)
        try:
            device: str | None = resolve_device(spec)
        except FsError:
            device = None
        return spec, device, mounts_at(spec.directory, read_mounts())

    def validate(self) -> AgentResult:
        try:
            spec = parse_params(self.params)
            device = resolve_device(spec)
        except FsError as e:
            return AgentResult(e.rc, f"fs {self.resource_id}: {e}")
        if os.path.exists(spec.directory) and not os.path.isdir(spec.directory):
            return AgentResult(OCF.ERR_CONFIGURED, f"parameter 'directory': {spec.directory} exists and "
                               "is not a directory")
        return AgentResult(OCF.SUCCESS, f"{device} on {spec.directory}")

    def monitor(self) -> AgentResult:
        try:
            spec, device, at = self._state()
        except FsError as e:
            return AgentResult(e.rc, f"fs {self.resource_id}: {e}")
        if not at:
            return AgentResult(OCF.NOT_RUNNING, f"nothing mounted on {spec.directory}")
        top = at[-1]
        if device is None:
            return AgentResult(OCF.ERR_GENERIC, f"{spec.directory} holds {_describe(top)} but "
                               f"{spec.device} cannot be resolved here")
        if not _is_ours(top, spec, device):
            return AgentResult(OCF.ERR_GENERIC, f"{spec.directory} holds {_describe(top)}, not {device}")
        return AgentResult(OCF.SUCCESS, f"{device} mounted on {spec.directory}",
                           data={"device": device, "fstype": top.fstype})

    def start(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        try:
            spec = parse_params(self.params)
            device = resolve_device(spec)
            at = mounts_at(spec.directory, read_mounts())
            if at and _is_ours(at[-1], spec, device):
                log(f"{device} already mounted on {spec.directory}")
                return log.result(OCF.SUCCESS)
            if at:
                log(f"{spec.directory} already holds {_describe(at[-1])}; refusing to mount {device} over it")
                return log.result(OCF.ERR_GENERIC)
            if not os.path.isdir(spec.directory):
                os.makedirs(spec.directory, exist_ok=True)
                log(f"created {spec.directory}")
            cmd = ["mount"] + (["-t", spec.fstype] if spec.fstype else []) + (
                ["-o", spec.options] if spec.options else []) + [device, spec.directory]
            rc, text = _run(cmd)
            if rc != 0:
                log(f"{' '.join(cmd)} failed ({rc}): {text}")
                return log.result(OCF.ERR_GENERIC)
        except FsError as e:
            log(f"fs {self.resource_id}: {e}")
            return log.result(e.rc)
        except OSError as e:
            log(f"fs {self.resource_id}: cannot create {e.filename}: {e.strerror}")
            return log.result(OCF.ERR_GENERIC)
        check = self.monitor()
        log(f"mounted {device} on {spec.directory}" if check.ok else f"after mount: {check.output}")
        return log.result(OCF.SUCCESS if check.ok else OCF.ERR_GENERIC)

    def stop(self, progress: Progress | None = None) -> AgentResult:
        log = ActionLog(progress)
        try:
            spec = parse_params(self.params)
        except FsError as e:
            return AgentResult(e.rc, f"fs {self.resource_id}: {e}")
        try:
            device: str | None = resolve_device(spec)
        except FsError:
            device = None  # the device is gone; whatever is on the directory is still unmounted
        error = ""
        for round_no in range(spec.stop_rounds):
            at = mounts_at(spec.directory, read_mounts())
            ours = [e for e in at if device is None or _is_ours(e, spec, device)]
            if not ours:
                log(f"{spec.directory}: unmounted" if round_no else f"{spec.directory}: not mounted")
                return log.result(OCF.SUCCESS)
            if at[-1] not in ours:
                log(f"{spec.directory} has {_describe(at[-1])} mounted over {spec.device}; not touching it")
                return log.result(OCF.ERR_GENERIC)
            rc, error = _run(["umount", spec.directory])
            if rc == 0:
                continue
            log(f"umount {spec.directory} (attempt {round_no + 1}): {error}")
            top = at[-1]
            if spec.force_unmount:
                users = users_of(top.major, top.minor, skip=_ancestors())
                sig = signal.SIGTERM if round_no < TERM_ROUNDS else signal.SIGKILL
                for pid, what in sorted(users.items()):
                    try:
                        os.kill(pid, sig)
                        log(f"sent {sig.name} to pid {pid} ({_comm(pid)}, {what})")
                    except ProcessLookupError:
                        pass
            time.sleep(min(0.2 * (round_no + 1), 1.0))
        left = mounts_at(spec.directory, read_mounts())
        if left and (device is None or any(_is_ours(e, spec, device) for e in left)):
            users = users_of(left[-1].major, left[-1].minor, skip=_ancestors())
            log(f"cannot unmount {spec.directory} after {spec.stop_rounds} attempts: {error}"
                + (f"; still used by pids {sorted(users)}" if users else "; no process holds it "
                   "(a mount below it or a kernel user)"))
            return log.result(OCF.ERR_GENERIC)
        return log.result(OCF.SUCCESS)


def _ancestors() -> list[int]:
    """This process and its parents: never killed, even if their cwd is inside the mount."""
    pids, pid = [], os.getpid()
    for _ in range(64):
        pids.append(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
    return pids


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"
