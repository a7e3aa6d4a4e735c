"""The executor against real agents: havm's dummy (in a runner process) and
Debian's unmodified OCF ocf:heartbeat:Dummy."""

from __future__ import annotations

import asyncio
import os

import pytest

from havm.agents.base import OCF
from havm.clock import SystemClock
from havm.executor.executor import Executor, role_after
from havm.executor.records import ActionRequest

OCF_DUMMY = "/usr/lib/ocf/resource.d/heartbeat/Dummy"


def run(coro):
    return asyncio.run(coro)


def make(tmp_path, changes=None) -> Executor:
    def defaults(rsc: str, agent: str) -> dict:
        return {"state_dir": str(tmp_path / "dummy")} if agent == "havm:dummy" else {}

    return Executor("n1", SystemClock(), on_change=(changes.append if changes is not None else None),
                    default_params=defaults)


def test_native_dummy_lifecycle_and_state(tmp_path):
    changes = []

    async def go():
        ex = make(tmp_path, changes)
        probe = await ex.execute(ActionRequest("d1", "havm:dummy", "monitor"))
        assert probe.rc == OCF.NOT_RUNNING and ex.state("d1").role == "stopped"
        start = await ex.execute(ActionRequest("d1", "havm:dummy", "start"))
        assert start.ok and ex.state("d1").role == "started"
        assert (tmp_path / "dummy" / "d1.state").exists()
        mon = await ex.execute(ActionRequest("d1", "havm:dummy", "monitor"))
        assert mon.ok
        for _ in range(2):  # stop is idempotent
            assert (await ex.execute(ActionRequest("d1", "havm:dummy", "stop"))).ok
        assert ex.state("d1").role == "stopped" and not (tmp_path / "dummy" / "d1.state").exists()
        assert [r.action for r in ex.history.recent("d1")] == ["monitor", "start", "monitor", "stop", "stop"]
        await ex.close()

    run(go())
    assert [c.role for c in changes][:2] == ["stopped", "started"]


def test_timeout_kills_the_action_and_counts_as_failure(tmp_path):
    async def go():
        ex = make(tmp_path)
        rec = await ex.execute(ActionRequest("slow", "havm:dummy", "start", params={"op_sleep": 30}, timeout=0.5))
        assert rec.rc == OCF.ERR_GENERIC and "timed out after 0.5s" in rec.output
        st = ex.state("slow")
        assert st.role == "failed" and st.failcount == 1_000_000  # a failed start bans the node
        rec = await ex.execute(ActionRequest("slow", "havm:dummy", "stop", params={"op_sleep": 30}, timeout=0.5))
        assert ex.state("slow").role == "stop-failed"
        await ex.close()

    run(go())


def test_changing_lists_actions_under_way_and_queued_but_not_looks(tmp_path):
    # what a controller must not plan past: a start under way reads "stopped" until it ends
    async def go():
        ex = make(tmp_path)
        slow = {"op_sleep": 0.6}
        start = asyncio.ensure_future(ex.execute(ActionRequest("d1", "havm:dummy", "start", params=slow)))
        look = asyncio.ensure_future(ex.execute(ActionRequest("d1", "havm:dummy", "monitor")))
        stop = asyncio.ensure_future(ex.execute(ActionRequest("d1", "havm:dummy", "stop", params=slow)))
        other = asyncio.ensure_future(ex.execute(ActionRequest("d2", "havm:dummy", "monitor", params=slow)))
        for _ in range(50):
            if ex.in_flight.get("d1") == "start" and "d2" in ex.in_flight:
                break
            await asyncio.sleep(0.02)
        assert ex.in_flight == {"d1": "start", "d2": "monitor"}
        assert ex.state("d1").role == "stopped"  # the report alone would say it does not run
        assert ex.changing() == {"d1": ["start", "stop"]}  # the stop waits for the lock: listed too
        await start
        assert ex.changing() == {"d1": ["stop"]}
        await asyncio.gather(look, stop, other)
        assert ex.changing() == {}
        await ex.close()

    run(go())


def test_a_start_whose_caller_is_cancelled_runs_to_its_end_and_is_accounted(tmp_path):
    # a daemon shutting down cancels its controller mid-transition: the start it was waiting
    # for must not be orphaned (its process would bring the resource up unaccounted, after
    # the shutdown's stop sweep looked)
    async def go():
        ex = make(tmp_path)
        caller = asyncio.ensure_future(ex.execute(ActionRequest("d1", "havm:dummy", "start",
                                                                params={"start_sleep": 0.4})))
        for _ in range(50):
            if ex.in_flight.get("d1") == "start":
                break
            await asyncio.sleep(0.02)
        caller.cancel()
        await asyncio.sleep(0)
        assert caller.cancelled()
        assert ex.changing() == {"d1": ["start"]}  # still under way, still said
        for _ in range(100):
            if not ex.changing():
                break
            await asyncio.sleep(0.02)
        assert ex.changing() == {} and ex.state("d1").role == "started"  # ended and accounted
        assert [r.action for r in ex.history.recent("d1")] == ["start"]
        await ex.close()

    run(go())


