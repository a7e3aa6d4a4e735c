"""The libvirt agent against libvirt's in-process test driver (test:///default):
define/start/stop/monitor, parameter errors, graceful-then-destroy, and
migration reported as unsupported with the guest still running on the source.

The test driver keeps its domains only while some connection to it is open in
this process, so a fixture holds one for the whole test."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from havm.agents.base import OCF
from havm.agents.libvirt import LibvirtAgent
from havm.clock import SystemClock
from havm.executor.executor import Executor
from havm.executor.records import ActionRequest

libvirt = pytest.importorskip("libvirt", reason="libvirt-python not installed (pip install libvirt-python)")

URI = "test:///default"


def domain_xml(name: str) -> str:
    return (f"<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
            "<os><type>hvm</type></os></domain>")


@pytest.fixture
def conn() -> Iterator[Any]:
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    c = libvirt.open(URI)
    try:
        yield c
    finally:
        c.close()  # the test driver forgets everything with its last connection


def test_define_start_monitor_stop(conn):
    params = {"uri": URI, "xml": domain_xml("havm-t1"), "shutdown_timeout": 5}
    agent = LibvirtAgent("vm1", params)
    probe = agent.monitor()
    assert probe.rc == OCF.NOT_RUNNING and probe.data["state"] == "undefined"
    assert agent.validate().ok
    started = agent.start()
    assert started.ok, started.output
    assert "defined havm-t1" in started.output and "started havm-t1" in started.output
    dom = conn.lookupByName("havm-t1")
    assert dom.isActive() and dom.isPersistent() and not dom.autostart()
    again = agent.start()
    assert again.ok and "already runs" in again.output
    mon = agent.monitor()
    assert mon.ok and mon.data["state"] == "running"
    stopped = agent.stop()
    assert stopped.ok and "shut down (ACPI)" in stopped.output and "destroyed" not in stopped.output
    assert not dom.isActive()
    assert agent.stop().ok and "not running here" in agent.stop().output
    mon = agent.monitor()
    assert mon.rc == OCF.NOT_RUNNING and mon.data["state"] == "shutoff"


def test_config_file_and_predefined_domain(conn, tmp_path):
    cfg = tmp_path / "vm2.xml"
    cfg.write_text(domain_xml("havm-t2"))
    assert LibvirtAgent("vm2", {"uri": URI, "config": str(cfg)}).start().ok
    # once defined, the name alone is enough (domain param, else the resource id)
    by_name = LibvirtAgent("vm2", {"uri": URI, "domain": "havm-t2", "shutdown_timeout": 0})
    assert by_name.monitor().ok
    stop = by_name.stop()
    assert stop.ok and "destroyed havm-t2" in stop.output  # shutdown_timeout 0: straight to destroy
    assert LibvirtAgent("havm-t2", {"uri": URI}).start().ok
    assert LibvirtAgent("havm-t2", {"uri": URI}).stop().ok


@pytest.mark.parametrize("params, rc, needle", [
    ({"xml": "<domain><name>x</name>"}, OCF.ERR_CONFIGURED, "not valid XML"),
    ({"xml": "<domain type='test'/>"}, OCF.ERR_CONFIGURED, "<domain> with a <name>"),
    ({"xml": domain_xml("a"), "domain": "b"}, OCF.ERR_CONFIGURED, "differs from the XML's <name> (a)"),
    ({"xml": domain_xml("a"), "config": "/x.xml"}, OCF.ERR_CONFIGURED, "either parameter 'xml' or 'config'"),
    ({"config": "/nonexistent/vm.xml"}, OCF.ERR_INSTALLED, "/nonexistent/vm.xml does not exist"),
    ({"domain": "never-defined"}, OCF.ERR_INSTALLED, "never-defined is not defined at test:///default"),
    ({"xml": domain_xml("a"), "shutdown_timeout": "soon"}, OCF.ERR_CONFIGURED, "'shutdown_timeout'"),
])
def test_parameter_errors(conn, params, rc, needle):
    r = LibvirtAgent("vmx", {"uri": URI, **params}).validate()
    assert r.rc == rc and needle in r.output


def test_unreachable_libvirt_is_reported():
    r = LibvirtAgent("vm", {"uri": "test:///nonexistent/havm.xml", "domain": "x"}).monitor()
    assert r.rc == OCF.ERR_GENERIC and "cannot connect to libvirt at test:///nonexistent/havm.xml" in r.output


def test_paused_by_user_is_running_and_start_leaves_it(conn):
    agent = LibvirtAgent("vm3", {"uri": URI, "xml": domain_xml("havm-t3")})
    assert agent.start().ok
    conn.lookupByName("havm-t3").suspend()
    mon = agent.monitor()
    assert mon.ok and mon.data["state"] == "paused"
    assert agent.stop().ok and not conn.lookupByName("havm-t3").isActive()


def test_monitor_state_mapping():
    rc = LibvirtAgent._monitor_rc
    assert rc(1, 0) == OCF.SUCCESS and rc(2, 0) == OCF.SUCCESS
    assert rc(5, 3) == OCF.NOT_RUNNING  # shut off (even after a crash: a probe sees it stopped)
    assert rc(6, 0) == OCF.ERR_GENERIC  # crashed
    assert rc(3, 2) == OCF.ERR_GENERIC  # paused by migration: not a usable copy
    assert rc(3, 5) == OCF.ERR_GENERIC  # paused on an I/O error
    assert rc(3, 1) == OCF.SUCCESS      # paused by an operator
    assert rc(4, 0) == OCF.ERR_GENERIC  # shutting down


def test_migration_unsupported_by_the_test_driver_leaves_one_running_copy(conn):
    params = {"uri": URI, "xml": domain_xml("havm-t4"), "migrate_dest_uri": URI}
    source = LibvirtAgent("vm4", params)
    assert source.start().ok
    assert source.migrate_check("n2").ok
    # the "target" here is the same driver, where the domain runs: prepare refuses a second copy
    prep = LibvirtAgent("vm4", params).migrate_prepare("n1")
    assert prep.rc == OCF.ERR_GENERIC and "refusing a second copy" in prep.output
    moved = source.migrate_to("n2", {"uri": URI})
    assert moved.rc == OCF.ERR_UNIMPLEMENTED
    assert "migration of havm-t4 to test:///default failed" in moved.output and "still runs here" in moved.output
    assert moved.data == {"source_running": True}
    assert source.monitor().ok
    assert source.migrate_recover().ok and source.monitor().ok
    assert source.stop().ok
    not_running = source.migrate_check("n2")
    assert not_running.rc == OCF.NOT_RUNNING and "nothing to migrate" in not_running.output


def test_prepare_returns_the_destination_uri(conn):
    params = {"uri": URI, "xml": domain_xml("havm-t5"), "migration_host": "10.0.0.2"}
    r = LibvirtAgent("vm5", params).migrate_prepare("n1")
    assert r.ok and r.data == {"uri": "qemu+tcp://10.0.0.2/system"}
    assert LibvirtAgent("vm5", params).migrate_abort().ok  # nothing here: nothing to remove


class StubbornDomain:
    """A guest that ignores ACPI shutdown (libvirt's test driver always obeys)."""

    def __init__(self) -> None:
        self.active, self.shutdowns, self.destroys = True, 0, 0

    def isActive(self) -> bool:  # noqa: N802 - libvirt's names
        return self.active

    def state(self) -> list[int]:
        return [1 if self.active else 5, 1]

    def shutdown(self) -> None:
        self.shutdowns += 1

    def destroy(self) -> None:
        self.destroys += 1
        self.active = False


def test_stop_destroys_a_guest_that_ignores_shutdown(monkeypatch):
    dom = StubbornDomain()

    class Conn:
        def lookupByName(self, name: str) -> StubbornDomain:  # noqa: N802
            return dom

    @contextmanager
    def fake_connect(self: LibvirtAgent) -> Iterator[Conn]:
        yield Conn()

    monkeypatch.setattr(LibvirtAgent, "connect", fake_connect)
    r = LibvirtAgent("vm6", {"domain": "stubborn", "shutdown_timeout": 0.3}).stop()
    assert r.ok and dom.shutdowns == 1 and dom.destroys == 1
    assert "waiting up to 0.3s" in r.output and "destroyed stubborn" in r.output


def test_meta_data_lists_params():
    names = {p.get("name") for p in ET.fromstring(LibvirtAgent("v", {}).meta_data()).iter("parameter")}
    assert {"uri", "xml", "config", "domain", "shutdown_timeout", "migrate_dest_uri"} <= names


# -- a real libvirtd (qemu:///system) with a TCG guest --
#
# libvirtd runs in a private mount namespace where its state, config and run
# directories are bind-mounted from a temp dir, and /etc/passwd + /etc/group are
# copies with the libvirt-qemu user it insists on (even with user="root"): the
# host's files stay untouched apart from the empty mount points /etc/libvirt,
# /run/libvirt, /var/{lib,cache,log}/libvirt that the libvirt-daemon package
# would create anyway. The socket is reached by path (qemu:///system?socket=...).

QEMU_CONF = """\
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
"""
BINDS = {"run": "/run/libvirt", "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
         "etc": "/etc/libvirt", "log": "/var/log/libvirt", "passwd": "/etc/passwd", "group": "/etc/group"}


def qemu_pids(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"qemu-system-x86_64") and f"guest={name},".encode() in b" ".join(argv):
                pids.append(int(entry))
    return pids


@pytest.fixture
def libvirtd() -> Iterator[str]:
    """A private libvirtd; yields its qemu:///system URI. Every domain and process is removed after."""
    if os.geteuid() != 0:
        pytest.skip("a system libvirtd needs root")
    for binary in ("libvirtd", "qemu-system-x86_64", "unshare"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} not installed (apt-get install --no-install-recommends libvirt-daemon "
                        "libvirt-daemon-driver-qemu qemu-system-x86)")
    top = tempfile.mkdtemp(prefix="havm-lv-")  # short: a unix socket path has at most 107 bytes
    for sub in ("run", "lib", "cache", "etc", "log"):
        os.makedirs(f"{top}/{sub}")
    with open(f"{top}/etc/qemu.conf", "w") as f:
        f.write(QEMU_CONF)
    with open("/etc/passwd") as src, open(f"{top}/passwd", "w") as dst:
        dst.write(src.read() + "libvirt-qemu:x:64055:64055:Libvirt Qemu:/nonexistent:/usr/sbin/nologin\n")
    with open("/etc/group") as src, open(f"{top}/group", "w") as dst:
        dst.write(src.read() + "libvirt-qemu:x:64055:\n")
    script = " && ".join([f"mkdir -p {' '.join(v for k, v in BINDS.items() if k not in ('passwd', 'group'))}"]
                         + [f"mount --bind {top}/{k} {v}" for k, v in BINDS.items()] + ["exec libvirtd"])
    log = open(f"{top}/libvirtd.log", "w")
    daemon = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                              stdout=log, stderr=subprocess.STDOUT)
    uri = f"qemu:///system?socket={top}/run/libvirt-sock"
    try:
        for _ in range(200):  # bounded: 20 s
            if os.path.exists(f"{top}/run/libvirt-sock") or daemon.poll() is not None:
                break
            time.sleep(0.1)
        if not os.path.exists(f"{top}/run/libvirt-sock"):
            with open(f"{top}/libvirtd.log") as f:
                pytest.skip(f"libvirtd did not start: {f.read()[-500:]}")
        yield uri
    finally:
        try:
            libvirt.registerErrorHandler(lambda ctx, err: None, None)
            c = libvirt.open(uri)
            for dom in c.listAllDomains():
                if dom.isActive():
                    dom.destroy()
            c.close()
        except libvirt.libvirtError:
            pass
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        shutil.rmtree(top, ignore_errors=True)


