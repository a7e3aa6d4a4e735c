"""The dashboard against a namespace lab with a real QEMU guest (havm's small
image, -accel tcg), in a real headless Chromium: migrate the VM with a click
(confirmation dialog) and see it on the other node, same boot; power-cut the
VM's node (``havm lab kill``) and see, without reloading, the node go offline,
the fencing confirmed and the VM come back on another node.

The browser reaches a surviving node's API through a relay into that node's
namespace (tests/web/relay.py). With HAVM_SCREENSHOTS=1 these tests also
write the documentation's screenshots (docs/img/dashboard-*.png), taken from
this real cluster at the moments the docs describe.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed (scripts/setup.sh installs it)")
from playwright.sync_api import expect

from havm.api.tokens import create_token
from havm.config.cluster import DEFAULT_API_PORT
from havm.daemon.client import Client
from havm.lab import control, daemons, lab, vms
from havm.lab.plan import LabSpec
from havm.lab.state import LabState, socket_of
from tests.daemon.waiting import wait_until
from tests.web import dashboard as ui
from tests.web.relay import Relay
from tests.web.screens import screenshot

pytestmark = [pytest.mark.lab, pytest.mark.qemu, pytest.mark.slow]

if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("qemu-system-x86_64") is None:
    pytest.skip("needs root, iproute2 and qemu-system-x86_64", allow_module_level=True)

CHANGE_TIMEOUT = 90_000  # ms: a VM's migration or failover is on screen (TCG guests on a loaded CI box)


def off_the_browser_loop(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on another thread: Playwright's sync API keeps an asyncio loop running on
    this one, and the lab's QMP observer runs a loop of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


class Lab:
    def __init__(self, d: str) -> None:
        self.dir = d
        self.state = LabState.load(d)
        tokens = os.path.join(d, "tokens")
        self.admin = create_token(tokens, "operator", "admin")
        self.relays: list[Relay] = []

    def status(self, via: str) -> dict[str, Any]:
        return Client(socket_path=socket_of(self.dir, via), timeout=10).request("GET", "/v1/status")  # type: ignore[no-any-return]

    def vm_node(self, via: str) -> str:
        """Where vm1 runs once nothing is in flight for it (else "")."""
        r = next(r for r in self.status(via)["resources"] if r["id"] == "vm1")
        busy = set(r["in_flight"].values()) - {"monitor"}
        return str(r["nodes"][0]) if len(r["nodes"]) == 1 and not busy else ""

    def browser_url(self, node: str) -> str:
        """A URL of ``node``'s API for the browser (a relay into its namespace)."""
        rec = self.state.nodes[node]
        relay = Relay(rec.addresses["ring0"], DEFAULT_API_PORT, netns=rec.netns)
        self.relays.append(relay)
        return relay.url


@pytest.fixture(scope="module")
def vm_lab() -> Iterator[Lab]:
    d = tempfile.mkdtemp(prefix="hwl")
    try:
        lab.up(d, LabSpec(nodes=3, netns=True, vms=1, keepalive=0.2, deadtime=1.0, initdead=3), vm_timeout=240)
        lb = Lab(d)
        try:
            yield lb
        finally:
            for r in lb.relays:
                r.close()
    finally:
        lab.down(d)
        shutil.rmtree(d, ignore_errors=True)


def test_migrate_the_vm_with_a_click_and_see_it_on_the_other_node(page: Any, vm_lab: Lab) -> None:
    home = wait_until(lambda: vm_lab.vm_node("n1"), 120, "vm1 running")
    target, viewer = [n for n in ("n1", "n2", "n3") if n != home][:2]
    boot = vms.wait_guest_state(vm_lab.dir, "vm1", timeout=120).boot_id
    base = vm_lab.browser_url(viewer)

    page.goto(base + "/login")
    screenshot(page, "login")
    ui.log_in(page, base, vm_lab.admin)
    ui.migrate_with_a_click(page, base, "vm1", home, target, CHANGE_TIMEOUT)
    expect(page.locator('#config [data-key="type"]')).to_have_text("vm")
    for phase in ("migrate_prepare", "migrate_to", "migrate_from", "stop"):
        expect(page.locator(f'#migration li[data-phase="{phase}"]')).to_have_attribute(
            "data-state", "done", timeout=CHANGE_TIMEOUT)
    expect(page.locator("#migration-progress")).to_have_attribute("value", "100")
    expect(page.locator("#history")).to_contain_text(f"migrate_from vm1 on {target}: ok")
    ui.assert_not_reloaded(page)
    # the screen tells the truth: the guest runs on the target, and it is the same boot
    assert wait_until(lambda: vm_lab.vm_node(viewer), 60, "vm1 settled") == target
    assert vms.wait_guest_state(vm_lab.dir, "vm1", timeout=60).boot_id == boot
    screenshot(page, "vm")