def test_recurring_monitor_detects_failure(tmp_path):
    changes = []

    async def go():
        ex = make(tmp_path, changes)
        mon = ActionRequest("d2", "havm:dummy", "monitor", interval=0.2, timeout=5)
        ex.set_monitor(mon, "d2")
        assert (await ex.execute(ActionRequest("d2", "havm:dummy", "start"))).ok
        (tmp_path / "dummy" / "d2.state").unlink()  # the resource dies behind our back
        for _ in range(100):  # bounded: at most 10 s
            if ex.state("d2").role != "started":
                break
            await asyncio.sleep(0.1)
        st = ex.state("d2")
        assert st.role == "stopped" and st.failcount == 1 and st.last_failure is not None
        await ex.close()

    run(go())


def test_unknown_agent_is_not_installed(tmp_path):
    async def go():
        ex = make(tmp_path)
        rec = await ex.execute(ActionRequest("x", "havm:nosuch", "start"))
        assert rec.rc == OCF.ERR_INSTALLED and "no native agent 'nosuch'" in rec.output
        rec = await ex.execute(ActionRequest("y", "ocf:heartbeat:NoSuchAgent", "start"))
        assert rec.rc == OCF.ERR_INSTALLED and "not installed" in rec.output

    run(go())


@pytest.mark.skipif(not os.path.exists(OCF_DUMMY), reason="resource-agents (ocf:heartbeat:Dummy) not installed")
def test_unmodified_ocf_dummy(tmp_path):
    state = str(tmp_path / "ocf-dummy.state")

    async def go():
        ex = make(tmp_path)
        req = lambda action: ActionRequest("od", "ocf:heartbeat:Dummy", action, params={"state": state})  # noqa: E731
        assert (await ex.execute(req("monitor"))).rc == OCF.NOT_RUNNING
        assert (await ex.execute(req("start"))).ok
        assert os.path.exists(state)
        assert (await ex.execute(req("monitor"))).rc == OCF.SUCCESS
        assert (await ex.execute(req("stop"))).ok
        assert (await ex.execute(req("monitor"))).rc == OCF.NOT_RUNNING
        meta = await ex.execute(req("meta_data"))
        assert meta.ok and "<resource-agent" in meta.output

    run(go())


def test_role_after_rules():
    assert role_after("monitor", OCF.RUNNING_PROMOTED, "stopped") == ("promoted", False)
    assert role_after("monitor", OCF.NOT_RUNNING, "stopped") == ("stopped", False)
    assert role_after("monitor", OCF.NOT_RUNNING, "started") == ("stopped", True)
    assert role_after("stop", OCF.ERR_GENERIC, "started") == ("stop-failed", True)
    assert role_after("migrate_to", OCF.ERR_GENERIC, "started") == ("started", True)
    assert role_after("migrate_to", OCF.SUCCESS, "started") == ("migrated", False)  # stale source copy
    assert role_after("migrate_from", OCF.SUCCESS, "stopped") == ("started", False)
    # the target's incoming copy runs once the stream ends: present until migrate_from/abort/stop
    assert role_after("migrate_prepare", OCF.SUCCESS, "stopped") == ("incoming", False)
    assert role_after("migrate_abort", OCF.SUCCESS, "incoming") == ("stopped", False)
    assert role_after("migrate_prepare", OCF.ERR_GENERIC, "stopped") == ("stopped", True)
    # OCF agents have no prepare/abort/recover (rc 3): no failure, nothing changes
    # (it counted one failure on the target per migration of an OCF resource)
    for phase, before in (("migrate_prepare", "stopped"), ("migrate_abort", "stopped"), ("migrate_recover", "migrated")):
        assert role_after(phase, OCF.ERR_UNIMPLEMENTED, before) == (before, False)
    assert role_after("migrate_to", OCF.ERR_UNIMPLEMENTED, "started") == ("started", True)


@pytest.mark.parametrize("warm", [True, False], ids=["fork-server", "interpreter"])
def test_both_ways_of_running_native_agents(tmp_path, warm):
    from havm.executor.invoke import ForkServer, invoke
    from havm.executor.registry import resolve

    fs = ForkServer() if warm else None

    async def go():
        ref = resolve("havm:dummy")
        params = {"state_dir": str(tmp_path)}
        rc, _, _, _ = await invoke(ref, "w", params, "start", 10, fork_server=fs)
        assert rc == OCF.SUCCESS and (tmp_path / "w.state").exists()
        rc, out, data, _ = await invoke(ref, "w", {**params, "op_sleep": 30}, "stop", 0.5, fork_server=fs)
        assert rc == OCF.ERR_GENERIC and data == {"timeout": True}
        assert (tmp_path / "w.state").exists()  # killed before it could act
        rc, _, _, _ = await invoke(ref, "w", params, "monitor", 10, fork_server=fs)
        assert rc == OCF.SUCCESS

    try:
        run(go())
    finally:
        if fs is not None:
            fs.close()
