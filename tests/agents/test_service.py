"""The service agent: LSB init scripts written into a temp dir (a real daemon,
pid file, exit-code mapping), the no-systemd path of this machine, systemctl's
state mapping through a stand-in systemctl, and lsb: through the executor."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from havm.agents.base import OCF
from havm.agents.service import ServiceAgent
from havm.clock import SystemClock
from havm.executor.executor import Executor
from havm.executor.records import ActionRequest

DAEMON_SCRIPT = """\
#!/bin/sh
# A well-behaved LSB init script for a sleeping daemon.
PIDFILE={run}/svc.pid
running() {  # alive and not a zombie waiting for its reaper
  [ -f "$PIDFILE" ] && [ -r "/proc/$(cat "$PIDFILE")/stat" ] &&
    ! grep -q ') Z ' "/proc/$(cat "$PIDFILE")/stat"
}
case "$1" in
  start) running && exit 0
         sleep 300 </dev/null >/dev/null 2>&1 &
         echo $! > "$PIDFILE"; echo "started $!"; exit 0 ;;
  stop)  if running; then kill "$(cat "$PIDFILE")"; fi
         n=0  # as start-stop-daemon --retry: return once it is gone (bounded)
         while running && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
         running && exit 1
         rm -f "$PIDFILE"; exit 0 ;;
  status) running && { echo running; exit 0; }
          [ -f "$PIDFILE" ] && { echo "dead but pid file exists"; exit 1; }
          echo stopped; exit 3 ;;
  *) exit 2 ;;
