"""The qemu agent against real QEMU guests (the project's own image, ~3 s per boot).

One guest story, in order, with two boots in all: boot on "host a", a failed
migration (unreachable target), a failed phase (the target is killed), a live
migration to "host b", a graceful stop, a cold restart on a, and a kill -9.
Both "hosts" are run dirs on this machine; migration goes over 127.0.0.1.
Every QEMU started here is killed by pid at the end, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from havm.agents.base import OCF, AgentResult
from havm.agents.migrate import live_migrate
from havm.agents.observe import qemu_copies, running_copies
from havm.agents.process import kill_and_wait, scan_for, wait_exit
from havm.agents.qemu import QemuAgent
from havm.agents.qmp import Qmp
from havm.guest import build_guest, parse_serial_states
from havm.guest.vmparams import create_disk, guest_params, wait_for_state

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                       reason="qemu-system-x86_64 not installed (Debian package qemu-system-x86)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copies(name: str) -> list[int]:
    """Live processes running this VM, on any "host" (what an outside observer sees)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if f"guest={name}," in cmd and stat.rsplit(")", 1)[-1].split()[0] != "Z":
                found.append(int(entry))
    return found


@dataclass
class Lab:
    name: str
    a: QemuAgent
    b: QemuAgent
    port: dict[str, int]
    facts: dict[str, Any] = field(default_factory=dict)

    def state(self, host: str, newer_than: int | None = None):
        return wait_for_state("127.0.0.1", self.port[host], timeout=40, newer_than=newer_than)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    image = build_guest()
    root = tmp_path_factory.mktemp("qemu")
    name = f"hv{os.getpid()}"
    disk = create_disk(root / "disk.qcow2")
    port = {"a": free_port(), "b": free_port()}
    agents = {
        h: QemuAgent(name, guest_params(
            image, name, disk, root / h, hostfwd_port=port[h], migration_address="127.0.0.1",
            stop_timeout=20, health_url=f"http://127.0.0.1:{port[h]}/cgi-bin/state"))
        for h in ("a", "b")
    }
    yield Lab(name, agents["a"], agents["b"], port)
    for agent in agents.values():
        for pid in scan_for(agent.spec.pidfile):
            kill_and_wait(pid)


def test_start_boots_the_guest_and_monitor_says_running(lab: Lab) -> None:
    started = lab.a.start()
    assert started.rc == OCF.SUCCESS, started.output
    state = lab.state("a")
    lab.facts["boot_id"] = state.boot_id
    assert lab.a.monitor().rc == OCF.SUCCESS
    again = lab.a.start()
    assert again.rc == OCF.SUCCESS and "already running" in again.output
    assert len(copies(lab.name)) == 1
    # a paused guest is not "running": monitor must say failed, and not change anything
    with Qmp(lab.a.spec.qmp_socket) as qmp:
        qmp.execute("stop")
        assert lab.a.monitor().rc == OCF.ERR_GENERIC
        assert qmp.status() == "paused"
        qmp.execute("cont")
    assert lab.a.monitor().rc == OCF.SUCCESS


def test_a_second_copy_on_the_same_disk_is_refused(lab: Lab) -> None:
    # "host b" cold-starts the VM while it still runs on a (a missed fence):
    # QEMU's image lock refuses a second writer, and the agent cleans up.
    result = lab.b.start()
    assert result.rc == OCF.ERR_GENERIC
    assert "lock" in result.output
    assert scan_for(lab.b.spec.pidfile) == []
    assert copies(lab.name) == scan_for(lab.a.spec.pidfile)


def test_migration_to_an_unreachable_target_keeps_the_source(lab: Lab) -> None:
    before = lab.state("a")
    result = lab.a.migrate_to("nowhere", {"uri": f"tcp:127.0.0.1:{free_port()}"})
    assert result.rc == OCF.ERR_GENERIC
    assert "migration failed" in result.output
    assert lab.a.monitor().rc == OCF.SUCCESS
    after = lab.state("a", newer_than=before.counter)
    assert after.boot_id == lab.facts["boot_id"]
    assert len(copies(lab.name)) == 1


class MisdirectedTarget(QemuAgent):
    """A target whose prepared address is wrong: its incoming QEMU never gets the stream."""

    def migrate_prepare(self, source: str, progress=None) -> AgentResult:
        result = super().migrate_prepare(source, progress)
        return AgentResult(result.rc, result.output, result.duration,
                           {**result.data, "uri": f"tcp:127.0.0.1:{free_port()}"})


