"""The replicated configuration: atomic persistence, ordering, catch-up, divergence."""

from __future__ import annotations

import json
import os

import pytest

from havm.config.load import config_digest, parse_config_text
from havm.errors import ConfigError, Conflict
from havm.store import ConfigFileStore, ConfigReplica, ConfigVersion, StoredConfig
from havm.store.persist import StoreCorrupt
from tests.conftest import VALID


def replica(tmp_path, name="n1", text=VALID) -> ConfigReplica:
    return ConfigReplica(ConfigFileStore(str(tmp_path / name)), parse_config_text(text, "boot.yaml"), name)


def test_bootstrap_stores_epoch_zero_and_survives_restart(tmp_path):
    r = replica(tmp_path)
    assert r.version == ConfigVersion(0, 0, config_digest(VALID))
    changed = VALID.replace("deadtime: 1s", "deadtime: 2s")
    r.propose(changed, by="test", now=1.0)
    assert r.version.epoch == 1
    # a restart with the old bootstrap file keeps the stored (newer) configuration
    again = replica(tmp_path)
    assert again.version.epoch == 1 and again.current.text == changed
    assert again.loaded.config.timing.deadtime == 2.0


def test_propose_is_idempotent_and_checks_base(tmp_path):
    r = replica(tmp_path)
    v1 = r.propose(VALID.replace("initdead: 5\n", "initdead: 6\n"), by="a", now=1.0).version
    assert r.propose(VALID.replace("initdead: 5\n", "initdead: 6\n"), by="a", now=2.0).version == v1
    with pytest.raises(Conflict):
        r.propose(VALID, by="b", now=3.0, base=ConfigVersion(0, 0, ""))
    assert r.version == v1


def test_invalid_proposal_changes_nothing(tmp_path):
    r = replica(tmp_path)
    before = r.version
    with pytest.raises(ConfigError):
        r.propose(VALID.replace("deadtime: 1s", "deadtime: 0.1s"), by="a", now=1.0)
    assert r.version == before
    assert replica(tmp_path).version == before


def test_offer_adopts_only_newer_valid_configs(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    newer = a.propose(VALID.replace("initdead: 5\n", "initdead: 7\n"), by="x", now=1.0)
    assert b.newest_peer({"a": a.version}) == "a"
    assert b.offer(newer).adopted
    assert b.offer(newer).reason == "already have it"
    assert b.newest_peer({"a": a.version}) is None
    # older is refused
    old = StoredConfig(ConfigVersion(0, 0, config_digest(VALID)), VALID)
    assert not b.offer(old).adopted
    # tampered text is refused
    bad = StoredConfig(ConfigVersion(0, 9, newer.version.digest), VALID)
    assert not b.offer(bad).adopted
    # invalid text with a correct digest is refused
    junk = "cluster: [\n"
    assert not b.offer(StoredConfig(ConfigVersion(0, 9, config_digest(junk)), junk)).adopted
    assert b.version == newer.version


def test_admin_epoch_beats_epoch(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    for i in range(3):
        a.propose(VALID.replace("initdead: 5\n", f"initdead: {10 + i}\n"), by="x", now=1.0)
    forced = b.propose(VALID.replace("initdead: 5\n", "initdead: 99\n"), by="y", now=2.0, force=True)
    assert forced.version.admin_epoch == 1 and forced.version.epoch == 0
    assert a.offer(forced).adopted


def test_diverged_same_epoch_resolved_by_digest_and_loser_kept(tmp_path):
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    va = a.propose(VALID.replace("initdead: 5\n", "initdead: 11\n"), by="x", now=1.0)
    vb = b.propose(VALID.replace("initdead: 5\n", "initdead: 12\n"), by="y", now=1.0)
    winner, loser = (va, vb) if va.version > vb.version else (vb, va)
    ra, rb = a.offer(vb), b.offer(va)
    assert a.version == b.version == winner.version
    assert ra.adopted != rb.adopted
    for d in ("a", "b"):
        path = tmp_path / d / "config.rejected.json"
        if (d == "a") == (winner is vb):
            assert json.loads(path.read_text())["digest"] == loser.version.digest


def test_corrupt_store_is_reported_not_used(tmp_path):
    r = replica(tmp_path)
    data = json.loads((tmp_path / "n1" / "config.json").read_text())
    data["text"] += "# tampered\n"
    (tmp_path / "n1" / "config.json").write_text(json.dumps(data))
    with pytest.raises(StoreCorrupt):
        replica(tmp_path)
    assert r.version.epoch == 0


def test_store_file_is_private_and_no_temp_left(tmp_path):
    r = replica(tmp_path)
    r.propose(VALID.replace("initdead: 5\n", "initdead: 8\n"), by="x", now=1.0)
    st = os.stat(tmp_path / "n1" / "config.json")
    assert st.st_mode & 0o077 == 0
    assert sorted(os.listdir(tmp_path / "n1")) == ["config.json"]


def test_version_wire_format_rejects_garbage():
    for bad in (None, [1, 2], ["a", 1, "d"], [True, 1, "d"], [-1, 0, "d"]):
        with pytest.raises(ValueError):
            ConfigVersion.from_wire(bad)
    assert ConfigVersion.from_wire([1, 2, "d"]) == ConfigVersion(1, 2, "d")
