"""A real 3-node lab (namespaces, iptables): partition 2+1 and heal; a config change
made in the majority while the third node is away reaches it after the heal."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from havm.commands.cluster import ApplyConfig
from havm.daemon.client import Client
from havm.errors import HavmError
from havm.lab import control, lab
from havm.lab.plan import LabSpec
from havm.lab.state import config_of, socket_of
from tests.daemon.waiting import wait_until

pytestmark = [pytest.mark.lab]

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root and iproute2 for network namespaces", allow_module_level=True)


@pytest.fixture
def lab_dir():
    d = tempfile.mkdtemp(prefix="hlp")
    try:
        lab.up(d, LabSpec(nodes=3, links=2, keepalive=0.2, deadtime=1.2, initdead=3), wait=True, timeout=90)
        yield d
    finally:
        lab.down(d)
        shutil.rmtree(d, ignore_errors=True)


def status(d: str, n: str) -> dict:
    return Client(socket_path=socket_of(d, n), timeout=5).request("GET", "/v1/status")




def views(d: str) -> dict[str, dict]:
    return {n: status(d, n) for n in ("n1", "n2", "n3")}


def one_cluster(d: str) -> bool:
    v = views(d)
    return (all(s["members"] == ["n1", "n2", "n3"] and s["view_agreed"] for s in v.values())
            and len({s["controller"] for s in v.values()}) == 1
            and len({s["config"]["version"] for s in v.values()}) == 1)


def test_partition_two_plus_one_then_heal(lab_dir):
    d = lab_dir
    wait_until(lambda: one_cluster(d), 60, "one cluster")
    control.partition(d, ["n1,n2", "n3"])
    wait_until(lambda: (v := views(d)) and v["n1"]["members"] == ["n1", "n2"] and v["n3"]["members"] == ["n3"],
         20, "the partition to show")
    v = views(d)
    assert v["n1"]["quorum"]["quorate"] and v["n2"]["quorum"]["quorate"]
    assert v["n1"]["controller"] == v["n2"]["controller"] == "n1"
    assert not v["n3"]["quorum"]["quorate"] and v["n3"]["controller"] is None
    # a change made on the majority side while n3 is cut off
    text = open(config_of(d)).read() + "# changed during the partition\n"
    r = Client(socket_path=socket_of(d, "n2"), timeout=30).run(ApplyConfig(text=text, by="test"))
    assert r["acked"] == ["n1", "n2"]
    # the minority refuses changes
    with pytest.raises(HavmError) as ei:
        Client(socket_path=socket_of(d, "n3"), timeout=30).run(ApplyConfig(text=text + "# minority\n"))
    assert ei.value.code == "no-quorum"
    control.heal(d)
    wait_until(lambda: one_cluster(d), 30, "one cluster after the heal")
    v = views(d)
    assert {s["config"]["epoch"] for s in v.values()} == {r["version"][1]}
    assert v["n3"]["controller"] == "n1"
