"""The node-local rules of LocalResources with real dummy agents: what a node
refuses to start (no quorum, shutting down, fencing itself), and waiting for the
actions under way before its stop sweep."""

from __future__ import annotations

import asyncio

import pytest

from havm.clock import ManualClock
from havm.config.load import parse_config_text
from havm.daemon.local import LocalResources
from havm.errors import Conflict
from havm.executor.records import ActionRequest
from tests.controller.test_snapshot import CONFIG  # resources a and b (dummies)


def test_a_node_without_quorum_starts_nothing_but_still_stops_and_looks(tmp_path):
    quorum = {"why": None}

    async def go() -> None:
        local = LocalResources("n1", str(tmp_path), ManualClock(), lambda st: None, lambda: quorum["why"])
        local.configure(parse_config_text(CONFIG, "t.yaml").config)
        await local._probe_task
        assert (await local.execute(ActionRequest("a", "", "start"))).ok
        quorum["why"] = "n1 has no quorum (1 of 3 votes)"
        for action in ("start", "migrate_from", "promote"):
            with pytest.raises(Conflict, match=rf"n1 has no quorum \(1 of 3 votes\): {action} b refused"):
                await local.execute(ActionRequest("b", "", action))
        assert local.running() == ["a"]
        assert (await local.execute(ActionRequest("a", "", "monitor"))).ok
        assert (await local.execute(ActionRequest("a", "", "stop"))).ok
        quorum["why"] = None
        assert (await local.execute(ActionRequest("b", "", "start"))).ok
        await local.close()

    asyncio.run(go())


def test_leaving_refuses_starts_and_settle_waits_for_a_start_under_way(tmp_path):
    async def go() -> None:
        local = LocalResources("n1", str(tmp_path), ManualClock(), lambda st: None)
        local.configure(parse_config_text(CONFIG, "t.yaml").config)
        await local._probe_task
        slow = asyncio.ensure_future(local.execute(ActionRequest("a", "havm:dummy", "start",
                                                                 params={"start_sleep": 0.5,
                                                                         "state_dir": str(tmp_path / "dummy")})))
        for _ in range(100):
            if local.executor.changing():
                break
            await asyncio.sleep(0.01)
        local.leaving = True
        with pytest.raises(Conflict, match="n1 is shutting down: start b refused"):
            await local.execute(ActionRequest("b", "", "start"))
        assert local.running() == []  # the start under way does not show yet
        await local.settle()
        assert slow.done() and local.running() == ["a"]  # what the stop sweep must now stop
        await local.stop_all()
        assert local.running() == []
        await local.close()

    asyncio.run(go())
