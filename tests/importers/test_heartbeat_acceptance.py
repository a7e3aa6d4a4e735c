"""Acceptance of 'havm import heartbeat' on classic /etc/ha.d setups (data/heartbeat/*):
for each, exactly what an operator runs, through the real command line:

    havm import heartbeat DIR/ha.d -o out.yaml      (exit 0, key file 0600 beside it)
    havm config validate out.yaml                    (exit 0, key checked too)
    havm simulate out.yaml                           (exit 0: the groups start on their preferred node)

plus a failure of the preferred node in the simulator (the group moves), and what each
setup's particular lines became (links, timings, auto_failback, ping nodes, key)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from havm.cli.main import main
from havm.config.load import load_config
from havm.config.resources import walk_primitives

DATA = Path(__file__).parent / "data" / "heartbeat"


def havm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAVM_")}
    return subprocess.run([sys.executable, "-m", "havm.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@dataclass(frozen=True)
class Setup:
    name: str
    preferred: dict[str, str]  # group -> its preferred node (haresources' first word)
    after_fail: dict[str, str]  # group -> node once the preferred node failed
    links: list[tuple[str, str]]  # (name, mode)
    auto_failback: bool
    ping: list[str]
    secret: str | None  # the md5/sha1 secret; None: --new-key (crc)
    import_args: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)  # resource id -> type
    report: list[str] = field(default_factory=list)  # must appear in the import report


SETUPS = [
    Setup("web-two-node", {"group-1": "www1.example.com"}, {"group-1": "www2.example.com"},
          [("eth0", "broadcast"), ("eth1", "broadcast")], True, ["192.168.1.1"],
          "Secret-of-the-web-cluster-2007",
          types={"ip-192.168.1.100": "ocf:heartbeat:IPaddr2", "fs-var-www": "ocf:heartbeat:Filesystem",
                 "apache-apache2.conf": "ocf:heartbeat:apache"},
          report=["dropped: logfacility local0", "ipfail", "sha1 key: carried over as an HMAC-SHA256 key",
                  "configures no STONITH"]),
    Setup("xen-domains", {"group-1": "xen-a", "group-2": "xen-b"}, {"group-1": "xen-b", "group-2": "xen-b"},
          [("eth0", "multicast"), ("eth1", "unicast")], False, ["192.168.0.1", "192.168.0.2"],
          "XenClusterSecretPhrase", types={"web": "vm", "db": "vm", "mail": "vm"},
          report=["Xen domain web becomes a havm vm", "assigned in node order: xen-a=10.10.0.1",
                  "md5 key: carried over"]),
    Setup("nfs-drbd-crc", {"group-1": "nfs1"}, {"group-1": "nfs2"}, [("eth0", "multicast")], True, [],
          None, import_args=["--new-key"],
          types={"drbd-r0": "ocf:linbit:drbd", "fs-export": "ocf:heartbeat:Filesystem",
                 "nfs-kernel-server": "lsb:nfs-kernel-server", "ip-10.0.0.50": "ocf:heartbeat:IPaddr2"},
          report=["auto_failback legacy: read as 'on'", "no ping node: a node left alone",
                  "drbddisk becomes 'drbd-r0-clone'"]),
    Setup("xendomains-all", {"group-1": "dom0-1"}, {"group-1": "dom0-2"}, [("eth0", "broadcast")], False, [],
          "an-older-but-long-enough-secret",
          types={"ip-172.16.0.10": "ocf:heartbeat:IPaddr2", "xendomains": "lsb:xendomains"},
          report=["dropped: serial /dev/ttyS0", "xendomains without an argument starts every domain"]),
    Setup("mail-ucast-hosts", {"group-1": "mx1"}, {"group-1": "mx2"}, [("eth0", "unicast")], True,
          ["10.20.0.1"], "mail-relay-cluster-secret",
          import_args=["--hosts", str(DATA / "mail-ucast-hosts" / "hosts")],
          types={"ip-10.20.0.25": "ocf:heartbeat:IPaddr2", "portblock-tcp": "ocf:heartbeat:portblock",
                 "postfix": "lsb:postfix", "mailto-postmaster-example.com": "ocf:heartbeat:MailTo"},
          report=["netmask 255.255.255.0 written as prefix length 24"]),
]


def placement(capsys: pytest.CaptureFixture[str], config: Path, *events: str) -> dict[str, Any]:
    """``havm simulate CONFIG --json EVENTS...``, in this process (the same entry point)."""
    code = main(["simulate", str(config), "--json", *events])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)["placement"]  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.parametrize("setup", SETUPS, ids=[s.name for s in SETUPS])
def test_import_validate_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: Setup) -> None:
    out = tmp_path / "cluster.yaml"
    done = havm("import", "heartbeat", str(DATA / setup.name / "ha.d"), "-o", str(out), *setup.import_args)
    assert done.returncode == 0, done.stderr
    for text in setup.report:
        assert text in done.stderr, text
    key = tmp_path / "authkey"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    if setup.secret is not None:
        assert key.read_text() == hashlib.sha256(setup.secret.encode()).hexdigest() + "\n"

    done = havm("config", "validate", str(out))
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout

    done = havm("simulate", str(out))
    assert done.returncode == 0, done.stderr
    for group, node in setup.preferred.items():
        assert f"  {group}: {node}\n" in done.stdout.split("Placement:")[1]

    c = load_config(str(out)).config
    assert [(lk.name, lk.mode) for lk in c.links] == setup.links
    assert c.properties.auto_failback is setup.auto_failback
    assert c.quorum.two_node is (len(c.nodes) == 2)
    assert (c.quorum.tiebreaker.type, c.quorum.tiebreaker.targets) == (
        ("ping", setup.ping) if setup.ping else ("none", []))
    types = {p.id: p.type for p, _, _ in walk_primitives(c.resources)}
    assert {rid: types.get(rid) for rid in setup.types} == setup.types

    failed = next(iter(setup.preferred.values()))
    moved = placement(capsys, out, "--node-fail", failed)
    assert {g: moved[g] for g in setup.after_fail} == setup.after_fail


def test_crc_key_is_refused_without_new_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cluster.yaml"
    assert main(["import", "heartbeat", str(DATA / "nfs-drbd-crc" / "ha.d"), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert "authkeys:2:" in err and "crc, a checksum" in err and "--new-key" in err
    assert not out.exists() and not (tmp_path / "authkey").exists()


def test_xen_domains_read_their_xen_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cluster.yaml"
    assert main(["import", "heartbeat", str(DATA / "xen-domains" / "ha.d"), "-o", str(out)]) == 0
    c = load_config(str(out)).config
    configs = {p.id: p.params["xen_config"] for p, _, _ in walk_primitives(c.resources)}
    xen = (DATA / "xen-domains" / "xen").resolve()
    assert configs == {"web": str(xen / "web"), "db": str(xen / "db"), "mail": str(xen / "mail.cfg")}
