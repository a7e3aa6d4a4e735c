"""The libvirt agent against libvirt's in-process test driver (test:///default):
define/start/stop/monitor, parameter errors, graceful-then-destroy, and
migration reported as unsupported with the guest still running on the source.

The test driver keeps its domains only while some connection to it is open in
this process, so a fixture holds one for the whole test."""

from __future__ import annotations

import asyncio
import os
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
from tests.agents.libvirtd_lab import qemu_pids, require_libvirtd, start_libvirtd
from tests.agents.nshelp import need_root_and_netns, sh

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


# -- real libvirtd daemons (qemu:///system) with TCG guests --

@pytest.fixture
def libvirtd() -> Iterator[str]:
    """A private libvirtd; yields its URI. Every domain and process is removed after."""
    require_libvirtd()
    daemon = start_libvirtd()
    try:
        yield daemon.uri
    finally:
        daemon.stop()


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


MIG_NET = f"10.{100 + os.getpid() % 50}.{os.getpid() % 250}"


@pytest.fixture
def two_hosts() -> Iterator[tuple[Any, Any]]:
    """Two libvirtds, each in its own network namespace and hostname, joined by a veth pair."""
    require_libvirtd()
    need_root_and_netns()
    a, b = f"havm-lvA-{os.getpid()}", f"havm-lvB-{os.getpid()}"
    daemons: list[Any] = []
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "-n", a, "link", "add", "ha", "type", "veth", "peer", "name", "hb", "netns", b)
        for ns, dev, ip in ((a, "ha", f"{MIG_NET}.1"), (b, "hb", f"{MIG_NET}.2")):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        daemons.append(start_libvirtd(a, f"{MIG_NET}.1", "lvhost-a"))
        daemons.append(start_libvirtd(b, f"{MIG_NET}.2", "lvhost-b"))
        yield daemons[0], daemons[1]
    finally:
        for d in daemons:
            d.stop()
        for ns in (a, b):
            sh("ip", "netns", "delete", ns, check=False)


@pytest.mark.lab
@pytest.mark.qemu
@pytest.mark.slow
def test_real_live_migration_peer_to_peer(two_hosts):
    src_d, dst_d = two_hosts
    name = f"havm-lvm-{os.getpid()}"
    common = {"xml": tcg_xml(name), "shutdown_timeout": 0}
    source = LibvirtAgent("vm", {**common, "uri": src_d.uri})
    target = LibvirtAgent("vm", {**common, "uri": dst_d.uri, "migration_host": f"{MIG_NET}.2"})
    assert source.start().ok
    before = qemu_pids(name)
    assert len(before) == 1
    assert source.migrate_check("b").ok
    prepared = target.migrate_prepare("a")
    assert prepared.ok and prepared.data == {"uri": f"qemu+tcp://{MIG_NET}.2/system"}
    moved = source.migrate_to("b", prepared.data)
    assert moved.ok, moved.output
    arrived = target.migrate_from("a")
    assert arrived.ok, arrived.output
    after = qemu_pids(name)
    assert len(after) == 1 and after != before  # exactly one copy: the target's new qemu
    # libvirt shut the source copy off itself; the source's stop is the idempotent cleanup
    assert source.monitor().rc == OCF.NOT_RUNNING
    assert source.stop().ok
    mon = target.monitor()
    assert mon.ok and mon.data["state"] == "running"
    # libvirt's own figures of the finished job
    assert moved.data["total_ms"] >= moved.data["downtime_ms"] >= 0
    assert target.stop().ok and qemu_pids(name) == []
