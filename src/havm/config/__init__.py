"""Cluster configuration: schema, loading with precise errors, key files."""

from havm.config.load import LoadedConfig, load_config, parse_config_text, read_key
from havm.config.schema import ClusterConfig

__all__ = ["ClusterConfig", "LoadedConfig", "load_config", "parse_config_text", "read_key"]