def tcg_xml(name: str) -> str:
    return (f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>"
            "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator><video><model type='none'/></video>"
            "<memballoon model='none'/></devices></domain>")


@pytest.mark.lab
@pytest.mark.qemu
@pytest.mark.slow
def test_real_tcg_domain_through_the_executor(libvirtd):
    name = f"havm-lvq-{os.getpid()}"
    params = {"uri": libvirtd, "xml": tcg_xml(name), "shutdown_timeout": 2,
              "migrate_dest_uri": "qemu+tcp://127.0.0.1:1/system"}  # nothing listens there

    async def go() -> list[Any]:
        ex = Executor("n1", SystemClock())
        try:
            out = []
            for action, args in (("monitor", {}), ("start", {}), ("monitor", {}), ("start", {}),
                                 ("migrate_check", {"target": "n2"}),
                                 ("migrate_to", {"target": "n2", "prepared": {}}), ("monitor", {})):
                out.append(await ex.execute(ActionRequest("vm", "havm:libvirt", action, params=params,
                                                          args=args, timeout=60)))
                if action == "start" and len(out) == 2:
                    out.append(qemu_pids(name))
            out.append(qemu_pids(name))
            out.append(await ex.execute(ActionRequest("vm", "havm:libvirt", "stop", params=params, timeout=60)))
            out.append(await ex.execute(ActionRequest("vm", "havm:libvirt", "monitor", params=params)))
            return out
        finally:
            await ex.close()

    probe, start, pids, mon, again, check, migrate, mon_after, pids_after, stop, final = asyncio.run(go())
    assert probe.rc == OCF.NOT_RUNNING
    assert start.ok, start.output
    assert len(pids) == 1  # a real qemu process runs the guest
    assert mon.ok and mon.data["state"] == "running"
    assert again.ok and "already runs" in again.output
    assert check.ok
    assert migrate.rc == OCF.ERR_GENERIC and "still runs here" in migrate.output
    assert mon_after.ok and pids_after == pids  # the failed migration left the one copy running
    assert stop.ok, stop.output
    assert "destroyed" in stop.output or "shut down" in stop.output
    assert final.rc == OCF.NOT_RUNNING and qemu_pids(name) == []