def test_power_cut_the_vm_node_and_see_it_come_back_elsewhere_without_reload(page: Any, vm_lab: Lab) -> None:
    victim = wait_until(lambda: vm_lab.vm_node("n1"), 120, "vm1 running")
    viewer = next(n for n in ("n1", "n2", "n3") if n != victim)
    base = vm_lab.browser_url(viewer)
    ui.log_in(page, base, vm_lab.admin)
    ui.mark_page(page)
    expect(ui.resource_row(page, "vm1").locator("td.node")).to_have_text(victim)
    expect(ui.node_row(page, victim).locator("td.state")).to_contain_text("online")

    control.kill_node(vm_lab.dir, victim)  # havm lab kill: the node's power is cut

    expect(ui.node_row(page, victim).locator("td.state")).to_contain_text("offline", timeout=CHANGE_TIMEOUT)
    expect(page.locator(f'#fencing li[data-node="{victim}"][data-ok="true"]').first).to_contain_text(
        "confirmed off", timeout=CHANGE_TIMEOUT)
    vm_row = ui.resource_row(page, "vm1")
    expect(vm_row.locator("td.node")).not_to_have_text(victim, timeout=CHANGE_TIMEOUT)
    expect(vm_row.locator("td.node")).not_to_have_text("—", timeout=CHANGE_TIMEOUT)
    expect(vm_row.locator("td.state")).to_have_text("started")
    ui.assert_not_reloaded(page)
    now = wait_until(lambda: vm_lab.vm_node(viewer), 120, "vm1 running again")
    assert now != victim
    expect(vm_row.locator("td.node")).to_have_text(now)
    guest = vms.wait_guest_state(vm_lab.dir, "vm1", timeout=120)
    assert guest.boot_id  # the guest really runs again (a new boot: its node was powered off)
    assert not off_the_browser_loop(vms.observe, vm_lab.dir, guests=False)["twice"]
    screenshot(page, "overview")


def test_fence_a_node_with_a_click(page: Any, vm_lab: Lab) -> None:
    for name, rec in vm_lab.state.nodes.items():  # the node powered off by the previous test comes back
        if not daemons.daemon_alive(rec):
            control.start_node(vm_lab.dir, name)
    wait_until(lambda: len(vm_lab.status("n1")["members"]) == 3, 60, "three members again")
    viewer = wait_until(lambda: vm_lab.vm_node("n1"), 120, "vm1 running")
    target = next(n for n in ("n1", "n2", "n3") if n != viewer)  # holds no VM: nothing to recover
    base = vm_lab.browser_url(viewer)
    ui.log_in(page, base, vm_lab.admin)
    ui.mark_page(page)
    row = ui.node_row(page, target)
    expect(row.locator("td.state")).to_contain_text("online")
    row.get_by_role("button", name=f"Fence {target}").click()
    expect(page.get_by_role("dialog")).to_contain_text(f"FENCE (power off) node {target}?")
    ui.confirm(page)
    expect(row.locator("td.state")).to_contain_text("offline", timeout=CHANGE_TIMEOUT)
    expect(page.locator(f'#fencing li[data-node="{target}"][data-ok="true"]').first).to_contain_text(
        "confirmed off", timeout=CHANGE_TIMEOUT)
    ui.assert_not_reloaded(page)
    assert not daemons.daemon_alive(LabState.load(vm_lab.dir).nodes[target])  # really powered off
    expect(ui.resource_row(page, "vm1").locator("td.node")).to_have_text(viewer)  # the VM was left alone
