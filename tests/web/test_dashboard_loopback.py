"""The dashboard in a real headless Chromium against a real 3-node loopback cluster
(real havmd processes, dummy resources, no fencing): sign in with a token, see the cluster,
act with confirmation, read-only users, live updates when a node dies, and the
"disconnected" state while the page's own node is away."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed (scripts/setup.sh installs it)")
from playwright.sync_api import expect

from havm.api.tokens import create_token
from havm.config.cluster import DEFAULT_API_PORT
from tests.daemon.cluster_proc import LoopbackCluster, loopback_cluster
from tests.daemon.test_operator import RESOURCES  # vm1 may live-migrate, d2 may not; no fencing
from tests.web import dashboard as ui
from tests.web.relay import Relay

pytestmark = [pytest.mark.slow]

CHANGE_TIMEOUT = 60_000  # ms: a change made in the cluster is on screen


class Cluster:
    def __init__(self, c: LoopbackCluster) -> None:
        self.c = c
        self.admin = create_token(str(c.root / "tokens"), "ops", "admin")
        self.reader = create_token(str(c.root / "tokens"), "viewer", "read")

    def url(self, node: str) -> str:
        return f"http://{self.c.addr[node]}:{DEFAULT_API_PORT}"

    def status(self) -> dict[str, Any]:
        return self.c.status(next(iter(self.c.procs)))

    def placed(self) -> dict[str, list[str]]:
        return {r["id"]: r["nodes"] for r in self.status()["resources"]}

    def settled(self) -> bool:
        st = self.status()
        busy = {a for r in st["resources"] for a in r["in_flight"].values()} - {"monitor"}
        return self.c.converged() and not busy and all(len(r["nodes"]) == 1 for r in st["resources"])

    def restart(self, node: str) -> None:
        self.c.start(node)
        self.c.wait(lambda: self.c.converged(), timeout=60, what=f"{node} back in the cluster")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root: Path = tmp_path_factory.mktemp("webc")
    with loopback_cluster(root / "c", extra=RESOURCES) as c:
        c.start_all()
        cl = Cluster(c)
        c.wait(cl.settled, timeout=60, what="the cluster up with every resource placed")
        yield cl


def test_login_refuses_a_bad_token_then_shows_the_cluster(page: Any, cluster: Cluster) -> None:
    base = cluster.url("n1")
    page.goto(base + "/")
    page.wait_for_url(base + "/login")  # no session: the overview sends us to sign in
    page.get_by_label("API token").fill("havm_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("This token is not valid.")

    ui.log_in(page, base, cluster.admin)
    st = cluster.status()
    expect(page.locator("#whoami")).to_have_text("admin")
    expect(page.locator('#summary [data-key="quorum"]')).to_contain_text("quorate")
    expect(page.locator('#summary [data-key="controller"]')).to_have_text(st["controller"])
    expect(page.locator('#summary [data-key="config"]')).to_contain_text(st["config"]["version"])
    for n in ("n1", "n2", "n3"):
        expect(ui.node_row(page, n).locator("td.state")).to_contain_text("online")
        expect(ui.node_row(page, n).locator("td.links")).to_contain_text("ring0 up")
    for rid, nodes in cluster.placed().items():
        expect(ui.resource_row(page, rid).locator("td.node")).to_have_text(nodes[0])
        expect(ui.resource_row(page, rid).locator("td.state")).to_have_text("started")


def test_read_only_token_sees_disabled_buttons_and_a_forced_write_is_refused(page: Any, cluster: Cluster) -> None:
    base = cluster.url("n2")
    ui.log_in(page, base, cluster.reader)
    expect(page.locator("#whoami")).to_have_text("read-only")
    buttons = page.locator("#resources td.actions button, #nodes td.actions button")
    expect(buttons.first).to_be_visible()
    assert buttons.count() >= 7 * 2 + 3 * 3
    for i in range(buttons.count()):
        expect(buttons.nth(i)).to_be_disabled()
    before = cluster.status()["config"]["version"]
    # the same request an enabled button would send, forced from the page with the session cookie
    answer = page.evaluate("""async () => {
        const r = await fetch("/v1/resources/vm1/stop", {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json"}, body: "{}"});
        return {status: r.status, body: await r.json()};
    }""")
    assert answer["status"] == 403, answer
    assert "read" in answer["body"]["error"]["message"]
    assert cluster.status()["config"]["version"] == before
    assert all(nodes for nodes in cluster.placed().values())


def test_stop_asks_for_confirmation_and_the_row_changes_without_reload(page: Any, cluster: Cluster) -> None:
    base = cluster.url("n1")
    ui.log_in(page, base, cluster.admin)
    ui.mark_page(page)
    before = cluster.status()["config"]["version"]
    writes: list[str] = []
    page.on("request", lambda r: writes.append(r.url) if r.method == "POST" else None)
    row = ui.resource_row(page, "d2")
    row.get_by_role("button", name="Stop d2").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("stop d2?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    # a request the Cancel would have sent leaves before this round trip ends
    assert page.evaluate("fetch('/v1/whoami').then((r) => r.status)") == 200
    assert writes == []
    assert cluster.status()["config"]["version"] == before

    row.get_by_role("button", name="Stop d2").click()
    ui.confirm(page)
    expect(row.locator("td.state")).to_have_text("stopped", timeout=CHANGE_TIMEOUT)
    assert writes == [base + "/v1/resources/d2/stop"]
    assert cluster.placed()["d2"] == []
    row.get_by_role("button", name="Start d2").click()
    ui.confirm(page)
    expect(row.locator("td.state")).to_have_text("started", timeout=CHANGE_TIMEOUT)
    # the events of the change are listed too (config change credited to the token's name)
    expect(page.locator("#events")).to_contain_text("by token:ops", timeout=CHANGE_TIMEOUT)
    ui.assert_not_reloaded(page)


def test_migrate_from_the_resource_page_shows_the_phases_and_the_new_node(page: Any, cluster: Cluster) -> None:
    base = cluster.url("n1")
    ui.log_in(page, base, cluster.admin)
    home = cluster.placed()["vm1"][0]
    target = next(n for n in ("n1", "n2", "n3") if n != home)
    ui.migrate_with_a_click(page, base, "vm1", home, target, CHANGE_TIMEOUT)
    expect(page.locator('#config [data-key="meta.allow_migrate"]')).to_have_text("true")
    for phase in ("migrate_to", "migrate_from"):
        expect(page.locator(f'#migration li[data-phase="{phase}"]')).to_have_attribute(
            "data-state", "done", timeout=CHANGE_TIMEOUT)
    expect(page.locator("#history")).to_contain_text("migrate_from vm1", timeout=CHANGE_TIMEOUT)
    assert cluster.placed()["vm1"] == [target]
    ui.assert_not_reloaded(page)


def test_a_dead_node_goes_offline_on_screen_and_its_resource_comes_back_elsewhere(
        page: Any, cluster: Cluster) -> None:
    base = cluster.url("n1")
    placed = cluster.placed()
    victim = next((nodes[0] for nodes in placed.values() if nodes and nodes[0] != "n1"), None)
    if victim is None:  # everything on n1: the page's own node must live; put d2 elsewhere first
        cluster.c.client("n1").request("POST", "/v1/resources/d2/move", {"node": "n2"})
        cluster.c.wait(lambda: cluster.placed()["d2"] == ["n2"], timeout=30, what="d2 on n2")
        victim = "n2"
    lost = sorted(rid for rid, nodes in cluster.placed().items() if nodes == [victim])
    ui.log_in(page, base, cluster.admin)
    ui.mark_page(page)
    for rid in lost:
        expect(ui.resource_row(page, rid).locator("td.node")).to_have_text(victim)
    cluster.c.kill(victim, signal.SIGKILL)
    try:
        expect(ui.node_row(page, victim).locator("td.state")).to_contain_text("offline", timeout=CHANGE_TIMEOUT)
        for rid in lost:
            expect(ui.resource_row(page, rid).locator("td.node")).not_to_have_text(victim, timeout=CHANGE_TIMEOUT)
            expect(ui.resource_row(page, rid).locator("td.state")).to_have_text("started", timeout=CHANGE_TIMEOUT)
        expect(page.locator("#events")).to_contain_text(f"{victim} left or was lost", timeout=CHANGE_TIMEOUT)
        ui.assert_not_reloaded(page)
    finally:
        cluster.restart(victim)
    expect(ui.node_row(page, victim).locator("td.state")).to_contain_text("online", timeout=CHANGE_TIMEOUT)


def test_the_page_shows_disconnected_while_its_node_is_away_and_reconnects(page: Any, cluster: Cluster) -> None:
    relay = Relay(cluster.c.addr["n3"], DEFAULT_API_PORT)  # the network between browser and n3
    try:
        base = relay.url
        ui.log_in(page, base, cluster.admin)
        ui.mark_page(page)
        connection = page.locator("#connection")
        # the network fails: the stream breaks, the page says so and retries with backoff;
        # once the network is back it is live again, without a reload
        relay.cut()
        expect(connection).to_contain_text("disconnected — retrying in", timeout=CHANGE_TIMEOUT)
        expect(page.locator("body")).to_have_class("stale")
        relay.restore()
        expect(connection).to_have_text("live", timeout=ui.LIVE_TIMEOUT + 30_000)
        expect(page.locator("body")).not_to_have_class("stale")
        ui.assert_not_reloaded(page)

        # the page's node dies: disconnected; sessions live in the daemon's memory, so once
        # the node is back the page asks to sign in again
        cluster.c.kill("n3", signal.SIGKILL)
        try:
            expect(connection).to_contain_text("disconnected", timeout=CHANGE_TIMEOUT)
        finally:
            cluster.restart("n3")
        page.wait_for_url(base + "/login", timeout=ui.LIVE_TIMEOUT + 30_000)
        ui.log_in(page, base, cluster.admin)
        expect(ui.node_row(page, "n3").locator("td.state")).to_contain_text("online")
    finally:
        relay.close()
