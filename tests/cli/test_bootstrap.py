"""havm bootstrap: a config and key for a new cluster that 'havm config validate' accepts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from havm.cli.main import main
from havm.config.load import load_config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_two_nodes_two_links_validate_and_get_two_node_mode(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "etc" / "cluster.yaml"
    code, text, err = run(capsys, "bootstrap", "--name", "prod", "--node", "hv1=10.0.0.1,10.1.0.1",
                          "--node", "hv2=10.0.0.2,10.1.0.2", "--link", "ring0",
                          "--link", "ring1:multicast:239.255.1.1", "--ping", "10.0.0.254", "-o", str(out))
    assert code == 0, err
    assert "two-node mode" in text and "warning" not in text
    key = tmp_path / "etc" / "authkey"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text().strip()) == 64
    c = load_config(str(out)).config  # with the key check, as havmd does
    assert c.cluster == "prod" and c.node_names == ["hv1", "hv2"]
    assert [(lk.name, lk.mode, lk.group) for lk in c.links] == [("ring0", "unicast", None),
                                                               ("ring1", "multicast", "239.255.1.1")]
    assert c.node("hv2").addresses == {"ring0": "10.0.0.2", "ring1": "10.1.0.2"}
    assert c.quorum.two_node and c.quorum.tiebreaker.type == "ping"
    assert c.quorum.tiebreaker.targets == ["10.0.0.254"]
    assert (c.timing.keepalive, c.timing.warntime, c.timing.deadtime, c.timing.initdead) == (0.5, 2.5, 5, 30)
    assert c.properties.fencing_enabled
    assert run(capsys, "config", "validate", str(out))[0] == 0


def test_three_nodes_no_two_node_and_timings_follow_deadtime(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.yaml"
    code, text, err = run(capsys, "bootstrap", "--name", "lab", "--node", "a=10.0.0.1", "--node", "b=10.0.0.2",
                          "--node", "c=10.0.0.3", "--keepalive", "1s", "--deadtime", "20s", "-o", str(out),
                          "--key-file", "cluster.key", "--json")
    assert code == 0, err
    doc = json.loads(text)
    assert doc == {"config": str(out), "key_file": str(tmp_path / "cluster.key"), "cluster": "lab",
                   "nodes": ["a", "b", "c"], "links": ["ring0"], "two_node": False, "tiebreaker": "none"}
    c = load_config(str(out)).config
    assert not c.quorum.two_node and c.auth.key_file == "cluster.key"
    assert (c.timing.keepalive, c.timing.warntime, c.timing.deadtime, c.timing.initdead) == (1, 10, 20, 60)


def test_two_nodes_without_ping_warn_about_lowest_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _ = run(capsys, "bootstrap", "--name", "x", "--node", "n1=10.0.0.1", "--node", "n2=10.0.0.2",
                        "-o", str(tmp_path / "c.yaml"))
    assert code == 0 and "n2 alone never has quorum" in text
    assert load_config(str(tmp_path / "c.yaml")).config.quorum.tiebreaker.type == "lowest-node"


def test_refuses_to_overwrite_config_or_key_without_force(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.yaml"
    args = ["bootstrap", "--name", "x", "--node", "n1=10.0.0.1", "--node", "n2=10.0.0.2", "-o", str(out)]
    assert run(capsys, *args)[0] == 0
    first_key = (tmp_path / "authkey").read_text()
    code, _, err = run(capsys, *args)
    assert code == 2 and "exists; refusing to overwrite" in err
    out.unlink()  # the key alone is protected too
    code, _, err = run(capsys, *args)
    assert code == 2 and "authkey exists" in err and not out.exists()
    assert run(capsys, *args, "--force")[0] == 0
    assert (tmp_path / "authkey").read_text() != first_key
    assert stat.S_IMODE((tmp_path / "authkey").stat().st_mode) == 0o600


@pytest.mark.parametrize("args,message", [
    (["--node", "n1=10.0.0.1"], "at least two --node"),
    (["--node", "n1=10.0.0.1", "--node", "n2=10.0.0.2,10.1.0.2"], "same number of addresses"),
    (["--node", "n1=10.0.0.1", "--node", "n1=10.0.0.2"], "given twice"),
    (["--node", "n1=10.0.0.1", "--node", "n2=10.0.0.300"], "'10.0.0.300' is not an IPv4 address"),
    (["--node", "n1", "--node", "n2=10.0.0.2"], "expected NAME=IP"),
    (["--node", "n1=10.0.0.1", "--node", "n2=10.0.0.2", "--link", "r0:multicast"], "needs a GROUP"),
    (["--node", "n1=10.0.0.1", "--node", "n2=10.0.0.2", "--link", "r0:carrier-pigeon"], "expected one of"),
    (["--node", "n1=10.0.0.1", "--node", "n2=10.0.0.2", "--link", "a", "--link", "b"], "one per link"),
    (["--node", "n1=10.0.0.1", "--node", "n2=10.0.0.1"], "would be invalid"),  # same address twice
    (["--node", "n1=10.0.0.1", "--node", "n2=10.0.0.2", "--deadtime", "1s"], "would be invalid"),
])
def test_bad_input_is_a_usage_error_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       args: list[str], message: str) -> None:
    code, _, err = run(capsys, "bootstrap", "--name", "x", *args, "-o", str(tmp_path / "c.yaml"))
    assert code == 2 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_default_path_is_the_global_config_and_validate_reads_it_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "havm" / "cluster.yaml"
    code, _, err = run(capsys, "--config", str(cfg), "bootstrap", "--name", "x", "--node", "n1=10.0.0.1",
                       "--node", "n2=10.0.0.2", "--ping", "10.0.0.254")
    assert code == 0, err
    assert cfg.exists() and (tmp_path / "havm" / "authkey").exists()
    code, out, _ = run(capsys, "--config", str(cfg), "config", "validate")
    assert code == 0 and out.startswith(f"{cfg}: valid")
    monkeypatch.setenv("HAVM_CONFIG", str(cfg))  # the default of every command
    from havm.cli.main import build_parser
    assert build_parser("config").parse_args(["config", "validate"]).config == str(cfg)
    monkeypatch.delenv("HAVM_CONFIG")
    assert build_parser("status").parse_args(["status"]).config == "/etc/havm/cluster.yaml"


def test_keygen_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keygen", str(tmp_path / "k"), "--json")
    assert code == 0 and json.loads(out) == {"key_file": str(tmp_path / "k"), "mode": "0600"}
    code, out, _ = run(capsys, "keygen", str(tmp_path / "k"), "--json")
    assert code == 1 and json.loads(out)["error"]["message"].endswith("refusing to overwrite a cluster key")
