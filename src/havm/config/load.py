"""Load and validate cluster.yaml, reporting every problem at once.

``load_config`` returns a ``LoadedConfig`` (the validated model, the raw text
that was validated, and where it came from) or raises ``ConfigError`` whose
issues each name file, line, field and what was expected.
"""

from __future__ import annotations

import hashlib
import os
import stat
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from havm.config.schema import ClusterConfig
from havm.config.yamlpos import Located, Path, format_path, load_yaml_file, load_yaml_text
from havm.errors import ConfigError, ConfigIssue, UnsafeKeyError

MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class LoadedConfig:
    config: ClusterConfig
    text: str
    file: str

    @property
    def digest(self) -> str:
        return config_digest(self.text)

    def key_path(self) -> str:
        return resolve_relative(self.file, self.config.auth.key_file)


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve_relative(config_file: str, path: str) -> str:
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(config_file)), path)


def _model_at(path: Path) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``path``, if any."""
    model: Any = ClusterConfig
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        while typing.get_origin(ann) in (list, dict, typing.Union, type(int | None)):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            ann = args[-1] if args else None
        model = ann
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _describe(err: dict[str, Any], path: Path) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        parent = _model_at(path[:-1])
        if parent is not None:
            allowed = ", ".join(parent.model_fields)
            return f"unknown key; expected one of: {allowed}"
        return "unknown key"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind not in ("value_error", "assertion_error") and "input" in err:
        value = err["input"]
        if not isinstance(value, dict | list):
            msg = f"{msg}, got {value!r}"
    return msg[0].lower() + msg[1:] if msg else kind


def validate_document(located: Located) -> ClusterConfig:
    """Validate a loaded YAML document; raise ConfigError with every issue."""
    if not isinstance(located.data, dict):
        raise ConfigError([ConfigIssue(located.file, located.line_of(()), "",
                                       "expected a mapping at the top level (cluster:, nodes:, links:, ...)")])
    try:
        return ClusterConfig.model_validate(located.data)
    except ValidationError as e:
        issues = []
        for err in e.errors():
            path: Path = tuple(p for p in err["loc"] if isinstance(p, str | int))
            # pydantic puts union/annotated branch names into loc; keep only real keys
            path = _real_path(located.data, path)
            issues.append(ConfigIssue(located.file, located.line_of(path), format_path(path),
                                      _describe(dict(err), path)))
        raise ConfigError(issues) from None


def _real_path(data: Any, path: Path) -> Path:
    real: list[str | int] = []
    node = data
    for part in path:
        if isinstance(part, str) and part.startswith("<") and part.endswith(">"):
            continue  # a union branch tag such as <primitive>, not a key
        if isinstance(node, dict) and part in node:
            real.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            real.append(part)
            node = node[part]
        elif isinstance(node, dict | list):
            real.append(part)  # a missing key: name it, its parent gives the line
            node = None
        else:
            break
    return tuple(real)


def parse_config_text(text: str, file: str) -> LoadedConfig:
    located = load_yaml_text(text, file)
    return LoadedConfig(validate_document(located), text, file)


def load_config(path: str, check_key: bool = True) -> LoadedConfig:
    """Load ``path``; with ``check_key`` also check the auth key file."""
    located = load_yaml_file(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    issues: list[ConfigIssue] = []
    error_class: type[ConfigError] = ConfigError
    config = None
    try:
        config = validate_document(located)
    except ConfigError as e:
        issues.extend(e.issues)
    if config is not None and check_key:
        key_file = resolve_relative(path, config.auth.key_file)
        try:
            read_key(key_file)
        except ConfigError as e:
            issues.extend(e.issues)
            error_class = type(e)  # keep "unsafe key" distinguishable for callers
    if issues:
        raise error_class(issues)
    assert config is not None
    return LoadedConfig(config, text, path)


def read_key(key_file: str) -> bytes:
    """Read the cluster's HMAC key; refuse it if group or others may read it.

    As Heartbeat does with authkeys: a key others can read is no secret, and a
    cluster whose heartbeats can be forged can be made to shoot its own nodes.
    """
    try:
        st = os.stat(key_file)
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(key_file, None, "auth.key_file",
                                       "key file not found; create one with 'havm keygen FILE'")]) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError([ConfigIssue(key_file, None, "auth.key_file", "key file is not a regular file")])
    if st.st_mode & 0o077:
        raise UnsafeKeyError([ConfigIssue(
            key_file, None, "auth.key_file",
            f"key file mode is {stat.S_IMODE(st.st_mode):04o}; it must not be readable by group or others "
            f"(expected 0600 or 0400: chmod 600 {key_file})")])
    with open(key_file, "rb") as f:
        key = f.read().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError([ConfigIssue(key_file, None, "auth.key_file",
                                       f"key is {len(key)} bytes; expected at least {MIN_KEY_BYTES}")])
    return key


def write_key(key_file: str) -> None:
    """Create a new random key file with mode 0600 (never overwrites)."""
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
