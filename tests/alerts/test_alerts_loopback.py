"""Alerts run by real havmd processes: a node lost triggers the script on the survivors and a
webhook on a loopback server, configured through cluster.yaml like an operator would."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.cluster_proc import loopback_cluster
from tests.daemon.waiting import wait_until

pytestmark = [pytest.mark.slow]


class Receiver(BaseHTTPRequestHandler):
    got: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        n = int(self.headers.get("Content-Length", "0"))
        Receiver.got.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_node_loss_runs_script_and_webhook_on_survivors(tmp_path: Path) -> None:
    out = tmp_path / "alerts"
    out.mkdir()
    script = tmp_path / "alert.sh"
    script.write_text('#!/bin/sh\necho "$CRM_alert_kind $CRM_alert_node $CRM_alert_desc $HAVM_ALERT_NODE" '
                      f'>> {out}/$HAVM_ALERT_NODE.log\n')
    script.chmod(0o755)
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.got = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    extra = f"""\
alerts:
  - id: script
    kind: script
    path: {script}
    kinds: [node.leave]
  - id: hook
    kind: webhook
    url: http://127.0.0.1:{server.server_address[1]}/havm
    kinds: [node.leave]
    nodes: [n3]
"""
    try:
        with loopback_cluster(tmp_path / "c", extra=extra) as c:
            c.start_all()
            c.wait(lambda: c.converged(), timeout=30, what="3 members")
            c.kill("n3")
            # The shell creates the file before echo writes to it: wait for the line, not the file.
            wait_until(lambda: {p.name for p in out.iterdir() if p.read_text().endswith("\n")} == {"n1.log", "n2.log"},
                       30, "the script ran on both survivors")
            wait_until(lambda: len(Receiver.got) >= 2, 30, "the webhook got both survivors' events")
            for n in ("n1", "n2"):
                assert (out / f"{n}.log").read_text().splitlines() == [f"node n3 lost {n}"]
            assert sorted(d["event"]["node"] for d in Receiver.got) == ["n1", "n2"]
            assert {d["event"]["fields"]["target"] for d in Receiver.got} == {"n3"}
            assert all(d["alert"] == "hook" and d["cluster"] == c.config_text.split()[1] for d in Receiver.got)
            # The script's output file exists before the script has exited; the daemon logs the
            # delivery only after the exit, so the log line may trail the file by a moment.
            log_path = c.root / "n1" / "havmd.log"
            wait_until(lambda: re.search(r"alert script for node\.leave#\d+ delivered: exit 0",
                                         log_path.read_text()) is not None,
                       30, "n1 logged the script's delivery")
    finally:
        server.shutdown()
        server.server_close()
