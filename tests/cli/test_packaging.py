"""packaging/: the systemd unit starts havmd as the code expects (notify, default config path,
real-time limit) and is a unit systemd accepts."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from havm.cli.main import build_parser
from havm.daemon.main import parse_args

PACKAGING = Path(__file__).parents[2] / "packaging"
UNIT = PACKAGING / "systemd" / "havmd.service"


def unit() -> configparser.ConfigParser:
    p = configparser.ConfigParser(strict=False, interpolation=None)
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read_string(UNIT.read_text())
    return p


def test_unit_matches_the_daemon() -> None:
    svc = unit()["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main"  # havmd sends READY=1 itself
    assert svc["Restart"] == "on-failure"
    assert int(svc["LimitRTPRIO"]) >= 10  # daemon.realtime_priority's default, SCHED_RR
    exec_start = svc["ExecStart"].split()
    assert exec_start[:3] == ["/usr/bin/havmd", "--config", "/etc/havm/cluster.yaml"]
    # the same default path for the daemon and every havm command
    assert parse_args([]).config == "/etc/havm/cluster.yaml"
    default = os.environ.get("HAVM_CONFIG", "/etc/havm/cluster.yaml")
    assert build_parser("status").parse_args(["status"]).config == default
    assert unit()["Unit"]["ConditionPathExists"] == "/etc/havm/cluster.yaml"
    # havmd stops its VMs itself before leaving: systemd must not kill them behind its back
    assert svc["KillMode"] == "process" and svc["SendSIGKILL"] == "no"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    havmd = Path(sys.executable).parent / "havmd"
    if not havmd.exists():
        pytest.skip("havmd is not installed in this environment's bin")
    local = tmp_path / "havmd.service"
    local.write_text(UNIT.read_text().replace("/usr/bin/havmd", str(havmd)))
    done = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "havmd.service" not in done.stderr, done.stderr  # no warning about our unit


def test_default_file_is_valid_shell_and_empty_by_default() -> None:
    done = subprocess.run(["bash", "-c", f"set -eu; . '{PACKAGING / 'default' / 'havmd'}'; echo \"[$HAVMD_OPTS]\""],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
