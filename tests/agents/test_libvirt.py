"""The libvirt agent against libvirt's in-process test driver (test:///default):
define/start/stop/monitor, parameter errors, graceful-then-destroy, and
migration reported as unsupported with the guest still running on the source.

The test driver keeps its domains only while some connection to it is open in
this process, so a fixture holds one for the whole test."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from havm.agents.base import OCF
from havm.agents.libvirt import LibvirtAgent

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
