"""``havm lab ...`` on the command line: JSON output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from havm.cli.main import main
from havm.lab import daemons
from havm.lab.state import LabState
from tests.lab.conftest import lab_netns, needs_netns


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, (json.loads(out) if "--json" in argv and out.strip() else out)


def test_no_lab_is_exit_9_with_a_json_error(capsys, lab_dir):
    code, out = run_cli(capsys, "lab", "status", "--dir", os.path.join(lab_dir, "none"), "--json")
    assert code == 9 and out["error"]["code"] == "lab" and "havm lab up" in out["error"]["message"]


def test_impossible_timing_is_exit_2(capsys, lab_dir):
    code, out = run_cli(capsys, "lab", "up", "--nodes", "2", "--dir", lab_dir, "--keepalive", "1",
                        "--deadtime", "1.5", "--no-netns", "--json")
    assert code == 2 and "deadtime" in out["error"]["message"]
    assert not os.path.exists(os.path.join(lab_dir, "lab.json"))  # refused before anything was made


@pytest.mark.lab
@needs_netns
def test_cli_round_trip_with_json_and_exit_codes(capsys, lab_dir):
    code, up = run_cli(capsys, "lab", "up", "--nodes", "2", "--links", "2", "--dir", lab_dir,
                       "--keepalive", "200ms", "--deadtime", "1", "--no-wait", "--json")
    assert code == 0 and up["mode"] == "netns" and list(up["nodes"]) == ["n1", "n2"]
    assert up["nodes"]["n2"]["addresses"] == {"ring0": "10.213.0.2", "ring1": "10.213.1.2"}
    code, st = run_cli(capsys, "--lab", lab_dir, "lab", "status", "--json", "--no-probe")
    assert code == 0 and st["nodes"]["n1"]["state"] == "running" and st["nodes"]["n1"]["answers"] is None

    assert run_cli(capsys, "lab", "kill", "n9", "--dir", lab_dir, "--json")[0] == 7
    assert run_cli(capsys, "lab", "partition", "n1,n7", "--dir", lab_dir, "--json")[0] == 2
    assert run_cli(capsys, "lab", "loss", "n1", "150", "--dir", lab_dir, "--json")[0] == 2
    code, part = run_cli(capsys, "lab", "partition", "n1", "--dir", lab_dir, "--json")
    assert code == 0 and part["partition"] == [["n1"], ["n2"]]
    code, ld = run_cli(capsys, "lab", "link-down", "n2", "ring1", "--dir", lab_dir, "--json")
    assert code == 0 and ld["links_down"] == ["ring1"]
    code, st = run_cli(capsys, "lab", "status", "--dir", lab_dir, "--json", "--no-probe")
    assert st["faults"]["partition"] == [["n1"], ["n2"]] and st["faults"]["links_down"] == {"n2": ["ring1"]}
    code, healed = run_cli(capsys, "lab", "heal", "--dir", lab_dir, "--json")
    assert code == 0 and healed["healed"] and healed["at"] > part["at"]

    # exec runs in the namespace and passes the exit status through
    havm = [sys.executable, "-m", "havm.cli.main", "lab", "exec", "--dir", lab_dir]
    out = subprocess.run(havm + ["n2", "--", "ip", "-br", "-4", "addr", "show", "ring1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "10.213.1.2/24" in out.stdout
    assert subprocess.run(havm + ["n1", "--", "sh", "-c", "exit 3"], timeout=30).returncode == 3

    code, killed = run_cli(capsys, "lab", "kill-daemon", "n1", "--dir", lab_dir, "--json")
    assert code == 0 and killed["killed"] == [up["nodes"]["n1"]["pid"]]
    assert not daemons.daemon_alive(LabState.load(lab_dir).nodes["n1"])
    code, down = run_cli(capsys, "lab", "down", "--dir", lab_dir, "--json")
    assert code == 0 and len(down["namespaces_deleted"]) == 3 and not lab_netns(lab_dir)
    assert run_cli(capsys, "lab", "down", "--dir", lab_dir, "--json")[1]["namespaces_deleted"] == []
    assert run_cli(capsys, "lab", "kill", "n1", "--dir", lab_dir, "--json")[0] == 9  # lab is down
