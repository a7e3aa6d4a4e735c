"""havmd refuses to start when its configured watchdog is not there (a node that
cannot fence itself must not run resources), naming the watchdog; `havm config
validate` warns about no_quorum_policy ignore with file and line."""

from __future__ import annotations

import json
import subprocess
import sys

from havm.config.load import write_key

CONFIG = """\
cluster: t
nodes:
  - {name: n1, addresses: {ring0: 127.0.0.1}}
links: [{name: ring0, port: 20999}]
auth: {key_file: authkey}
%s
"""


def test_havmd_does_not_start_without_its_watchdog(tmp_path):
    sock = tmp_path / "nowhere" / "{node}.sock"
    (tmp_path / "cluster.yaml").write_text(CONFIG % f'watchdog: {{backend: lab, device: "{sock}", timeout: 5}}')
    write_key(str(tmp_path / "authkey"))
    r = subprocess.run([sys.executable, "-m", "havm.daemon.main", "--config", str(tmp_path / "cluster.yaml"),
                        "--node", "n1", "--state-dir", str(tmp_path / "state"), "--socket", str(tmp_path / "s"),
                        "--log-target", "stderr"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "cannot start" in r.stderr and f"lab watchdog {tmp_path}/nowhere/n1.sock" in r.stderr, r.stderr


def test_config_validate_warns_that_ignore_is_dangerous(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(CONFIG % "properties: {no_quorum_policy: ignore}")
    r = subprocess.run([sys.executable, "-m", "havm.cli.main", "config", "validate", "--no-key-check", "--json",
                        str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    [w] = json.loads(r.stdout)["warnings"]
    assert w["line"] == 6 and w["field"] == "properties.no_quorum_policy" and "dangerous" in w["message"]
