"""The fencing policy with scripted devices and a manual clock: levels in order,
every device of a level, retries, the delay before the first attempt, history."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from havm.clock import ManualClock
from havm.config.fencing import Fencing
from havm.config.watchdog import Watchdog
from havm.fencing.history import FenceHistory, summarize
from tests.fencing.fakes import FAIL, OK, ScriptedDevices, Sleeps, fencer


def section(doc: dict) -> Fencing:
    return Fencing.model_validate(doc)


TWO_LEVELS = {
    "devices": [{"id": "bmc", "agent": "fence_ipmilan", "nodes": ["n1"], "retries": 1},
                {"id": "pdu-a", "agent": "fence_apc", "host_map": {"n1": "3"}},
                {"id": "pdu-b", "agent": "fence_apc", "host_map": {"n1": "7"}}],
    "levels": {"n1": [["bmc"], ["pdu-a", "pdu-b"]]},
}


def run(fencing: Fencing, script: dict, node: str = "n1", history: FenceHistory | None = None,
        clock: ManualClock | None = None):
    clock = clock or ManualClock()
    devices = ScriptedDevices(clock, script)
    sleeps = Sleeps(clock)
    out = asyncio.run(fencer(fencing, devices, sleeps, history).fence(node, "controller n2"))
    return out, devices, sleeps


def test_first_level_success_stops_there():
    out, devices, _ = run(section(TWO_LEVELS), {"bmc": [OK], "pdu-a": [OK], "pdu-b": [OK]})
    assert out.ok and out.level == 1
    assert [c[0] for c in devices.calls] == ["bmc"]
    assert out.attempts[0].requested_by == "controller n2" and out.attempts[0].executor == "n2"


def test_failing_level_retries_then_next_level_needs_every_device():
    out, devices, sleeps = run(section(TWO_LEVELS), {"bmc": [FAIL], "pdu-a": [OK], "pdu-b": [OK]})
    assert out.ok and out.level == 2
    # bmc: 1 + retries(1) attempts, a pause between them; then both PDUs
    assert [c[0] for c in devices.calls] == ["bmc", "bmc", "pdu-a", "pdu-b"]
    assert sleeps.slept == [1.0]
    assert [(a.device, a.level, a.attempt, a.ok) for a in out.attempts] == [
        ("bmc", 1, 1, False), ("bmc", 1, 2, False), ("pdu-a", 2, 1, True), ("pdu-b", 2, 1, True)]


def test_a_level_fails_when_one_of_its_devices_fails():
    out, devices, _ = run(section(TWO_LEVELS), {"bmc": [FAIL], "pdu-a": [OK], "pdu-b": [FAIL]})
    assert not out.ok and out.level is None
    assert "level 1: bmc" in out.error and "level 2: pdu-b" in out.error
    assert [c[0] for c in devices.calls] == ["bmc", "bmc", "pdu-a", "pdu-b"]


def test_a_retry_can_succeed():
    out, devices, _ = run(section(TWO_LEVELS), {"bmc": [FAIL, OK], "pdu-a": [OK], "pdu-b": [OK]})
    assert out.ok and out.level == 1 and len(devices.calls) == 2


def test_without_levels_each_capable_device_is_a_level_in_order():
    fencing = section({"devices": [
        {"id": "only-n3", "agent": "lab", "nodes": ["n3"]},
        {"id": "first", "agent": "fence_virsh"},
        {"id": "second", "agent": "lab"}]})
    out, devices, _ = run(fencing, {"only-n3": [OK], "first": [FAIL], "second": [OK]})
    assert out.ok and out.level == 2
    assert [c[0] for c in devices.calls] == ["first", "second"]


def test_delay_per_target_is_waited_before_the_first_attempt_only():
    fencing = section({"devices": [{"id": "d", "agent": "lab", "delay": {"n1": "5s"}, "retries": 1}]})
    out, devices, sleeps = run(fencing, {"d": [FAIL, OK]}, node="n1")
    assert out.ok and out.delay == 5.0
    assert sleeps.slept == [5.0, 1.0]  # the delay, then the pause between the two attempts
    assert devices.calls[0][2] == 1005.0  # the first attempt started after the delay
    out2, _, sleeps2 = run(fencing, {"d": [OK]}, node="n2")
    assert out2.ok and sleeps2.slept == [] and out2.delay == 0.0


def test_no_device_for_the_node_fails_and_is_recorded():
    history = FenceHistory(None)
    fencing = section({"devices": [{"id": "d", "agent": "lab", "nodes": ["n2"]}]})
    out, devices, _ = run(fencing, {"d": [OK]}, node="n1", history=history)
    assert not out.ok and "no fence device can fence n1" in out.error
    assert devices.calls == []
    assert [a.error for a in history.attempts()] == ["no fence device can fence n1"]


def test_a_device_that_raises_is_a_failed_attempt():
    fencing = section({"devices": [{"id": "d", "agent": "lab"}, {"id": "e", "agent": "lab"}]})

    class Boom(ScriptedDevices):
        def make(self, cfg):
            if cfg.id == "d":
                raise RuntimeError("broken")
            return super().make(cfg)

    clock = ManualClock()
    devices = Boom(clock, {"e": [OK]})
    out = asyncio.run(fencer(fencing, devices, Sleeps(clock)).fence("n1", "me"))
    assert out.ok and out.level == 2
    assert "internal error: broken" in out.attempts[0].error


def test_concurrent_fences_of_one_node_run_one_after_the_other():
    fencing = section({"devices": [{"id": "d", "agent": "lab"}]})
    clock = ManualClock()
    active = []
    overlaps = []

    class Slow(ScriptedDevices):
        def make(self, cfg):
            inner = super().make(cfg)

            class Wrapped(type(inner)):  # type: ignore[misc]
                async def off(self, node, timeout):
                    overlaps.append(len(active))
                    active.append(node)
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                    active.remove(node)
                    return await inner.off(node, timeout)
            return Wrapped(cfg)

    devices = Slow(clock, {"d": [OK]})
    f = fencer(fencing, devices, Sleeps(clock))

    async def both():
        return await asyncio.gather(f.fence("n1", "a"), f.fence("n1", "b"), f.fence("n3", "c"))

    outs = asyncio.run(both())
    assert all(o.ok for o in outs)
    # n1's second request waited for the first and shares its outcome: the device ran
    # once for n1 and once for n3, and n1's two runs never overlapped
    assert sorted(c[1] for c in devices.calls) == ["n1", "n3"]
    assert outs[0] is outs[1] and outs[0].requested_by == "a"
    assert max(overlaps) <= 1
    # a later request fences again (the node may have been powered on meanwhile)
    again = asyncio.run(f.fence("n1", "d"))
    assert again.ok and again.requested_by == "d" and len(devices.calls) == 3


def test_history_survives_a_restart_and_summarizes_failing_nodes(tmp_path):
    path = str(tmp_path / "fencing-history.json")
    fencing = section({"devices": [{"id": "d", "agent": "lab"}]})
    clock = ManualClock()
    run(fencing, {"d": [FAIL]}, node="n1", history=FenceHistory(path), clock=clock)
    run(fencing, {"d": [FAIL]}, node="n1", history=FenceHistory(path), clock=clock)
    run(fencing, {"d": [OK]}, node="n3", history=FenceHistory(path), clock=clock)
    again = FenceHistory(path)  # a daemon restart reads it back
    assert [(a.node, a.ok) for a in again.attempts()] == [("n1", False), ("n1", False), ("n3", True)]
    s = summarize(again.attempts())
    assert [f["node"] for f in s["failing"]] == ["n1"]
    assert s["failing"][0]["failed_attempts"] == 2 and s["failing"][0]["last_device"] == "d"
    assert len(s["history"]) == 3
    run(fencing, {"d": [OK]}, node="n1", history=again, clock=clock)
    assert summarize(FenceHistory(path).attempts())["failing"] == []


def test_history_keeps_the_last_n_and_tolerates_a_damaged_file(tmp_path):
    path = tmp_path / "h.json"
    fencing = section({"devices": [{"id": "d", "agent": "lab"}]})
    h = FenceHistory(str(path), size=3)
    clock = ManualClock()
    for _ in range(5):
        run(fencing, {"d": [OK]}, history=h, clock=clock)
    assert len(FenceHistory(str(path), size=3).attempts()) == 3
    path.write_text("{not json")
    assert FenceHistory(str(path)).attempts() == []


def test_the_forwarding_budget_covers_delay_levels_and_retries():
    from havm.daemon.fencing import fence_budget

    f = section({**TWO_LEVELS, "devices": [
        {"id": "bmc", "agent": "fence_ipmilan", "nodes": ["n1"], "retries": 1, "timeout": 10, "delay": 3},
        {"id": "pdu-a", "agent": "fence_apc", "host_map": {"n1": "3"}, "timeout": 5},
        {"id": "pdu-b", "agent": "fence_apc", "host_map": {"n1": "7"}, "timeout": 5}]})
    config = SimpleNamespace(fencing=f, node_names=["n1", "n3"], watchdog=Watchdog())
    # delay 3 + bmc 2 x 10 + 1 pause + pdu-a 5 + pdu-b 5
    assert fence_budget(config, "n1") == 34.0  # type: ignore[arg-type]
    assert fence_budget(config, "n3") == 0.0  # type: ignore[arg-type]


def test_a_fence_is_abandoned_when_still_due_says_so_after_the_delay_or_a_pause():
    # Chaos finding 3: the target rejoined while the fence sat in its delay; the fence must
    # not run the agent then, and its outcome must not read as "off" nor as a plain failure.
    fencing = section({"devices": [{"id": "d", "agent": "lab", "delay": {"n1": "3s"}, "retries": 2}]})
    clock = ManualClock()
    history = FenceHistory(None)
    asked: list[float] = []

    def rejoined_after(t: float):
        def still_due() -> str | None:
            asked.append(clock.monotonic())
            return "n1 is a member again" if clock.monotonic() >= t else None
        return still_due

    devices = ScriptedDevices(clock, {"d": [FAIL, OK]})
    f = fencer(fencing, devices, Sleeps(clock), history)
    out = asyncio.run(f.fence("n1", "controller n2", still_due=rejoined_after(1000.5)))
    assert not out.ok and out.abandoned == "n1 is a member again" and out.error == ""
    assert asked == [1003.0]  # asked once the delay was over, before the first attempt
    assert devices.calls == [] and history.attempts() == []
    assert out.to_json()["abandoned"] == "n1 is a member again"

    # rejoined between two attempts (after a failed one): no further attempt
    asked.clear()
    out = asyncio.run(f.fence("n1", "controller n2", still_due=rejoined_after(clock.monotonic() + 3.2)))
    assert out.abandoned and not out.ok and [c[0] for c in devices.calls] == ["d"]
    assert len(asked) == 2 and [a.ok for a in out.attempts] == [False]

    # without a reason the fence runs as before; a fence asked without still_due never abandons
    out = asyncio.run(f.fence("n1", "controller n2", still_due=lambda: None))
    assert out.ok and not out.abandoned
    assert asyncio.run(f.fence("n1", "operator")).ok
