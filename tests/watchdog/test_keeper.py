"""The keeper applies the policy to a backend and says what it did (events)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from havm.clock import ManualClock
from havm.config.watchdog import Watchdog
from havm.watchdog.backend import WatchdogBackend, WatchdogError
from havm.watchdog.keeper import WatchdogKeeper
from havm.watchdog.policy import WatchdogSnapshot


class FakeBackend(WatchdogBackend):
    def __init__(self, fail_arm: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_arm = fail_arm

    def describe(self) -> str:
        return "fake"

    def probe(self) -> None:
        self.calls.append("probe")

    def arm(self, timeout: float) -> float:
        if self.fail_arm:
            raise WatchdogError("no such watchdog")
        self.calls.append(f"arm {timeout:g}")
        self.armed = True
        return timeout

    def feed(self) -> None:
        self.calls.append("feed")

    def disarm(self) -> None:
        self.calls.append("disarm")
        self.armed = False

    def abandon(self) -> None:
        self.calls.append("abandon")
        self.armed = False


class Node:
    def __init__(self) -> None:
        self.snap = WatchdogSnapshot(armed=False, quorate=True)
        self.events: list[str] = []

    def snapshot(self, armed: bool) -> WatchdogSnapshot:
        return replace(self.snap, armed=armed)

    def emit(self, kind: str, text: str, **fields: Any) -> None:
        self.events.append(kind)


def keeper(backend: WatchdogBackend, node: Node) -> WatchdogKeeper:
    return WatchdogKeeper(backend, Watchdog(backend="lab", timeout=5), node.snapshot, ManualClock(), node.emit)


def test_quorum_loss_stops_feeding_and_a_completed_stop_disarms():
    b, n = FakeBackend(), Node()
    k = keeper(b, n)
    n.snap = replace(n.snap, running=("vm1",))
    k.step()
    k.step()
    assert b.calls == ["arm 5", "feed", "feed"]
    n.snap = replace(n.snap, quorate=False)
    k.step()
    k.step()
    assert b.calls[3:] == []  # no feed while resources stop
    n.snap = replace(n.snap, running=())
    k.step()
    assert b.calls[3:] == ["disarm"]
    assert n.events == ["watchdog.armed", "watchdog.expiry-wait", "watchdog.disarmed"]
    assert k.status()["armed"] is False and k.status()["decision"] == "disarm"


def test_exit_with_resources_running_leaves_the_countdown_running():
    b, n = FakeBackend(), Node()
    k = keeper(b, n)
    n.snap = replace(n.snap, running=("vm1",), stopping=True)
    k.step()
    n.snap = replace(n.snap, quorate=False)
    k.close()
    assert b.calls == ["arm 5", "feed", "abandon"]
    n.snap = replace(n.snap, running=())
    b2 = FakeBackend()
    k2 = keeper(b2, n)
    k2.step()  # not quorate, nothing runs: never armed
    k2.close()
    assert b2.calls == []


def test_an_arming_failure_is_loud_but_does_not_kill_the_keeper():
    b, n = FakeBackend(fail_arm=True), Node()
    k = keeper(b, n)
    k.step()
    k.step()
    assert n.events == ["watchdog.error"]  # once, not every round
    assert k.last is not None and k.last.action == "feed"


class FakeDaemon:
    """Just what NodeWatchdog reads of NodeDaemon."""

    def __init__(self, changing: dict[str, list[str]], quorate: bool = False) -> None:
        from types import SimpleNamespace

        from havm.config.load import parse_config_text

        self.node = "n1"
        self.clock = ManualClock()
        self.config = parse_config_text(
            "cluster: t\nnodes: [{name: n1, addresses: {ring0: 10.0.0.1}}]\nlinks: [{name: ring0}]\n"
            "watchdog: {backend: lab, device: /nowhere, timeout: 5}\n", "t.yaml").config
        self.events = SimpleNamespace(emit=lambda *a, **k: None)
        self.local = SimpleNamespace(running=lambda: [], stop_failed=lambda: [],
                                     executor=SimpleNamespace(changing=lambda: changing))
        self._view = SimpleNamespace(quorate=quorate)

    def view(self) -> Any:
        return self._view


def test_probes_and_monitors_under_way_do_not_arm_an_empty_node_without_quorum():
    # (the executor lists no probe or monitor in changing(): tests/executor)
    from havm.watchdog.daemon import NodeWatchdog

    for changing, action in (({}, "idle"), ({"vm1": ["start"]}, "hold")):
        d = FakeDaemon(changing)
        w = NodeWatchdog(d, FakeBackend())  # type: ignore[arg-type]
        assert w.keeper.step().action == action, changing
