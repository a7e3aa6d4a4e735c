"""Controller terms: the promise rule, its persistence, and versions ordered by term (chaos finding 1)."""

from __future__ import annotations

import json

import pytest

from havm.config.load import config_digest, parse_config_text
from havm.errors import Conflict
from havm.store import ConfigFileStore, ConfigReplica, ConfigVersion, StoredConfig
from havm.store.persist import StoreCorrupt
from havm.store.term import Promise, TermStore
from tests.conftest import VALID


def replica(tmp_path, name="n1") -> ConfigReplica:
    return ConfigReplica(ConfigFileStore(str(tmp_path / name)), parse_config_text(VALID, "boot.yaml"), name)


def test_term_orders_before_epoch_and_digest():
    assert ConfigVersion(0, 12, "f" * 64, term=1) < ConfigVersion(0, 12, "0" * 64, term=2)
    assert ConfigVersion(0, 13, "f" * 64, term=1) < ConfigVersion(0, 12, "0" * 64, term=2)
    assert ConfigVersion(0, 99, "f" * 64, term=9) < ConfigVersion(1, 0, "0" * 64, term=0)  # admin_epoch first
    assert ConfigVersion(0, 12, "a" * 64, term=2) < ConfigVersion(0, 12, "b" * 64, term=2)  # then digest
    assert max([ConfigVersion(0, 5, "x", 3), ConfigVersion(0, 7, "y", 2)]) == ConfigVersion(0, 5, "x", 3)


def test_wire_carries_the_term_and_reads_versions_without_one():
    v = ConfigVersion(0, 4, "d" * 64, term=7)
    assert v.to_wire() == [0, 4, "d" * 64, 7]
    assert ConfigVersion.from_wire(v.to_wire()) == v
    assert ConfigVersion.from_wire([0, 4, "d" * 64]) == ConfigVersion(0, 4, "d" * 64, 0)
    for bad in ([0, 4, "d", -1], [0, 4, "d", True], [0, 4, "d", "7"], [0, 4, "d", 1, 2]):
        with pytest.raises(ValueError):
            ConfigVersion.from_wire(bad)
    stored = StoredConfig(ConfigVersion(0, 1, config_digest(VALID), 3), VALID)
    assert StoredConfig.from_json(json.loads(json.dumps(stored.to_json()))) == stored
    old = {k: v for k, v in stored.to_json().items() if k != "term"}  # stored before terms existed
    assert StoredConfig.from_json(old).version.term == 0


def _text_with_digest_above(digest: str) -> str:
    """A valid configuration whose digest sorts above ``digest`` (what made finding 1 lose a change)."""
    for i in range(1000):
        text = VALID + f"# minority change {i}\n"
        if config_digest(text) > digest:
            return text
    raise AssertionError("no text found")


def test_a_deposed_controllers_change_at_the_same_epoch_loses(tmp_path):
    # The majority's new controller committed epoch 1 in term 2; the old controller,
    # cut off, stored its own epoch 1 in term 1, with a higher digest. Before terms
    # the digest decided and the acknowledged change was replaced everywhere.
    majority = replica(tmp_path, "n2")
    acked = majority.propose(VALID + "# acknowledged\n", by="n2", now=1.0, term=2)
    text = _text_with_digest_above(acked.version.digest)
    minority = StoredConfig(ConfigVersion(0, 1, config_digest(text), 1), text)
    assert minority.version.digest > acked.version.digest and minority.version.epoch == acked.version.epoch
    got = majority.offer(minority)
    assert not got.adopted and majority.current == acked
    assert json.loads((tmp_path / "n2" / "config.rejected.json").read_text())["digest"] == minority.version.digest
    # and the other way round: the old controller's node adopts the acknowledged one
    old = replica(tmp_path, "n1")
    old.propose(text, by="n1", now=1.0, term=1)
    assert old.offer(acked).adopted and old.current == acked


def test_propose_refuses_a_term_below_the_current_versions(tmp_path):
    r = replica(tmp_path)
    v = r.propose(VALID + "# a\n", by="x", now=1.0, term=5).version
    with pytest.raises(Conflict, match="newer controller"):
        r.propose(VALID + "# b\n", by="y", now=2.0, term=4)
    assert r.version == v
    assert r.propose(VALID + "# c\n", by="y", now=3.0, term=5).version == ConfigVersion(
        0, 2, config_digest(VALID + "# c\n"), 5)
    assert r.propose(VALID + "# d\n", by="y", now=3.0).version.term == 5  # default: the current term


@pytest.mark.parametrize(("promise", "term", "claimant", "granted"), [
    (Promise(), 1, "n1", True),
    (Promise(), 0, "n1", False),               # term 0 is no term
    (Promise(3, "n1"), 3, "n1", True),         # a retried claim
    (Promise(3, "n1"), 3, "n2", False),        # the same term twice: never
    (Promise(3, "n1"), 2, "n2", False),
    (Promise(3, "n1"), 4, "n2", True),
    (Promise(3, ""), 3, "n1", False),          # learned from a version: not grantable again
])
def test_promise_rule(promise, term, claimant, granted):
    assert promise.grants(term, claimant) is granted


def test_promises_are_persisted_and_never_go_back(tmp_path):
    s = TermStore(str(tmp_path))
    assert s.current == Promise()
    assert s.promise(2, "n1")
    assert not s.promise(2, "n2") and not s.promise(1, "n3")
    again = TermStore(str(tmp_path))  # after a restart
    assert again.current == Promise(2, "n1")
    assert not again.promise(2, "n2")
    again.learn(5)
    assert not again.promise(5, "n1") and again.promise(6, "n1")
    again.learn(3)  # lower: nothing changes
    assert TermStore(str(tmp_path)).current == Promise(6, "n1")


@pytest.mark.parametrize("content", [b"{", b'{"term": -1, "holder": ""}', b'{"term": 1}', b'{"term": "2", "holder": ""}'])
def test_an_unreadable_promise_is_reported_not_taken_as_zero(tmp_path, content):
    (tmp_path / "term.json").write_bytes(content)
    with pytest.raises(StoreCorrupt, match="term.json"):
        TermStore(str(tmp_path))


def test_a_lower_epoch_of_a_newer_term_wins_and_the_replaced_change_is_kept(tmp_path):
    old = replica(tmp_path, "n1")
    old.propose(VALID + "# a\n", by="n1", now=1.0, term=1)
    lone = old.propose(VALID + "# b, never acknowledged\n", by="n1", now=2.0, term=1)  # epoch 2, term 1
    newer = StoredConfig(ConfigVersion(0, 1, config_digest(VALID + "# c\n"), 2), VALID + "# c\n")
    assert old.offer(newer).adopted and old.current == newer
    kept = json.loads((tmp_path / "n1" / "config.rejected.json").read_text())
    assert kept["digest"] == lone.version.digest and kept["term"] == 1
