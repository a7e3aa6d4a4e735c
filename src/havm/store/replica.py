"""The node's replica of the cluster configuration: what to adopt, what to propose.

Pure decisions over the local stored copy; the daemon does the networking.

Changes go through the controller (``propose``), which persists the new
version before pushing it to every member; members ``offer`` what they
receive or fetch, and adopt it only if it is newer by the ordering rule in
``version.py`` and validates. A node that rejoins with an older version sees
a newer one advertised in heartbeats and fetches it (catch-up).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from havm.config.load import LoadedConfig, config_digest, parse_config_text
from havm.errors import Conflict, HavmError
from havm.store.persist import ConfigFileStore
from havm.store.version import ConfigVersion, StoredConfig

log = logging.getLogger("havm.store")

CONFIG_NAME = "<cluster config>"


@dataclass(frozen=True)
class Offered:
    adopted: bool
    reason: str


class ConfigReplica:
    def __init__(self, store: ConfigFileStore, bootstrap: LoadedConfig, node: str) -> None:
        """Load the stored configuration, or bootstrap from the config file at epoch 0."""
        self.store = store
        self.node = node
        stored = store.load()
        if stored is None:
            stored = StoredConfig(ConfigVersion(0, 0, bootstrap.digest), bootstrap.text,
                                  changed_by=f"bootstrap:{node}")
            store.save(stored)
            log.info("bootstrapped configuration %s from %s", stored.version.short(), bootstrap.file)
        elif stored.version.digest != bootstrap.digest:
            log.info("using stored configuration %s (the file %s differs; change the cluster with "
                     "'havm config apply')", stored.version.short(), bootstrap.file)
        self.current = stored
        self.loaded = parse_config_text(stored.text, CONFIG_NAME)

    @property
    def version(self) -> ConfigVersion:
        return self.current.version

    def offer(self, candidate: StoredConfig) -> Offered:
        """Adopt ``candidate`` if it is newer and valid; idempotent."""
        if config_digest(candidate.text) != candidate.version.digest:
            return Offered(False, "digest does not match text")
        if candidate.version == self.current.version:
            return Offered(False, "already have it")
        if candidate.version < self.current.version:
            if candidate.version.same_epoch(self.current.version):
                log.warning("diverged configuration at epoch %s: keeping %s, rejecting %s",
                            self.current.version.epoch, self.current.version.long(), candidate.version.long())
                self.store.keep_rejected(candidate)
            return Offered(False, f"older than ours ({self.current.version.short()})")
        try:
            loaded = parse_config_text(candidate.text, CONFIG_NAME)
        except HavmError as e:
            log.error("refusing configuration %s: it does not validate here: %s", candidate.version.short(), e)
            return Offered(False, f"does not validate: {e}")
        cur = self.current.version
        if candidate.version.admin_epoch == cur.admin_epoch and candidate.version.epoch <= cur.epoch:
            # ours is not an ancestor of the winner: a change only this side held (e.g. made
            # by a controller cut off in a minority, whose term the winner's superseded)
            log.warning("diverged configuration at epoch %s: adopting %s, rejecting %s",
                        cur.epoch, candidate.version.long(), cur.long())
            self.store.keep_rejected(self.current)
        self.store.save(candidate)
        self.current = candidate
        self.loaded = loaded
        log.info("adopted configuration %s (changed by %s)", candidate.version.short(), candidate.changed_by)
        return Offered(True, "adopted")

    def propose(self, text: str, by: str, now: float, base: ConfigVersion | None = None,
                force: bool = False, comment: str = "", term: int | None = None) -> StoredConfig:
        """Controller side: validate ``text``, persist it as the next version.

        ``base`` is the version the caller's edit started from; if the cluster
        moved on since, raise Conflict and change nothing (optimistic
        concurrency). Raises ConfigError (with every issue) if ``text`` is invalid.
        ``term`` is the controller term the change is made in (default: the current one's).
        """
        if base is not None and (base.admin_epoch, base.epoch) != (self.version.admin_epoch, self.version.epoch):
            raise Conflict(f"the configuration changed since your edit: you based it on "
                           f"{base.admin_epoch}.{base.epoch}, the cluster is at {self.version.short()}")
        loaded = parse_config_text(text, CONFIG_NAME)
        digest = config_digest(text)
        if digest == self.version.digest and not force:
            return self.current  # idempotent: applying the same text twice changes nothing
        if term is not None and term < self.version.term:
            raise Conflict(f"controller term {term} is below the term of configuration {self.version.long()}: "
                           f"a newer controller exists; try again")
        stored = StoredConfig(self.version.next(digest, force, term), text, changed_by=by, changed_at=now,
                              comment=comment)
        self.store.save(stored)
        self.current = stored
        self.loaded = loaded
        log.info("committed configuration %s (by %s)", stored.version.short(), by)
        return stored

    def newest_peer(self, peer_versions: Mapping[str, ConfigVersion]) -> str | None:
        """The peer advertising the highest version above ours, if any (deterministic)."""
        best: tuple[ConfigVersion, str] | None = None
        for node, version in sorted(peer_versions.items()):
            if version > self.version and (best is None or version > best[0]):
                best = (version, node)
        return best[1] if best else None
