"""Watchdog self-fencing in a real lab (namespaces, iptables, real havmd), with no
fence device: each node has a lab watchdog process outside it that kills the whole
node when its havmd stops feeding it.

- a node partitioned away while running a resource stops it (and disarms, staying
  up); if the stop is slower than the watchdog's timeout, the watchdog resets the
  node; either way the survivors start it only after fencing_watchdog_timeout;
- a frozen (SIGSTOP) havmd stops feeding: its watchdog resets the node, and the
  survivors recover its resource after fencing_watchdog_timeout;
- ``havm node fence n3`` (no device can fence it) asks n3 to fence itself: its
  watchdog resets it, the command succeeds only fencing_watchdog_timeout after n3
  acknowledged, and n3's resource runs elsewhere; a restarted n3 feeds again;
- an observer outside the cluster samples every node's dummy state file all along:
  the resource never runs on two nodes at once.

Figures (partition -> recovery, freeze -> reset -> recovery) are printed (pytest -s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from havm.daemon.client import Client
from havm.lab import control, daemons, lab
from havm.lab import watchdog as lab_watchdog
from havm.lab.plan import LabSpec
from havm.lab.state import LabState, config_of, socket_of
from tests.daemon.waiting import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.slow]

if os.geteuid() != 0 or shutil.which("ip") is None:
    pytest.skip("needs root and iproute2 for network namespaces", allow_module_level=True)

NODES = ["n1", "n2", "n3"]
RSC = "dummy1"


class Observer(threading.Thread):
    """Samples, every 20 ms, on which nodes the dummy's state file exists."""

    def __init__(self, d: str) -> None:
        super().__init__(daemon=True)
        state = LabState.load(d)
        self.files = {n: Path(state.node(n).state_dir, "run", "dummy", f"{RSC}.state") for n in NODES}
        self.samples: list[tuple[float, tuple[str, ...]]] = []
        self.halt = threading.Event()

    def holders(self) -> tuple[str, ...]:
        return tuple(n for n, f in self.files.items() if f.exists())

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append((time.time(), self.holders()))
            self.halt.wait(0.02)

    def double(self) -> list[tuple[float, tuple[str, ...]]]:
        return [s for s in self.samples if len(s[1]) > 1]

    def first_on(self, nodes: list[str], after: float) -> float | None:
        return next((t for t, h in self.samples if t >= after and any(n in h for n in nodes)), None)


@pytest.fixture
def lab_dir():
    d = tempfile.mkdtemp(prefix="hlw")
    obs = None
    try:
        lab.up(d, LabSpec(nodes=3, links=1, keepalive=0.2, deadtime=1.0, initdead=3, dummies=1,
                          fencing="watchdog"), wait=True, timeout=90)
        obs = Observer(d)
        obs.start()
        yield d, obs
    finally:
        if obs is not None:
            obs.halt.set()
        lab.down(d)
        shutil.rmtree(d, ignore_errors=True)


def settings(d: str) -> tuple[dict, float]:
    doc = yaml.safe_load(Path(config_of(d)).read_text())
    assert doc["fencing"]["devices"] == []  # watchdog only: no device can fence anyone
    return doc["watchdog"], float(doc["properties"]["fencing_watchdog_timeout"])


def events(d: str, node: str, kind: str, after: float) -> list[dict]:
    return [r for r in lab_watchdog.history(d, node) if r["event"] == kind and r["at"] >= after]


def running_home(d: str, obs: Observer) -> str:
    """The node running the dummy, once it is armed there and nothing moves."""
    def stable() -> str | None:
        h = obs.holders()
        if len(h) != 1 or not events(d, h[0], "armed", 0):
            return None
        time.sleep(0.5)
        return h[0] if obs.holders() == h else None
    return wait_until(stable, 60, f"{RSC} running on one node, its watchdog armed")


