"""havm import heartbeat: classic /etc/ha.d directories, bad inputs, the CLI, and simulate on the result."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from havm.cli.main import main
from havm.config.load import load_config, parse_config_text
from havm.importers.heartbeat import import_heartbeat
from havm.importers.report import ImportFailed

DATA = Path(__file__).parent / "data"


def imported(name: str, **kw: object):
    result = import_heartbeat(str(DATA / name / "ha.d"), **kw)  # type: ignore[arg-type]
    return result, parse_config_text(result.text, "out.yaml").config


def report_text(result, level: str) -> str:
    return "\n".join(str(i) for i in result.report.of_level(level))  # type: ignore[arg-type]


def test_two_node_ip_filesystem_web_server() -> None:
    result, c = imported("hb-web")
    assert [n.name for n in c.nodes] == ["alice", "bob"]
    assert [(lk.name, lk.mode, lk.port) for lk in c.links] == [("eth0", "broadcast", 694)]
    assert (c.timing.keepalive, c.timing.warntime, c.timing.deadtime, c.timing.initdead) == (2, 10, 30, 120)
    assert c.quorum.two_node and c.quorum.tiebreaker.type == "ping"
    assert c.quorum.tiebreaker.targets == ["10.0.0.254"]
    assert c.properties.auto_failback is True  # back to the preferred node
    (group,) = c.resources
    assert [(m.id, m.type) for m in group.resources] == [
        ("ip-10.0.0.100", "ocf:heartbeat:IPaddr2"), ("fs-srv-www", "ocf:heartbeat:Filesystem"),
        ("httpd", "lsb:httpd")]
    assert group.resources[0].params == {"ip": "10.0.0.100", "cidr_netmask": "24", "nic": "eth0"}
    assert group.resources[1].params == {"device": "/dev/sdb1", "directory": "/srv/www", "fstype": "ext3"}
    (loc,) = c.constraints
    assert (loc.location, loc.node, loc.score) == (group.group, "alice", 100)
    dropped = report_text(result, "dropped")
    assert "ha.cf:9: dropped: serial /dev/ttyS0" in dropped and "logfacility" in dropped and "baud" in dropped
    assert "ipfail" in report_text(result, "info")  # replaced by the ping tiebreaker
    assert len(result.placeholders) == 2 and "PLACEHOLDER" in result.text
    assert result.key == hashlib.sha256(b"ThisIsTheWebClusterSecret").hexdigest() + "\n"
    assert "every node must get the new key" in report_text(result, "warning")


def test_xen_domains_mcast_and_ucast() -> None:
    result, c = imported("hb-xen")
    eth0, eth1 = c.links
    assert (eth0.mode, eth0.group, eth0.port, eth0.ttl) == ("multicast", "239.0.0.43", 694, 1)
    assert eth1.mode == "unicast"
    # ucast lines give the addresses; which node has which is a guess, and said so
    assert [n.addresses["eth1"] for n in c.nodes] == ["192.168.10.1", "192.168.10.2"]
    assert "assigned in node order" in report_text(result, "warning")
    assert (c.timing.keepalive, c.timing.deadtime, c.timing.warntime) == (0.5, 5, 2.5)
    assert c.properties.auto_failback is False  # stay where it runs
    g1, g2 = c.resources
    assert [(m.id, m.type) for m in g1.resources] == [("vm1", "vm"), ("vm2", "vm")]
    assert g1.resources[0].params["xen_config"] == str((DATA / "hb-xen" / "xen" / "vm1.cfg").resolve())
    assert g1.resources[1].params["xen_config"] == str((DATA / "hb-xen" / "xen" / "vm2").resolve())
    assert g2.resources[0].params == {"xen_config": "/etc/xen/vm3"}
    assert "Xen domain vm3: no config found" in report_text(result, "warning")
    assert "only 3 characters" in report_text(result, "warning")  # md5 key "xen"
    assert result.key == hashlib.sha256(b"xen").hexdigest() + "\n"


def test_ucast_with_hosts_drbd_and_scripts() -> None:
    hosts = {"web1": "10.1.0.11", "web2": "10.1.0.12"}
    result, c = imported("hb-ucast", hosts=hosts)
    assert [n.addresses["eth0"] for n in c.nodes] == ["10.1.0.11", "10.1.0.12", "10.1.0.13"]
    assert "web3=10.1.0.13" in report_text(result, "warning")  # the one left is guessed, and said so
    assert not c.quorum.two_node and c.quorum.tiebreaker.targets == ["10.1.0.1", "10.1.0.2"]
    ids = {getattr(r, "group", None) or getattr(r, "clone", None) for r in c.resources}
    assert ids == {"drbd-r0-clone", "group-1", "group-2", "drbd-r1-clone"}
    r0 = next(r for r in c.resources if getattr(r, "clone", "") == "drbd-r0-clone")
    assert r0.promotable and r0.resource.type == "ocf:linbit:drbd" and r0.resource.params == {"drbd_resource": "r0"}
    cons = [x.model_dump(by_alias=True, exclude_none=True) for x in c.constraints]
    assert {"colocation": "group-1", "with": "drbd-r0-clone", "score": 1_000_000, "with_role": "promoted"} in cons
    assert {"order": "drbd-r0-clone", "then": "group-1", "kind": "mandatory", "first_action": "promote",
            "then_action": "start"} in cons
    assert {"location": "drbd-r1-clone", "node": "web3", "score": 100, "role": "promoted"} in cons
    g2 = next(r for r in c.resources if getattr(r, "group", "") == "group-2")
    assert [(m.id, m.type) for m in g2.resources] == [
        ("ip-10.1.0.51", "ocf:heartbeat:IPaddr2"), ("mailto-root-example.com", "ocf:heartbeat:MailTo"),
        ("lvm-vg0", "ocf:heartbeat:LVM"), ("custom", "lsb:custom")]
    assert g2.resources[0].params["cidr_netmask"] == "24"  # 255.255.255.0
    assert "arguments a::b cannot be passed" in report_text(result, "warning")
    assert "stonith_host * baytech ...: a Heartbeat STONITH plugin" in report_text(result, "dropped")
    assert "mysecretpassword" not in "\n".join(str(i) for i in result.report.items)  # never echoed
    assert result.key is None and "authkeys: not found" in report_text(result, "warning")


def test_addresses_from_the_command_line() -> None:
    result, c = imported("hb-xen", addresses={"xen1": ["10.0.0.1", "10.1.0.1"], "xen2": ["10.0.0.2"]})
    assert c.node("xen1").addresses == {"eth0": "10.0.0.1", "eth1": "10.1.0.1"}
    assert c.node("xen2").addresses == {"eth0": "10.0.0.2", "eth1": "192.168.10.2"}
    assert not result.placeholders


# --- bad inputs: file, line, what was expected ------------------------------------

GOOD_HACF = "node a b\nbcast eth0\n"


def _dir(tmp_path: Path, hacf: str = GOOD_HACF, haresources: str | None = None,
         authkeys: str | None = None) -> Path:
    d = tmp_path / "ha.d"
    d.mkdir()
    (d / "ha.cf").write_text(hacf)
    if haresources is not None:
        (d / "haresources").write_text(haresources)
    if authkeys is not None:
        (d / "authkeys").write_text(authkeys)
        os.chmod(d / "authkeys", 0o600)
    return d


@pytest.mark.parametrize("hacf,line,message", [
    ("node a b\nbcast eth0\nkeepalive fast\n", 3, "keepalive 'fast': expected a time"),
    ("node a b\nmcast eth0 239.0.0.1 694 1\n", 2, "expected 'mcast IFACE GROUP PORT TTL LOOP' (5 values), got 4"),
    ("node a b\nmcast eth0 10.0.0.1 694 1 0\n", 2, "not a multicast address"),
    ("node a b\nucast eth0\n", 2, "expected 'ucast IFACE PEER-ADDRESS'"),
    ("node a b\nucast eth0 peer-b\n", 2, "'peer-b' is not an IPv4 address"),
    ("node a b\nbcast eth0\nauto_failback maybe\n", 3, "expected on, off or legacy"),
    ("node a b\nbcast eth0\nudpport 99999\n", 3, "expected an integer from 1 to 65535"),
    ("node a\nnode a\nbcast eth0\n", 2, "node 'a' is listed twice"),
    ("bcast eth0\n", None, "no 'node NAME' line"),
    ("node a b\nserial /dev/ttyS0\n", None, "no UDP heartbeat medium"),
])
def test_bad_hacf(tmp_path: Path, hacf: str, line: int | None, message: str) -> None:
    d = _dir(tmp_path, hacf)
    with pytest.raises(ImportFailed) as e:
        import_heartbeat(str(d))
    assert e.value.file == str(d / "ha.cf") and e.value.line == line
    assert message in e.value.message


@pytest.mark.parametrize("haresources,line,message", [
    ("# comment\nc IPaddr::10.0.0.1\n", 2, "preferred node 'c' is not a 'node' of ha.cf; expected one of a, b"),
    ("a\n", 1, "expected 'NODE RESOURCE [RESOURCE...]'"),
    ("a IPaddr::\n", 1, "with no empty part"),
    ("a 10.0.0.1 \\\n  Filesystem::/dev/x::::ext3\n", 1, "with no empty part"),
])
def test_bad_haresources(tmp_path: Path, haresources: str, line: int, message: str) -> None:
    d = _dir(tmp_path, haresources=haresources)
    with pytest.raises(ImportFailed) as e:
        import_heartbeat(str(d))
    assert (e.value.file, e.value.line) == (str(d / "haresources"), line)
    assert message in e.value.message


def test_unusable_resource_is_reported_not_fatal(tmp_path: Path) -> None:
    d = _dir(tmp_path, haresources="a IPaddr::300.1.1.1 OCF::x httpd\n")
    result = import_heartbeat(str(d))
    dropped = report_text(result, "dropped")
    assert "'300.1.1.1' is not an IPv4 address" in dropped and "OCF wrapper" in dropped
    c = parse_config_text(result.text, "x.yaml").config
    assert [m.id for m in c.resources[0].resources] == ["httpd"]


@pytest.mark.parametrize("authkeys,line,message", [
    ("auth 1\n1 crc\n", 2, "crc, a checksum"),
    ("auth 3\n1 sha1 secretsecretsecret\n", 1, "no key 3 is defined"),
    ("auth 1\n1 sha1\n", 2, "sha1 needs a secret"),
    ("auth 1\n1 sha256 abc\n", 2, "expected sha1, md5 or crc"),
    ("1 sha1 abcdefabcdefabcdef\n", None, "no 'auth N' line"),
])
def test_bad_authkeys(tmp_path: Path, authkeys: str, line: int | None, message: str) -> None:
    d = _dir(tmp_path, authkeys=authkeys)
    with pytest.raises(ImportFailed) as e:
        import_heartbeat(str(d))
    assert (e.value.file, e.value.line) == (str(d / "authkeys"), line)
    assert message in e.value.message


def test_crc_can_be_replaced_by_a_new_key(tmp_path: Path) -> None:
    d = _dir(tmp_path, authkeys="auth 1\n1 crc\n")
    result = import_heartbeat(str(d), new_key=True)
    assert result.key is not None and len(result.key.strip()) == 64


def test_secret_with_hash_and_exposed_file(tmp_path: Path) -> None:
    d = _dir(tmp_path, authkeys="# keys\nauth 1\n1 sha1 long#secret with spaces\n")
    os.chmod(d / "authkeys", 0o644)
    result = import_heartbeat(str(d))
    assert result.key == hashlib.sha256(b"long#secret with spaces").hexdigest() + "\n"
    assert "readable by group or others" in report_text(result, "warning")


def test_timers_our_rules_refuse_are_adjusted_and_reported(tmp_path: Path) -> None:
    d = _dir(tmp_path, "node a b\nbcast eth0\nkeepalive 1\ndeadtime 2\nwarntime 5\ninitdead 1\n")
    result = import_heartbeat(str(d))
    c = parse_config_text(result.text, "x.yaml").config
    assert (c.timing.keepalive, c.timing.deadtime, c.timing.warntime, c.timing.initdead) == (1, 3, 1.5, 3)
    warnings = report_text(result, "warning")
    assert "ha.cf:4: warning: deadtime 2s" in warnings and "warntime 5s" in warnings and "initdead 1s" in warnings


def test_crm_on_ignores_haresources(tmp_path: Path) -> None:
    d = _dir(tmp_path, GOOD_HACF + "crm respawn\n", haresources="a httpd\n")
    result = import_heartbeat(str(d))
    assert "havm import cib" in report_text(result, "dropped")
    assert parse_config_text(result.text, "x.yaml").config.resources == []


# --- the command line, and the acceptance: validate and simulate -------------------

def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fixture", ["hb-web", "hb-xen"])
def test_cli_writes_config_and_key_that_validate_and_simulate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fixture: str) -> None:
    out = tmp_path / "cluster.yaml"
    code, _, err = _run(capsys, "import", "heartbeat", str(DATA / fixture / "ha.d"), "-o", str(out))
    assert code == 0, err
    assert "dropped" in err and f"wrote {out}" in err
    key = tmp_path / "authkey"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    load_config(str(out))  # with the key check, as 'havm config validate' does
    assert _run(capsys, "config", "validate", str(out))[0] == 0
    code, sim, err = _run(capsys, "simulate", str(out), "--json")
    assert code == 0, err
    placement = json.loads(sim)["placement"]
    if fixture == "hb-web":
        assert placement["group-1"] == "alice" and placement["httpd"] == "alice"
        code, sim, _ = _run(capsys, "simulate", str(out), "--node-fail", "alice", "--json")
        assert code == 0
    else:
        assert placement["group-1"] == "xen1" and placement["group-2"] == "xen2"


def test_cli_refuses_to_overwrite_and_keeps_a_different_key(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cluster.yaml"
    src = str(DATA / "hb-web" / "ha.d")
    assert _run(capsys, "import", "heartbeat", src, "-o", str(out))[0] == 0
    code, _, err = _run(capsys, "import", "heartbeat", src, "-o", str(out))
    assert code == 2 and "exists" in err
    assert _run(capsys, "import", "heartbeat", src, "-o", str(out), "--force")[0] == 0  # same key: fine
    (tmp_path / "authkey").write_text("something else entirely, 32+ bytes\n")
    code, _, err = _run(capsys, "import", "heartbeat", src, "-o", str(out), "--force")
    assert code == 3 and "different key file" in err


def test_cli_json_and_report_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ha = tmp_path / "ha.d"
    shutil.copytree(DATA / "hb-ucast" / "ha.d", ha)
    out, rep = tmp_path / "c.yaml", tmp_path / "report.txt"
    code, stdout, _ = _run(capsys, "import", "heartbeat", str(ha), "-o", str(out), "--json",
                           "--hosts", str(DATA / "hb-ucast" / "hosts"), "--report", str(rep), "--new-key",
                           "--key-file", "cluster.key", "--cluster", "shop")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["valid"] and doc["key_file"] == str(tmp_path / "cluster.key") and doc["placeholders"] == []
    assert {i["level"] for i in doc["report"]} == {"info", "warning", "dropped"}
    assert "stonith_host" in rep.read_text()
    c = load_config(str(out)).config
    assert c.cluster == "shop" and c.auth.key_file == "cluster.key"


def test_cli_bad_input_exit_status_and_json_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _dir(tmp_path, "node a b\nbcast eth0\nkeepalive soon\n")
    code, _, err = _run(capsys, "import", "heartbeat", str(d), "-o", str(tmp_path / "c.yaml"))
    assert code == 3 and f"{d / 'ha.cf'}:3: keepalive 'soon'" in err
    code, out, _ = _run(capsys, "import", "heartbeat", str(d), "-o", str(tmp_path / "c.yaml"), "--json")
    assert code == 3 and json.loads(out)["error"]["code"] == "import-failed"
    assert not (tmp_path / "c.yaml").exists()
    code, _, err = _run(capsys, "import", "heartbeat", str(tmp_path / "nowhere"), "-o", str(tmp_path / "c.yaml"))
    assert code == 3 and "not a directory" in err


def test_cli_cib_to_stdout_and_simulate_the_xml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cib = str(DATA / "pacemaker" / "modern.xml")
    code, out, err = _run(capsys, "import", "cib", cib, "-o", "-", "--address", "n1=10.0.0.1")
    assert code == 0 and "ring0: 10.0.0.1\n" in out and "rsc_ticket" in err
    assert parse_config_text(out, "x.yaml").config.cluster == "webfarm"
    code, sim, err = _run(capsys, "simulate", cib, "--json")
    assert code == 0, err
    doc = json.loads(sim)
    assert any(a["op"] == "fence" and a["node"] == "n2" for a in doc["actions"])
    code, _, err = _run(capsys, "import", "cib", cib, "-o", "-", "--address", "n1=10.0.0.300")
    assert code == 2 and "not an IPv4 address" in err


def test_drbd_setup_simulates_with_the_group_on_the_primary(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cluster.yaml"
    code, _, err = _run(capsys, "import", "heartbeat", str(DATA / "hb-ucast" / "ha.d"), "-o", str(out),
                        "--hosts", str(DATA / "hb-ucast" / "hosts"), "--new-key")
    assert code == 0, err
    code, sim, err = _run(capsys, "simulate", str(out), "--json")
    assert code == 0, err
    doc = json.loads(sim)
    placement = doc["placement"]
    assert placement["group-1"] is not None and placement["mysql"] == placement["group-1"]
    promotes = [a for a in doc["actions"] if a["op"] == "promote" and a["resource"].startswith("drbd-r0")]
    assert [a["node"] for a in promotes] == [placement["group-1"]]  # the group runs on the DRBD primary
