"""Real UDP on loopback aliases (127.0.X.Y), no root needed: three services, each on its
own membership thread, converge; a crashed one is detected after deadtime, a stopped one at once."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from havm.config.schema import ClusterConfig
from havm.membership.thread import MembershipThread
from havm.membership.transport import TransportError
from tests.membership.membership_harness import KEY

TIMING = {"keepalive": 0.2, "warntime": 0.8, "deadtime": 2.0, "initdead": 4.0}  # loaded CI machines stall
NAMES = ["n1", "n2", "n3"]


def udp_config(port: int, subnet: int) -> ClusterConfig:
    return ClusterConfig.model_validate({
        "cluster": "udp",
        "links": [{"name": "a", "port": port}, {"name": "b", "port": port + 1}],
        "nodes": [{"name": n, "addresses": {"a": f"127.{subnet}.1.{i}", "b": f"127.{subnet}.2.{i}"}}
                  for i, n in enumerate(NAMES, 1)],
        "timing": TIMING,
    })


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition (bounded); real sockets need real time to pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def threads():  # type: ignore[no-untyped-def]
    started: list[MembershipThread] = []
    for _attempt in range(5):
        config = udp_config(random.randrange(20000, 60000, 2), random.randrange(10, 250))
        try:
            for name in NAMES:
                t = MembershipThread.for_node(config, name, KEY, app_info=lambda n=name: {"who": n})
                t.start()
                started.append(t)
            break
        except TransportError:  # port taken: another run, try other numbers
            for t in started:
                t.stop(leave=False)
            started.clear()
    assert started, "could not bind loopback heartbeat sockets"
    yield {t.service.node: t for t in started}
    for t in started:
        t.stop(leave=False)


def converged(threads: dict[str, MembershipThread], names: list[str]) -> bool:
    views = [threads[n].snapshot() for n in names]
    return all(v.members == tuple(names) and v.agreed and v.controller == names[0] for v in views)


def test_three_nodes_converge_over_udp(threads) -> None:  # type: ignore[no-untyped-def]
    assert wait_until(lambda: converged(threads, NAMES))
    v = threads["n2"].snapshot()
    assert v.quorate and v.peer("n3").app == {"who": "n3"}
    assert all(lk.state == "up" and lk.peers_up == 2 for lk in v.links)
    assert v.traffic.drops.get("bad-mac", 0) == 0 and v.traffic.received_packets > 0
    assert v.jitter.count > 0


def test_crashed_node_detected_after_deadtime(threads) -> None:  # type: ignore[no-untyped-def]
    assert wait_until(lambda: converged(threads, NAMES))
    threads["n1"].stop(leave=False)  # the controller dies silently
    assert wait_until(lambda: threads["n2"].snapshot().peer("n1").state == "dead")
    assert wait_until(lambda: converged(threads, ["n2", "n3"]))
    p = threads["n3"].snapshot().peer("n1")
    assert p.state == "dead" and not p.left and p.last_heard_age >= TIMING["deadtime"]
    assert threads["n3"].snapshot().controller == "n2"


def test_stopped_node_leaves_at_once(threads) -> None:  # type: ignore[no-untyped-def]
    assert wait_until(lambda: converged(threads, NAMES))
    threads["n3"].stop()
    assert wait_until(lambda: threads["n1"].snapshot().peer("n3").state == "dead")
    p = threads["n1"].snapshot().peer("n3")
    assert p.left and p.last_heard_age < TIMING["deadtime"]  # no deadtime wait


def test_a_link_that_cannot_be_opened_does_not_stop_the_others() -> None:
    config = udp_config(random.randrange(20000, 60000, 2), 7)
    n1 = config.nodes[0]
    bad = config.model_copy(update={"nodes": [
        n1.model_copy(update={"addresses": {"a": "192.0.2.250", "b": n1.addresses["b"]}}), *config.nodes[1:]]})
    t = MembershipThread.for_node(bad, "n1", KEY)
    t.start()
    try:
        assert t.service.transport.open_links == [False, True]  # type: ignore[attr-defined]
        assert wait_until(lambda: t.snapshot().traffic.sent_packets > 0)
        assert t.snapshot().traffic.send_errors > 0  # link a's heartbeats cannot go out
    finally:
        t.stop()


def test_no_link_at_all_is_an_error_naming_each_link() -> None:
    config = udp_config(21000, 7)
    bad = config.model_copy(update={"nodes": [
        config.nodes[0].model_copy(update={"addresses": {"a": "192.0.2.250", "b": "192.0.2.251"}}),
        *config.nodes[1:]]})
    t = MembershipThread.for_node(bad, "n1", KEY)
    with pytest.raises(TransportError, match="link a .*link b"):
        t.start()


def test_a_second_daemon_for_the_same_node_fails_with_address_in_use(threads) -> None:  # type: ignore[no-untyped-def]
    config = threads["n1"].service.config
    twin = MembershipThread.for_node(config, "n1", KEY)
    with pytest.raises(TransportError, match="in use"):
        twin.start()


def test_realtime_priority_applies_to_the_membership_thread_only() -> None:
    import os
    config = udp_config(random.randrange(20000, 60000, 2), 9)
    t = MembershipThread.for_node(config, "n1", KEY, realtime_priority=5)
    t.start()
    try:
        tid = t._thread.native_id  # type: ignore[union-attr]
        policy = os.sched_getscheduler(tid)
        if policy != os.SCHED_RR:
            pytest.skip("this machine refuses SCHED_RR (no CAP_SYS_NICE)")
        assert os.sched_getparam(tid).sched_priority == 5
        assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller's thread is untouched
    finally:
        t.stop()


def test_garbage_and_oversized_datagrams_are_counted_not_fatal(threads) -> None:  # type: ignore[no-untyped-def]
    import socket
    assert wait_until(lambda: converged(threads, NAMES))
    config = threads["n1"].service.config
    target = (config.node("n1").addresses["a"], config.links[0].port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x" * 3000, target)
        s.sendto(b"HAVM\x01", target)
    assert wait_until(lambda: threads["n1"].snapshot().traffic.drops == {"too-large": 1, "truncated": 1})
    assert converged(threads, NAMES)
