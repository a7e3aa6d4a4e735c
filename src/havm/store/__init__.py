"""The replicated cluster configuration: versions, atomic persistence, replica logic."""

from havm.store.persist import ConfigFileStore
from havm.store.replica import ConfigReplica
from havm.store.version import ConfigVersion, StoredConfig

__all__ = ["ConfigFileStore", "ConfigReplica", "ConfigVersion", "StoredConfig"]