esac
"""


def write_script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def lsb(tmp_path) -> Iterator[tuple[dict, Path]]:
    init, run = tmp_path / "init.d", tmp_path / "run"
    init.mkdir()
    run.mkdir()
    write_script(init, "svc", DAEMON_SCRIPT.replace("{run}", str(run)))
    yield {"unit": "lsb:svc", "init_dir": str(init), "settle_timeout": 2}, run / "svc.pid"
    pidfile = run / "svc.pid"
    if pidfile.exists():  # a failed test leaves the daemon: remove it by pid
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_lsb_lifecycle(lsb):
    params, pidfile = lsb
    agent = ServiceAgent("svc", params)
    assert agent.validate().ok
    assert agent.monitor().rc == OCF.NOT_RUNNING
    started = agent.start()
    assert started.ok, started.output
    pid = int(pidfile.read_text())
    assert alive(pid) and "status 0 (running)" in started.output
    again = agent.start()
    assert again.ok and "already running" in again.output and int(pidfile.read_text()) == pid
    assert agent.monitor().rc == OCF.SUCCESS
    for _ in range(2):
        assert agent.stop().ok
    assert not alive(pid) and not pidfile.exists()
    assert agent.monitor().rc == OCF.NOT_RUNNING


def test_lsb_crash_is_a_monitor_failure_and_stop_cleans_up(lsb):
    params, pidfile = lsb
    agent = ServiceAgent("svc", params)
    assert agent.start().ok
    os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the daemon dies behind our back
    mon = agent.monitor()
    assert mon.rc == OCF.ERR_GENERIC and "status 1 (dead, pid file exists)" in mon.output
    assert agent.stop().ok and not pidfile.exists()


def test_lsb_exit_codes_map_to_ocf(tmp_path):
    for code, expected in ((5, OCF.ERR_INSTALLED), (6, OCF.ERR_CONFIGURED), (4, OCF.ERR_PERM),
                           (1, OCF.ERR_GENERIC), (7, OCF.ERR_GENERIC)):
        write_script(tmp_path, f"bad{code}", f"""\
            #!/bin/sh
            [ "$1" = status ] && exit 3
            echo "cannot start: reason {code}" >&2
            exit {code}
            """)
        r = ServiceAgent("b", {"unit": f"lsb:bad{code}", "init_dir": str(tmp_path)}).start()
        assert r.rc == expected and f"reason {code}" in r.output and f"exited {code}" in r.output


def test_lsb_start_that_lies_is_caught_by_status(tmp_path):
    write_script(tmp_path, "liar", """\
        #!/bin/sh
        [ "$1" = status ] && exit 3
        exit 0
        """)
    r = ServiceAgent("l", {"unit": "lsb:liar", "init_dir": str(tmp_path), "settle_timeout": 0.3}).start()
    assert r.rc == OCF.ERR_GENERIC and "returned 0 but the service is not running" in r.output


def test_lsb_stop_that_leaves_it_running_fails(tmp_path):
    write_script(tmp_path, "sticky", """\
        #!/bin/sh
        [ "$1" = status ] && { echo running; exit 0; }
        exit 0
        """)
    r = ServiceAgent("s", {"unit": "lsb:sticky", "init_dir": str(tmp_path), "settle_timeout": 0.3}).stop()
    assert r.rc == OCF.ERR_GENERIC and "still running" in r.output


def test_missing_or_unexecutable_script(tmp_path):
    agent = ServiceAgent("m", {"unit": "lsb:nope", "init_dir": str(tmp_path)})
    v = agent.validate()
    assert v.rc == OCF.ERR_INSTALLED and f"{tmp_path}/nope does not exist" in v.output
    assert agent.start().rc == OCF.ERR_INSTALLED
    assert agent.monitor().rc == OCF.NOT_RUNNING and agent.stop().ok
    (tmp_path / "noexec").write_text("#!/bin/sh\nexit 0\n")
    v = ServiceAgent("m", {"unit": "lsb:noexec", "init_dir": str(tmp_path)}).validate()
    assert v.rc == OCF.ERR_INSTALLED and "not executable" in v.output


@pytest.mark.parametrize("unit", ["", "lsb:", "lsb:../etc/passwd", "systemd:a/b"])
def test_bad_unit_is_err_configured(unit):
    r = ServiceAgent("x", {"unit": unit}).validate()
    assert r.rc == OCF.ERR_CONFIGURED and "'unit'" in r.output


def test_bad_settle_timeout(tmp_path):
    r = ServiceAgent("x", {"unit": "lsb:x", "settle_timeout": "soon"}).monitor()
    assert r.rc == OCF.ERR_CONFIGURED and "'settle_timeout'" in r.output


class NoSystemd(ServiceAgent):
    SYSTEMD_RUN_DIR = "/nonexistent/havm-test/systemd/system"


def test_systemd_unit_without_systemd():
    agent = NoSystemd("web", {"unit": "systemd:nginx.service"})
    for r in (agent.validate(), agent.start()):
        assert r.rc == OCF.ERR_INSTALLED
        assert "systemd is not running on this node" in r.output and "systemd:nginx.service" in r.output
    assert agent.monitor().rc == OCF.NOT_RUNNING  # a probe: nothing of it can run here
    assert agent.stop().ok


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs on this machine")
def test_this_machine_has_no_systemd_and_the_agent_says_so():
    r = ServiceAgent("web", {"unit": "systemd:cron.service"}).start()
    assert r.rc == OCF.ERR_INSTALLED and "/run/systemd/system missing" in r.output
    bare = ServiceAgent("web", {"unit": "cron"})  # a bare name falls back to LSB without systemd
    assert bare.style == "lsb" and bare.name == "cron"


@pytest.fixture
def fake_systemd(tmp_path):
    """A stand-in systemctl keeping unit states in files (checks the agent's use of systemctl)."""
    rundir = tmp_path / "systemd" / "system"
    rundir.mkdir(parents=True)
    states = tmp_path / "units"
    states.mkdir()
    ctl = write_script(tmp_path, "systemctl", f"""\
        #!/bin/sh
        echo "$*" >> {tmp_path}/calls
        S={states}
        case "$1" in
          start) [ -f $S/$2.broken ] && {{ echo failed > $S/$2; exit 1; }}; echo active > $S/$2 ;;
          stop) [ -f $S/$2.stuck ] || echo inactive > $S/$2 ;;
          reset-failed) [ "$(cat $S/$2 2>/dev/null)" = failed ] && echo inactive > $S/$2 ;;
          is-active) s=$(cat $S/$2 2>/dev/null || echo inactive); echo $s; [ $s = active ] ;;
          show) eval unit=\\${{$#}}; [ -f $S/$unit.missing ] && echo not-found || echo loaded ;;
        esac
        exit 0
        """)

    class FakeSystemd(ServiceAgent):
        SYSTEMD_RUN_DIR = str(rundir)
        SYSTEMCTL = str(ctl)

    return FakeSystemd, states, tmp_path / "calls"


def test_systemd_state_mapping(fake_systemd):
    cls, states, calls = fake_systemd
    agent = cls("web", {"unit": "systemd:web.service", "settle_timeout": 0.3})
    assert agent.monitor().rc == OCF.NOT_RUNNING
    assert agent.start().ok and (states / "web.service").read_text().strip() == "active"
    assert agent.start().ok  # idempotent: no second systemctl start
    assert calls.read_text().count("start web.service") == 1
    assert agent.monitor().ok
    for state, rc in (("failed", OCF.ERR_GENERIC), ("activating", OCF.ERR_GENERIC),
                      ("reloading", OCF.SUCCESS), ("inactive", OCF.NOT_RUNNING)):
        (states / "web.service").write_text(state + "\n")
        assert agent.monitor().rc == rc, state
    (states / "web.service").write_text("failed\n")
    assert agent.stop().ok and "reset-failed web.service" in calls.read_text()
    (states / "web.service").write_text("active\n")
    (states / "web.service.stuck").touch()
    stuck = agent.stop()
    assert stuck.rc == OCF.ERR_GENERIC and "still running" in stuck.output
    (states / "db.service.broken").touch()
    assert cls("db", {"unit": "systemd:db.service", "settle_timeout": 0.3}).start().rc == OCF.ERR_GENERIC
    (states / "gone.service.missing").touch()
    v = cls("gone", {"unit": "systemd:gone.service"}).validate()
    assert v.rc == OCF.ERR_INSTALLED and "LoadState=not-found" in v.output


def test_meta_data_lists_params():
    names = {p.get("name") for p in ET.fromstring(ServiceAgent("s", {}).meta_data()).iter("parameter")}
    assert {"unit", "init_dir", "settle_timeout"} <= names


def test_lsb_resource_through_the_executor(lsb):
    params, pidfile = lsb
    extra = {k: v for k, v in params.items() if k != "unit"}

    async def go():
        ex = Executor("n1", SystemClock())
        try:
            start = await ex.execute(ActionRequest("svc", "lsb:svc", "start", params=extra))
            assert start.ok, start.output
            assert (await ex.execute(ActionRequest("svc", "lsb:svc", "monitor", params=extra))).ok
            assert ex.state("svc").role == "started"
            assert (await ex.execute(ActionRequest("svc", "lsb:svc", "stop", params=extra))).ok
            mon = await ex.execute(ActionRequest("svc", "lsb:svc", "monitor", params=extra))
            assert mon.rc == OCF.NOT_RUNNING and ex.state("svc").role == "stopped"
        finally:
            await ex.close()

    asyncio.run(go())
    assert not pidfile.exists()
