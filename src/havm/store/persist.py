"""Atomic, durable storage of the cluster configuration on one node.

Guarantee: after ``save`` returns, the new configuration is on disk and a
crash at any instant leaves either the old or the new file whole, never a mix
(write to a temp file, fsync it, rename over the old one, fsync the directory).
A file that fails its digest check on load is reported, never used.
"""

from __future__ import annotations

import json
import logging
import os

from havm.config.load import config_digest
from havm.durable import atomic_write
from havm.errors import HavmError
from havm.store.version import StoredConfig

log = logging.getLogger("havm.store")

CONFIG_FILE = "config.json"
REJECTED_FILE = "config.rejected.json"


class StoreCorrupt(HavmError):
    code = "store-corrupt"


def read_if_present(path: str) -> bytes | None:
    """The file's bytes, or None where there is none (a node that never stored one).
    Any other error (permissions, I/O) is raised: an unreadable file is not an absent one."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class ConfigFileStore:
    """The stored configuration of one node, in ``state_dir/config.json``."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(state_dir, CONFIG_FILE)

    def load(self) -> StoredConfig | None:
        raw = read_if_present(self.path)
        if raw is None:
            return None
        try:
            stored = StoredConfig.from_json(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as e:
            raise StoreCorrupt(f"{self.path}: not a valid stored configuration: {e}") from None
        if config_digest(stored.text) != stored.version.digest:
            raise StoreCorrupt(f"{self.path}: digest does not match the stored text")
        return stored

    def save(self, stored: StoredConfig) -> None:
        atomic_write(self.path, json.dumps(stored.to_json(), indent=1).encode())

    def keep_rejected(self, stored: StoredConfig) -> None:
        """Keep a losing diverged configuration for the operator to inspect."""
        atomic_write(os.path.join(self.state_dir, REJECTED_FILE), json.dumps(stored.to_json(), indent=1).encode())
        log.warning("kept diverged configuration %s in %s", stored.version.short(), REJECTED_FILE)
