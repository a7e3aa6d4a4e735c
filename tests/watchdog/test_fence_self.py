"""A node asked to fence itself (``havm node fence`` by its watchdog): it stops feeding
for good (regained quorum, nothing running or a clean stop change nothing), stops its
resources, starts nothing, reports nothing, and acknowledges only with its watchdog
armed; only a member of its partition may ask."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from havm.clock import ManualClock
from havm.config.load import parse_config_text
from havm.config.watchdog import Watchdog
from havm.daemon import fencing
from havm.daemon.local import LocalResources
from havm.errors import Conflict
from havm.executor.records import ActionRequest
from havm.watchdog.backend import WatchdogError
from havm.watchdog.daemon import NodeWatchdog
from havm.watchdog.policy import WatchdogSnapshot, decide
from tests.controller.test_snapshot import CONFIG
from tests.watchdog.test_keeper import FakeBackend


@pytest.mark.parametrize("kw", [
    {"quorate": True},  # quorum regained (or never lost): still no feeding
    {"quorate": True, "running": ("vm1",)},
    {"quorate": False},  # nothing runs, no quorum: no disarming either
    {"quorate": True, "stopping": True},  # a clean stop of havmd does not disarm it
    {"quorate": True, "armed": False},  # not armed yet: armed (hold arms) and never fed
])
def test_a_self_fenced_node_holds_whatever_else(kw):
    base: dict[str, Any] = {"armed": True, "self_fenced": "asked by n1"}
    d = decide(WatchdogSnapshot(**{**base, **kw}))
    assert d.action == "hold" and "fencing itself" in d.reason


@dataclass
class Local:
    running_now: list[str] = field(default_factory=list)
    fenced: list[str] = field(default_factory=list)
    executor: Any = field(default_factory=lambda: SimpleNamespace(changing=lambda: {}))

    def running(self) -> list[str]:
        return self.running_now

    def stop_failed(self) -> list[str]:
        return []

    def fence_self(self, why: str) -> None:
        self.fenced.append(why)


class Daemon:
    """What NodeWatchdog and fencing.fence_self read of a NodeDaemon."""

    def __init__(self, backend: FakeBackend | None, members: tuple[str, ...] = ("n1", "n2", "n3")) -> None:
        self.node = "n3"
        self.clock = ManualClock()
        self.quorate = True
        self.members = members
        self.local = Local()
        self.emitted: list[tuple[str, dict[str, Any]]] = []
        self.events = SimpleNamespace(emit=lambda kind, text, **f: self.emitted.append((kind, f)))
        self.config = SimpleNamespace(watchdog=Watchdog(backend="lab", timeout=3, interval=0.5),
                                      properties=SimpleNamespace(fencing_enabled=True))
        self.watchdog = NodeWatchdog(self, backend) if backend is not None else None  # type: ignore[arg-type]

    def view(self) -> Any:
        return SimpleNamespace(quorate=self.quorate, members=self.members)


def test_the_target_stops_feeding_for_good_and_acknowledges():
    backend = FakeBackend()
    d = Daemon(backend)
    k = d.watchdog.keeper
    k.step()
    assert backend.calls == ["arm 3", "feed"]
    d.clock.advance(1.0)
    ack = fencing.fence_self(d, "operator (havm node fence)", "n1")  # type: ignore[arg-type]
    assert ack == {"node": "n3", "reset_in": 2.0}  # fed 1s ago, timeout 3s
    assert d.local.fenced and "n1" in d.local.fenced[0]
    assert [k for k, _ in d.emitted][-2:] == ["watchdog.expiry-wait", "fence.self"]
    for quorate in (True, False, True):  # quorum lost and regained: never fed, never disarmed
        d.quorate = quorate
        k.step()
    d.watchdog.configure(SimpleNamespace(watchdog=Watchdog(backend="lab", timeout=10, interval=1)))
    d.watchdog.close()  # a clean stop of havmd leaves the countdown running
    assert backend.calls == ["arm 3", "feed", "abandon"]
    # asked again (the fencer retried): acknowledged again, one event
    d2 = Daemon(FakeBackend())
    fencing.fence_self(d2, "x", "n1")  # type: ignore[arg-type]
    fencing.fence_self(d2, "x", "n2")  # type: ignore[arg-type]
    assert [k for k, _ in d2.emitted].count("fence.self") == 1


def test_an_unarmed_watchdog_is_armed_and_held():
    backend = FakeBackend()
    d = Daemon(backend)
    assert fencing.fence_self(d, "x", "n1")["reset_in"] == 3.0  # type: ignore[arg-type]
    assert backend.calls == ["arm 3"]


def test_no_acknowledgement_without_an_armed_watchdog():
    d = Daemon(FakeBackend(fail_arm=True))
    with pytest.raises(WatchdogError):
        fencing.fence_self(d, "x", "n1")  # type: ignore[arg-type]
    assert "fence.self" not in [k for k, _ in d.emitted]
    with pytest.raises(Conflict, match="no watchdog"):
        fencing.fence_self(Daemon(None), "x", "n1")  # type: ignore[arg-type]


def test_only_a_member_of_its_partition_may_ask():
    backend = FakeBackend()
    d = Daemon(backend, members=("n2", "n3"))
    with pytest.raises(Conflict, match="not a member"):
        fencing.fence_self(d, "x", "n1")  # type: ignore[arg-type]
    assert backend.calls == [] and not d.local.fenced


def test_local_resources_stop_start_nothing_and_report_nothing(tmp_path):
    async def go() -> None:
        local = LocalResources("n1", str(tmp_path), ManualClock(), lambda st: None)
        local.configure(parse_config_text(CONFIG, "t.yaml").config)  # resources a and b
        await local._probe_task
        assert (await local.execute(ActionRequest("a", "", "start"))).ok
        assert local.running() == ["a"] and local.report()["states"]
        local.fence_self("asked by n2")
        with pytest.raises(Conflict, match="fencing itself"):
            local.report()  # no controller plans with a node about to be reset
        with pytest.raises(Conflict, match="start b refused"):
            await local.execute(ActionRequest("b", "", "start"))
        assert local._quorum_stop is not None
        await local._quorum_stop  # what ran is being stopped
        assert local.running() == []
        assert (await local.execute(ActionRequest("a", "", "stop"))).ok  # stops still run
        await local.close()

    asyncio.run(go())
