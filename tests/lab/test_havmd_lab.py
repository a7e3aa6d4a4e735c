"""A lab of real havmd processes: they answer on their sockets and form one cluster."""

from __future__ import annotations

import time

import pytest

from havm.daemon.client import Client
from havm.lab import control, lab
from havm.lab.plan import LabSpec
from havm.lab.state import nodes_of, socket_of
from tests.lab.conftest import needs_netns

pytestmark = [pytest.mark.lab, needs_netns]


def _statuses(lab_dir, names=None):
    return {n: Client(socket_path=socket_of(lab_dir, n), timeout=5).request("GET", "/v1/status")
            for n in names or nodes_of(lab_dir)}


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _converged(lab_dir, names):
    sts = _statuses(lab_dir, names)
    return all(sorted(sts[n]["members"]) == sorted(names) and sts[n]["quorum"]["quorate"] for n in names) \
        and len({sts[n]["controller"] for n in names}) == 1


def test_three_havmd_in_namespaces_answer_and_converge(lab_dir):
    res = lab.up(lab_dir, LabSpec(nodes=3, links=2, keepalive=0.2, deadtime=1.0, initdead=3.0), timeout=60)
    assert res["ready"] == ["n1", "n2", "n3"] and nodes_of(lab_dir) == ["n1", "n2", "n3"]
    st = lab.status(lab_dir)
    assert all(n["answers"] and n["state"] == "running" for n in st["nodes"].values())
    _wait(lambda: _converged(lab_dir, ["n1", "n2", "n3"]), 15.0, "3 nodes to converge")

    # a partition of 2 and 1: the pair keeps quorum, the single node loses it
    control.partition(lab_dir, ["n1,n2", "n3"])
    _wait(lambda: not _statuses(lab_dir)["n3"]["quorum"]["quorate"], 15.0, "n3 to lose quorum")
    _wait(lambda: _converged(lab_dir, ["n1", "n2"]), 15.0, "n1, n2 to agree without n3")
    control.heal(lab_dir)
    _wait(lambda: _converged(lab_dir, ["n1", "n2", "n3"]), 15.0, "one membership after heal")

    # a power cut and a restart with the same state dir
    control.kill_node(lab_dir, "n2")
    _wait(lambda: sorted(_statuses(lab_dir, ["n1"])["n1"]["members"]) == ["n1", "n3"], 15.0, "n2 to be declared dead")
    control.start_node(lab_dir, "n2", wait=False)
    assert control.wait_nodes(lab_dir, ["n2"], timeout=30)["ready"] == ["n2"]
    assert lab.status(lab_dir)["nodes"]["n1"]["cpu_seconds"] > 0
    _wait(lambda: _converged(lab_dir, ["n1", "n2", "n3"]), 15.0, "n2 to rejoin")