def test_a_failed_phase_kills_the_target_and_keeps_the_source(lab: Lab) -> None:
    target = MisdirectedTarget.from_spec(lab.b.spec)
    seen: list[list[tuple[int, str]]] = []

    def observe(_: str) -> None:  # what an outside observer sees during the phases
        seen.append([(c.pid, c.status) for c in qemu_copies(lab.name)])

    report = live_migrate(lab.a, target, "a", "b", progress=observe)
    assert any(status == "inmigrate" for snapshot in seen for _, status in snapshot)
    assert all(sum(status == "running" for _, status in snapshot) == 1 for snapshot in seen)
    assert not report.ok and report.failed_phase == "migrate_to"
    assert report.results["migrate_prepare"].ok  # an incoming QEMU did exist on b ...
    assert report.results["migrate_abort"].ok  # ... and was killed
    assert scan_for(lab.b.spec.pidfile) == []
    assert lab.a.monitor().rc == OCF.SUCCESS
    assert copies(lab.name) == scan_for(lab.a.spec.pidfile)


def test_live_migration_keeps_boot_id_and_the_counter_continues(lab: Lab) -> None:
    before = lab.state("a")
    lines: list[str] = []
    report = live_migrate(lab.a, lab.b, "a", "b", progress=lines.append)
    assert report.ok, report.details()
    figures = report.qemu_figures
    assert figures["total_ms"] > 0 and figures["downtime_ms"] >= 0
    assert any("QEMU total" in line for line in lines)
    assert lab.a.monitor().rc == OCF.NOT_RUNNING
    assert lab.b.monitor().rc == OCF.SUCCESS
    after = lab.state("b", newer_than=before.counter)
    assert after.boot_id == lab.facts["boot_id"]
    assert after.counter > before.counter
    assert copies(lab.name) == scan_for(lab.b.spec.pidfile)
    (running,) = running_copies(lab.name)[lab.name]
    assert running.pid == scan_for(lab.b.spec.pidfile)[0] and running.status == "running"


def test_graceful_stop_is_idempotent(lab: Lab) -> None:
    last = lab.state("b")
    stopped = lab.b.stop()
    assert stopped.rc == OCF.SUCCESS and stopped.data["how"] == "powerdown", stopped.output
    serial = lab.b.spec.serial_log.read_text()
    assert f"havm: powering off boot_id={lab.facts['boot_id']}" in serial
    assert lab.b.stop().data["how"] == "already-stopped"
    assert lab.b.monitor().rc == OCF.NOT_RUNNING
    assert copies(lab.name) == []
    lab.facts["last_counter"] = max(last.counter, parse_serial_states(serial)[-1].counter)


def test_cold_restart_over_a_leftover_incoming_copy_restores_the_counter(lab: Lab) -> None:
    # a controller that died between migrate_prepare and migrate_to left an incoming
    # QEMU on a: a later start there removes it (it never ran the guest) instead of failing
    assert lab.a.migrate_prepare("b").rc == OCF.SUCCESS
    assert [c.status for c in qemu_copies(lab.name)] == ["inmigrate"]
    started = lab.a.start()
    assert started.rc == OCF.SUCCESS, started.output
    assert "removing an incoming QEMU" in started.output
    state = lab.state("a")
    assert state.boot_id != lab.facts["boot_id"]
    assert state.counter >= lab.facts["last_counter"]
    restored = [s for s in parse_serial_states(lab.a.spec.serial_log.read_text())
                if s.boot_id == state.boot_id]
    assert restored[0].counter == lab.facts["last_counter"]
    assert copies(lab.name) == scan_for(lab.a.spec.pidfile) and len(copies(lab.name)) == 1


def test_kill_9_is_seen_as_a_failure_and_stop_cleans_up(lab: Lab) -> None:
    (pid,) = scan_for(lab.a.spec.pidfile)
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid, 10)
    failed = lab.a.monitor()
    assert failed.rc == OCF.ERR_GENERIC and "died" in failed.output
    assert lab.a.stop().rc == OCF.SUCCESS
    assert lab.a.monitor().rc == OCF.NOT_RUNNING
    assert copies(lab.name) == []


def test_stop_quits_a_guest_that_ignores_the_powerdown(tmp_path_factory) -> None:
    image = build_guest()
    name = f"hv{os.getpid()}deaf"
    params = guest_params(image, name, create_disk(tmp_path_factory.mktemp("deaf") / "d.qcow2"),
                          tmp_path_factory.mktemp("deafrun"), stop_timeout=1)
    params["append"] += " rdinit=/bin/sh"  # a shell as PID 1: no acpid, nobody powers off
    agent = QemuAgent(name, params)
    try:
        assert agent.start().rc == OCF.SUCCESS
        stopped = agent.stop()
        assert stopped.rc == OCF.SUCCESS and stopped.data["how"] == "quit", stopped.output
        assert "guest ignored the powerdown" in stopped.output
        assert copies(name) == []
    finally:
        for pid in scan_for(agent.spec.pidfile):
            kill_and_wait(pid)
