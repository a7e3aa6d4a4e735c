"""The dashboard's pure logic (static/model.js) run in the real browser, without a cluster:
the page's files are served to Chromium by Playwright's request routing."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed (scripts/setup.sh installs it)")

from tests.web.screens import WEB

ORIGIN = "http://havm.test"


@pytest.fixture
def js(page: Any) -> Any:
    """``js(expression)``: evaluate with ``model`` = the imported static/model.js."""
    def serve(route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path.startswith("/static/"):
            route.fulfill(path=str(WEB / "static" / path.removeprefix("/static/")),
                          content_type="text/javascript")
        else:
            route.fulfill(body="<!doctype html><title>t</title>", content_type="text/html")

    page.route(f"{ORIGIN}/**", serve)
    page.goto(ORIGIN + "/")

    def run(expression: str, arg: Any = None) -> Any:
        return page.evaluate(f"async (arg) => {{ const model = await import('/static/model.js'); "
                             f"return {expression}; }}", arg)
    return run


def ev(seq: int, op: str, target: str, ok: bool = True) -> dict[str, Any]:
    return {"seq": seq, "time": 1000.0 + seq, "node": "n1", "kind": "action",
            "text": f"{op} vm1 on {target}", "fields": {"rsc": "vm1", "op": op, "target": target, "ok": ok,
                                                         "duration": 0.5}}


def test_migration_phases_from_events_and_actions_in_flight(js: Any) -> None:
    done = [ev(1, "start", "n1"), ev(2, "migrate_prepare", "n2"), ev(3, "migrate_to", "n1"),
            ev(4, "migrate_from", "n2"), ev(5, "stop", "n1")]
    m = js("model.migrationPhases('vm1', arg, [])", done)
    assert [(p["op"], p["state"], p["node"]) for p in m["phases"]] == [
        ("migrate_prepare", "done", "n2"), ("migrate_to", "done", "n1"), ("migrate_from", "done", "n2"),
        ("stop", "done", "n1")]
    assert m["percent"] == 100 and not m["failed"]

    running = js("model.migrationPhases('vm1', arg, [{rsc: 'vm1', node: 'n1', action: 'migrate_to'}])", done[:3])
    assert [p["state"] for p in running["phases"]] == ["done", "running", "pending", "pending"]
    assert running["percent"] == 25

    failed = js("model.migrationPhases('vm1', arg, [])", [*done[:2], ev(3, "migrate_to", "n1", ok=False)])
    assert failed["failed"] and failed["phases"][1]["state"] == "failed"

    assert js("model.migrationPhases('vm1', arg, [])", done[:1]) is None  # never migrated: no section


def test_in_flight_leaves_out_monitors_and_failures_name_nodes(js: Any) -> None:
    status = {"time": 2000, "resources": [
        {"id": "vm1", "in_flight": {"n1": "monitor", "n2": "migrate_from"}, "failed_on": [], "failcounts": {}},
        {"id": "d2", "in_flight": {}, "failed_on": ["n3"], "failcounts": {"n3": 1000000}}],
        "fencing": {"history": [], "failing": [{"node": "n3", "failed_attempts": 2, "last_device": "ipmi-n3",
                                                "last_error": "no answer", "last_at": 1990}]}}
    flights = js("model.inFlight(arg)", status)
    assert flights == [{"rsc": "vm1", "node": "n2", "action": "migrate_from", "progress": None}]
    texts = js("(() => { const m = new model.ClusterModel(); m.setStatus(arg); "
               "return m.failures().map((f) => f.text); })()", status)
    assert "d2 failed on n3" in texts
    assert "d2: INFINITY failures on n3" in texts
    assert any(t.startswith("fencing n3 is failing (2 attempts, last via ipmi-n3): no answer") for t in texts)


def test_events_are_kept_once_in_time_order(js: Any) -> None:
    order = js("(() => { const m = new model.ClusterModel(); m.addEvents(arg); m.addEvents(arg.slice(0, 1)); "
               "return m.sortedEvents().map((e) => e.seq); })()", [ev(3, "stop", "n1"), ev(1, "start", "n1")])
    assert order == [1, 3]


def test_a_resource_state_picks_its_badge_kind(js: Any) -> None:
    kinds = js("['started', 'stopped', 'migrating', 'failed', 'MULTIPLE'].map(model.stateKind)")
    assert kinds == ["ok", "muted", "info", "bad", "bad"]
