"""The fs agent: parameter checks and mountinfo parsing (pure), then real mounts
(tmpfs, and ext4 on a loop device by UUID= and LABEL=) inside a private mount
namespace held by a sleeping process, so nothing leaks to the host: start/stop
idempotency, stop killing the filesystem's users (and nobody else), a stop that
cannot unmount failing, monitor telling a foreign mount from ours."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from havm.agents.base import OCF
from havm.agents.fs import FsAgent, FsError, parse_params
from havm.agents.mounts import mounts_at, parse_mountinfo, users_of
from tests.agents.nshelp import run_agent, sh

CLS = "havm.agents.fs:FsAgent"


@pytest.mark.parametrize("params, needle", [
    ({"directory": "/mnt/x"}, "'device' is required"),
    ({"device": "UUID=", "directory": "/mnt/x"}, "empty value"),
    ({"device": "tmpfs", "directory": "mnt/x"}, "absolute path"),
    ({"device": "tmpfs", "directory": "/"}, "must not be /"),
    ({"device": "tmpfs", "directory": "/mnt/x", "force_unmount": "maybe"}, "'force_unmount'"),
    ({"device": "tmpfs", "directory": "/mnt/x", "stop_rounds": 0}, "'stop_rounds'"),
])
def test_parameter_errors_name_the_parameter(params, needle):
    with pytest.raises(FsError, match=needle) as e:
        parse_params(params)
    assert e.value.rc == OCF.ERR_CONFIGURED


def test_missing_device_is_err_installed_and_monitor_not_running(tmp_path):
    agent = FsAgent("fs1", {"device": "/dev/havm-no-such-disk", "directory": str(tmp_path / "m")})
    v = agent.validate()
    assert v.rc == OCF.ERR_INSTALLED and "/dev/havm-no-such-disk does not exist" in v.output
    assert agent.monitor().rc == OCF.NOT_RUNNING  # nothing mounted there: a probe says "stopped"
    assert agent.stop().ok
    not_block = FsAgent("fs1", {"device": "/etc/hostname", "directory": str(tmp_path / "m")}).validate()
    assert not_block.rc == OCF.ERR_CONFIGURED and "not a block device" in not_block.output


def test_parse_mountinfo_unescapes_and_finds_the_mount():
    text = ("22 27 0:21 / /proc rw,relatime - proc proc rw\n"
            "40 27 7:3 / /srv/my\\040data rw,noatime shared:5 - ext4 /dev/loop3 rw\n"
            "41 40 0:50 / /srv/my\\040data rw - tmpfs tmpfs rw,size=1024k\n")
    entries = parse_mountinfo(text)
    at = mounts_at("/srv/my data", entries)
    assert [(e.major, e.minor, e.fstype, e.source) for e in at] == [(7, 3, "ext4", "/dev/loop3"),
                                                                    (0, 50, "tmpfs", "tmpfs")]


def test_meta_data_lists_params():
    names = {p.get("name") for p in ET.fromstring(FsAgent("f", {}).meta_data()).iter("parameter")}
    assert {"device", "directory", "fstype", "options", "force_unmount"} <= names


# -- real mounts in a private mount namespace --

@pytest.fixture
def mntns() -> Iterator[list[str]]:
    """A private mount namespace, held by a sleeping process; yields the nsenter prefix."""
    if os.geteuid() != 0:
        pytest.skip("needs root (mount namespaces, mount)")
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("needs util-linux unshare and nsenter")
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "600"])
    try:
        mine = os.readlink("/proc/self/ns/mnt")
        for _ in range(200):  # bounded: 2 s
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/mnt") != mine:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        else:
            pytest.skip("unshare -m did not create a mount namespace")
        yield ["nsenter", "-t", str(holder.pid), "-m"]
    finally:
        holder.kill()  # the namespace and every mount in it go with its last process
        holder.wait()


@pytest.fixture
def ext4(tmp_path) -> Iterator[tuple[str, str, str]]:
    """An ext4 image on a loop device: (device, uuid, label)."""
    if shutil.which("mkfs.ext4") is None or shutil.which("losetup") is None:
        pytest.skip("needs mkfs.ext4 (e2fsprogs) and losetup")
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    fs_uuid, label = str(uuid.uuid4()), f"havmt{os.getpid() % 100000}"
    sh("mkfs.ext4", "-q", "-F", "-U", fs_uuid, "-L", label, str(img))
    out = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot attach a loop device: {out.stderr.strip()}")
    dev = out.stdout.strip()
    try:
        yield dev, fs_uuid, label
    finally:
        sh("losetup", "-d", dev, check=False)


def host_has_mount(directory: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return bool(mounts_at(directory, parse_mountinfo(f.read())))


def spawn_in(ns: list[str], script: str) -> subprocess.Popen:
    return subprocess.Popen([*ns, "sh", "-c", script])


def wait_cwd(pid: int, directory: str) -> None:
    for _ in range(300):  # bounded: 3 s
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(directory):
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} never entered {directory}")


@pytest.mark.lab
def test_tmpfs_lifecycle_stays_in_its_namespace(mntns, tmp_path):
    d = str(tmp_path / "data")
    params = {"device": "tmpfs", "directory": d, "fstype": "tmpfs", "options": "size=1m"}
    assert run_agent(mntns, CLS, "fs1", params, "monitor").rc == OCF.NOT_RUNNING
    started = run_agent(mntns, CLS, "fs1", params, "start")
    assert started.ok, started.output
    assert "created" in started.output and os.path.isdir(d)
    assert run_agent(mntns, CLS, "fs1", params, "start").output.endswith(f"already mounted on {d}")
    mon = run_agent(mntns, CLS, "fs1", params, "monitor")
    assert mon.ok and mon.data["fstype"] == "tmpfs"
    assert not host_has_mount(d)  # the mount lives in the test's namespace only
    assert run_agent([], CLS, "fs1", params, "monitor").rc == OCF.NOT_RUNNING  # the host's view
    for _ in range(2):
        assert run_agent(mntns, CLS, "fs1", params, "stop").ok
    assert run_agent(mntns, CLS, "fs1", params, "monitor").rc == OCF.NOT_RUNNING


@pytest.mark.lab
def test_ext4_by_uuid_and_label(mntns, ext4, tmp_path):
    dev, fs_uuid, label = ext4
    d = str(tmp_path / "vol")
    by_uuid = {"device": f"UUID={fs_uuid}", "directory": d, "fstype": "ext4"}
    assert run_agent(mntns, CLS, "fs2", by_uuid, "validate").output == f"{dev} on {d}"
    assert run_agent(mntns, CLS, "fs2", by_uuid, "start").ok
    mon = run_agent(mntns, CLS, "fs2", by_uuid, "monitor")
    assert mon.ok and mon.data["device"] == dev
    sh(*mntns, "sh", "-c", f"echo kept > {d}/proof")
    assert run_agent(mntns, CLS, "fs2", by_uuid, "stop").ok
    by_label = {"device": f"LABEL={label}", "directory": d}  # fstype detected by mount
    assert run_agent(mntns, CLS, "fs2", by_label, "start").ok
    assert sh(*mntns, "cat", f"{d}/proof").strip() == "kept"
    by_path = {"device": dev, "directory": d}
    assert run_agent(mntns, CLS, "fs2", by_path, "monitor").ok
    assert run_agent(mntns, CLS, "fs2", by_path, "stop").ok
    missing = run_agent(mntns, CLS, "fs2", {"device": f"UUID={uuid.uuid4()}", "directory": d}, "validate")
    assert missing.rc == OCF.ERR_INSTALLED and "no device with UUID=" in missing.output


@pytest.mark.lab
def test_stop_kills_the_users_and_nobody_else(mntns, tmp_path):
    d = str(tmp_path / "busy")
    params = {"device": "tmpfs", "directory": d, "fstype": "tmpfs"}
    assert run_agent(mntns, CLS, "fs3", params, "start").ok
    in_cwd = spawn_in(mntns, f"cd {d} && exec sleep 300")
    holds_fd = spawn_in(mntns, f"echo x > {d}/f && exec sleep 300 3<{d}/f")
    ignores_term = spawn_in(mntns, f"trap '' TERM; cd {d} && sleep 300")  # needs SIGKILL
    bystander = spawn_in(mntns, f"cd {tmp_path} && exec sleep 300")  # uses the parent filesystem only
    try:
        for p in (in_cwd, ignores_term):
            wait_cwd(p.pid, d)
        wait_cwd(bystander.pid, str(tmp_path))
        for _ in range(300):
            if any(os.path.realpath(f"/proc/{holds_fd.pid}/fd/{fd}").endswith("/f")
                   for fd in os.listdir(f"/proc/{holds_fd.pid}/fd")):
                break
            time.sleep(0.01)
        mine = run_agent(mntns, CLS, "fs3", params, "monitor")
        assert mine.ok
        stopped = run_agent(mntns, CLS, "fs3", params, "stop")
        assert stopped.ok, stopped.output
        assert "SIGTERM" in stopped.output and "SIGKILL" in stopped.output
        for p in (in_cwd, holds_fd):
            assert p.wait(timeout=10) == -signal.SIGTERM
        assert ignores_term.wait(timeout=10) != 0
        assert bystander.poll() is None
        assert run_agent(mntns, CLS, "fs3", params, "monitor").rc == OCF.NOT_RUNNING
    finally:
        for p in (in_cwd, holds_fd, ignores_term, bystander):
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.mark.lab
def test_a_stop_that_cannot_unmount_fails(mntns, tmp_path):
    d = str(tmp_path / "nested")
    params = {"device": "tmpfs", "directory": d, "fstype": "tmpfs", "stop_rounds": 3}
    assert run_agent(mntns, CLS, "fs4", params, "start").ok
    # a mount below the directory keeps it busy with no process to kill
    sh(*mntns, "sh", "-c", f"mkdir {d}/sub && mount -t tmpfs inner {d}/sub")
    r = run_agent(mntns, CLS, "fs4", params, "stop")
    assert r.rc == OCF.ERR_GENERIC
    assert f"cannot unmount {d} after 3 attempts" in r.output and "no process holds it" in r.output
    assert run_agent(mntns, CLS, "fs4", params, "monitor").ok  # still mounted: the cluster must fence
    sh(*mntns, "umount", f"{d}/sub")
    assert run_agent(mntns, CLS, "fs4", params, "stop").ok


@pytest.mark.lab
def test_a_foreign_mount_on_the_directory(mntns, tmp_path):
    d = str(tmp_path / "taken")
    os.makedirs(d)
    sh(*mntns, "mount", "-t", "tmpfs", "someone-else", d)
    params = {"device": "tmpfs", "directory": d, "fstype": "tmpfs"}
    mon = run_agent(mntns, CLS, "fs5", params, "monitor")
    assert mon.rc == OCF.ERR_GENERIC and "holds someone-else (tmpfs" in mon.output
    start = run_agent(mntns, CLS, "fs5", params, "start")
    assert start.rc == OCF.ERR_GENERIC and "refusing to mount" in start.output
    assert run_agent(mntns, CLS, "fs5", params, "stop").ok  # not ours: left alone
    assert "someone-else" in sh(*mntns, "cat", "/proc/self/mountinfo")


def test_users_of_finds_a_cwd_on_this_filesystem(tmp_path):
    child = subprocess.Popen(["sleep", "60"], cwd=tmp_path)
    try:
        st = os.stat(tmp_path)
        found = users_of(os.major(st.st_dev), os.minor(st.st_dev))
        assert found.get(child.pid) == "cwd"
        assert os.getpid() not in found
    finally:
        child.kill()
        child.wait()


RUN_EXECUTOR = """
import asyncio, json, sys
from havm.clock import SystemClock
from havm.executor.executor import Executor
from havm.executor.records import ActionRequest
params = json.loads(sys.argv[1])
async def go():
    ex = Executor("n1", SystemClock())
    try:
        for action in sys.argv[2:]:
            r = await ex.execute(ActionRequest("fs", "havm:fs", action, params=params, timeout=60))
            print("RECORD " + json.dumps({"rc": r.rc, "output": r.output}), flush=True)
    finally:
        await ex.close()
asyncio.run(go())
"""


@pytest.mark.lab
def test_havm_fs_through_the_executor(mntns, tmp_path):
    d = str(tmp_path / "viaexec")
    params = {"device": "tmpfs", "directory": d, "fstype": "tmpfs", "options": "size=2m"}
    out = subprocess.run([*mntns, sys.executable, "-c", RUN_EXECUTOR, json.dumps(params),
                          "validate", "monitor", "start", "monitor", "stop", "monitor"],
                         capture_output=True, text=True, timeout=120)
    recs = [json.loads(ln[len("RECORD "):]) for ln in out.stdout.splitlines() if ln.startswith("RECORD ")]
    assert [r["rc"] for r in recs] == [0, 7, 0, 0, 0, 7], out.stderr[-2000:] + str(recs)
    assert f"mounted tmpfs on {d}" in recs[2]["output"]
    assert not host_has_mount(d)