def slow_stop(d: str, seconds: float) -> None:
    """Every action of the dummy takes ``seconds`` (its stop outlasts the watchdog)."""
    doc = yaml.safe_load(Path(config_of(d)).read_text())
    [rsc] = doc["resources"]
    rsc["params"] = {"op_sleep": seconds}
    rsc["ops"] = {"monitor": {"interval": "10s", "timeout": "30s"}, "start": {"timeout": "30s"},
                  "stop": {"timeout": "30s"}}
    Path(d, "slow.yaml").write_text(yaml.safe_dump(doc))
    subprocess.run([sys.executable, "-m", "havm.cli.main", "--lab", d, "config", "apply", str(Path(d, "slow.yaml"))],
                   check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("slow", [False, True], ids=["stops-in-time", "stop-too-slow"])
def test_a_partitioned_node_stops_or_is_reset_and_survivors_wait(lab_dir, slow):
    d, obs = lab_dir
    wd, fwt = settings(d)
    if slow:
        slow_stop(d, 2 * float(wd["timeout"]))
    home = running_home(d, obs)
    others = [n for n in NODES if n != home]
    st = Client(socket_path=socket_of(d, home), timeout=5).request("GET", "/v1/status")["watchdog"]
    assert st["enabled"] and st["armed"] and st["decision"] == "feed", st
    t0 = control.partition(d, [[home], others])["at"]
    recovered = wait_until(lambda: obs.first_on(others, t0), 60, f"{RSC} recovered on {others}")
    # the isolated node stopped it (and disarmed, staying up) or was reset by its watchdog
    wait_until(lambda: home not in obs.holders(), 5, f"{home} no longer runs {RSC}")
    stopped_at = next(t for t, h in obs.samples if t >= t0 and home not in h)
    disarmed = events(d, home, "disarmed", t0)
    reset = events(d, home, "reset", t0)
    assert (reset and not disarmed) if slow else (disarmed and not reset), lab_watchdog.history(d, home)
    assert daemons.daemon_alive(LabState.load(d).node(home)) is not slow  # disarmed: the node stays up
    assert not obs.double(), obs.double()[:5]
    # survivors lose the node (deadtime) and then wait fencing_watchdog_timeout
    assert recovered - t0 >= fwt, (recovered - t0, fwt)
    print(f"\nwatchdog fencing, partition{' (stop takes 2 x timeout)' if slow else ''}: timeout={wd['timeout']}s interval={wd['interval']}s deadtime=1s "
          f"fencing_watchdog_timeout={fwt}s | isolated node stopped {RSC} after {stopped_at - t0:.2f}s "
          f"({'disarmed, stayed up' if disarmed else 'reset by its watchdog'}) | recovered on a survivor "
          f"after {recovered - t0:.2f}s | samples {len(obs.samples)}, double-active 0")
    control.heal(d)


def test_a_frozen_daemon_is_reset_by_its_watchdog(lab_dir):
    d, obs = lab_dir
    wd, fwt = settings(d)
    home = running_home(d, obs)
    others = [n for n in NODES if n != home]
    t0 = control.freeze_node(d, home, daemon_only=True)["at"]
    [reset] = wait_until(lambda: events(d, home, "reset", t0), 30, f"{home}'s watchdog resets it")
    assert not daemons.daemon_alive(LabState.load(d).node(home))  # the frozen havmd went with the node
    recovered = wait_until(lambda: obs.first_on(others, t0), 60, f"{RSC} recovered on {others}")
    assert not obs.double(), obs.double()[:5]
    assert reset["at"] - t0 >= float(wd["timeout"]) - float(wd["interval"]) - 0.1  # not fed since the freeze
    assert recovered - t0 >= fwt
    print(f"\nwatchdog fencing, frozen havmd: timeout={wd['timeout']}s fencing_watchdog_timeout={fwt}s | "
          f"reset after {reset['at'] - t0:.2f}s ({reset.get('killed')} processes killed) | recovered on a "
          f"survivor after {recovered - t0:.2f}s | samples {len(obs.samples)}, double-active 0")


def havm(d: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "havm.cli.main", "--lab", d, *argv], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("which", ["n3", "controller"])
def test_havm_node_fence_without_a_device_is_done_by_the_watchdog(lab_dir, which):
    d, obs = lab_dir
    wd, fwt = settings(d)
    target = which
    if which == "controller":  # then the lowest-named other member runs the fence
        target = wait_until(lambda: Client(socket_path=socket_of(d, "n1"), timeout=5).request(
            "GET", "/v1/status")["controller"], 30, "a controller")
    others = [n for n in NODES if n != target]
    if running_home(d, obs) != target:
        moved = havm(d, "resource", "move", RSC, target)
        assert moved.returncode == 0, moved.stdout + moved.stderr
    wait_until(lambda: obs.holders() == (target,) and running_home(d, obs) == target, 60, f"{RSC} on {target}")
    t0 = time.time()
    done = havm(d, "node", "fence", target, "--yes", "--json")
    t1 = time.time()
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] and [(a["device"], a["ok"]) for a in out["attempts"]] == [("watchdog", True)], out
    # n3 stopped feeding when asked and its watchdog reset it (every process of the node killed)
    [reset] = events(d, target, "reset", t0)
    assert not events(d, target, "disarmed", t0)
    assert not daemons.daemon_alive(LabState.load(d).node(target))
    assert t0 < reset["at"] < t1
    # ok only once fencing_watchdog_timeout has passed since n3 acknowledged (after t0)
    assert t1 - t0 >= fwt, (t1 - t0, fwt)
    recovered = wait_until(lambda: obs.first_on(others, t0), 60, f"{RSC} recovered on {others}")
    stopped = next(t for t, h in obs.samples if t >= t0 and target not in h)
    assert recovered - t0 >= fwt  # not before n3's fence counts as done
    assert not obs.double(), obs.double()[:5]
    # the attempt is in the fencing history of havm status, and its fence event in the history
    st = json.loads(havm(d, "status", "--json").stdout)
    mine = [a for a in st["fencing"]["history"] if a["node"] == target and a["started"] >= t0 - 1]
    assert [(a["device"], a["ok"]) for a in mine] == [("watchdog", True)], st["fencing"]
    assert target not in [f["node"] for f in st["fencing"]["failing"]]
    # powered on again (havm lab start), a new havmd feeds its watchdog again
    control.start_node(d, target)

    def feeding() -> bool:
        w = Client(socket_path=socket_of(d, target), timeout=5).request("GET", "/v1/status")["watchdog"]
        return bool(w["armed"] and w["decision"] == "feed")
    wait_until(feeding, 60, f"{target} feeding its watchdog again after a restart")
    print(f"\nwatchdog fencing by hand (havm node fence {target}, {which}): timeout={wd['timeout']}s "
          f"interval={wd['interval']}s fencing_watchdog_timeout={fwt}s | {RSC} stopped on {target} after "
          f"{stopped - t0:.2f}s | reset by its watchdog after {reset['at'] - t0:.2f}s | command returned ok "
          f"after {t1 - t0:.2f}s | {RSC} running on a survivor after {recovered - t0:.2f}s | samples "
          f"{len(obs.samples)}, double-active 0")
